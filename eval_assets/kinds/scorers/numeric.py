"""``numeric``: the number read from the completion is within a tolerance of the reference number."""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval_assets.kinds._registry import register_scorer
from eval_assets.kinds._types import GenerationOutput, ItemScore, Scorer, ScorerEntry
from eval_assets.kinds.scorers.answers import extract_answer, parse_number, regex_capture
from eval_assets.patterns import check_capture_pattern
from eval_assets.suites.items import GenerationItem


class NumericParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    abs_tol: float = Field(default=0.0, ge=0.0, description="|answer - reference| <= abs_tol passes")
    rel_tol: float = Field(
        default=0.0, ge=0.0, description="|answer - reference| <= rel_tol * |reference| passes"
    )
    pattern: str | None = Field(
        default=None,
        description="a regex whose group 1 holds the number; default: the number after 'answer is', else the "
        "last number of the completion",
    )

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, value: str | None) -> str | None:
        return check_capture_pattern(value, "the number, e.g. 'answer is (\\S+)'")
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.groups < 1:
            raise ValueError("the pattern needs a capture group holding the number, e.g. 'answer is (\\S+)'")
        return value


def within(answer: Decimal, gold: Decimal, params: NumericParams) -> bool:
    tolerance = max(Decimal(str(params.abs_tol)), Decimal(str(params.rel_tol)) * abs(gold))
    return abs(answer - gold) <= tolerance


def numeric(params: NumericParams) -> Scorer[GenerationItem, GenerationOutput]:
    pattern = re.compile(params.pattern) if params.pattern else None

    def score(item: GenerationItem, output: GenerationOutput) -> ItemScore:
        gold_text = item.gold
        gold = parse_number(gold_text)
        if gold is None:
            raise ValueError(f"item {item.item_id}: reference {gold_text!r} is not a number (metric numeric)")
        if pattern is not None:
            captured = regex_capture(pattern, 1, output.text, "first")
            answer = parse_number(captured) if captured is not None else None
        else:
            extracted = extract_answer(output.text)
            answer = parse_number(extracted) if extracted is not None else None
        if answer is None:
            return ItemScore("", gold_text, False, 0.0, False)
        correct = within(answer, gold, params)
        return ItemScore(format(answer.normalize(), "f"), gold_text, correct, float(correct), True)

    return score


def _check_number(_params: NumericParams, gold: str) -> None:
    if parse_number(gold) is None:
        raise ValueError(f"the reference answer {gold!r} is not a number (metric numeric)")


NUMERIC = register_scorer(
    ScorerEntry(
        name="numeric",
        kinds=frozenset({"generation"}),
        build=numeric,
        params=NumericParams,
        description="the number in the completion is within abs_tol / rel_tol of the reference",
        check_gold=_check_number,
    )
)
