"""Validation of user-given regular expressions that must capture a value (spec fields)."""

from __future__ import annotations

import re


def check_capture_pattern(value: str | None, holds: str) -> str | None:
    """``value`` unchanged when it compiles and has a capture group; ``holds`` says what group 1 holds."""
    if value is None:
        return value
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    if compiled.groups < 1:
        raise ValueError(f"the pattern needs a capture group holding {holds}")
    return value
