"""``regex``: a capture group of a pattern, read from the completion, equals the reference."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eval_assets.kinds._registry import register_scorer
from eval_assets.kinds._types import GenerationOutput, ItemScore, Scorer, ScorerEntry
from eval_assets.kinds.scorers.answers import regex_capture
from eval_assets.suites.items import GenerationItem


def compile_pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


class RegexParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(
        description="a Python regular expression with a capture group, e.g. 'answer is (\\w+)'"
    )
    group: int | str = Field(default=1, description="the capture group (number or name) holding the answer")
    occurrence: Literal["first", "last"] = "first"
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_group(self) -> RegexParams:
        compiled = re.compile(self.pattern)
        if isinstance(self.group, int) and not 0 <= self.group <= compiled.groups:
            raise ValueError(
                f"`group: {self.group}` but the pattern has {compiled.groups} capture group(s); "
                "put the answer in parentheses, e.g. 'answer is (\\w+)'"
            )
        if isinstance(self.group, str) and self.group not in compiled.groupindex:
            raise ValueError(f"`group: {self.group}` is not a named group of the pattern")
        return self


def regex(params: RegexParams) -> Scorer[GenerationItem, GenerationOutput]:
    pattern = compile_pattern(params.pattern, params.ignore_case)

    def score(item: GenerationItem, output: GenerationOutput) -> ItemScore:
        answer = regex_capture(pattern, params.group, output.text, params.occurrence)
        if answer is None:
            return ItemScore("", item.gold, False, 0.0, False)
        found, gold = answer.strip(), item.gold.strip()
        if params.ignore_case:
            found_cmp, gold_cmp = found.casefold(), gold.casefold()
        else:
            found_cmp, gold_cmp = found, gold
        correct = found_cmp == gold_cmp
        return ItemScore(found, item.gold, correct, float(correct), True)

    return score


REGEX = register_scorer(
    ScorerEntry(
        name="regex",
        kinds=frozenset({"generation"}),
        build=regex,
        params=RegexParams,
        description="a capture group of `pattern` in the completion equals the reference",
    )
)
