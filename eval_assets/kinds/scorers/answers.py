"""Reading an answer out of a completion: the final number, the first line, a regex capture group."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from eval_assets.suites.gsm8k import extract_answer, normalize_number

__all__ = ["extract_answer", "first_line", "normalize_number", "parse_number", "regex_capture"]


def first_line(text: str) -> str:
    """The first non-blank line, stripped ('' when there is none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def parse_number(text: str) -> Decimal | None:
    """'1,234.50' -> Decimal('1234.50'); None when ``text`` is not a number."""
    normalized = normalize_number(text)
    if normalized is None:
        return None
    try:
        return Decimal(normalized)
    except InvalidOperation:
        return None


def regex_capture(pattern: re.Pattern[str], group: int | str, text: str, occurrence: str) -> str | None:
    """The ``group`` of the first (or last) match of ``pattern`` in ``text``; None when it does not match."""
    matches = (
        list(pattern.finditer(text)) if occurrence == "last" else [m for m in [pattern.search(text)] if m]
    )
    if not matches:
        return None
    value = matches[-1].group(group)
    return value if value is not None else None
