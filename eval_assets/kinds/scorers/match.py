"""``exact_match`` and ``contains``: the completion (or the answer read out of it) against the reference."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.kinds._registry import register_scorer
from eval_assets.kinds._types import GenerationOutput, ItemScore, Scorer, ScorerEntry
from eval_assets.kinds.scorers.answers import extract_answer, first_line, normalize_number
from eval_assets.suites.items import GenerationItem

#: What ``exact_match`` compares. ``auto``: the final number when the reference is a number, else the text.
AnswerMode = Literal["auto", "text", "first_line", "final_number"]


class ExactMatchParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: AnswerMode = Field(
        default="auto",
        description="text: the whole stripped completion; first_line: its first non-blank line; final_number: "
        "the number after 'answer is', else the last number (GSM8K); auto: final_number when the reference is "
        "a number, else text",
    )
    ignore_case: bool = False


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def exact_match(params: ExactMatchParams) -> Scorer[GenerationItem, GenerationOutput]:
    def score(item: GenerationItem, output: GenerationOutput) -> ItemScore:
        gold_number = normalize_number(item.gold)
        mode = params.answer
        if mode == "auto":
            mode = "final_number" if gold_number is not None else "text"
        if mode == "final_number":
            answer = extract_answer(output.text)
            correct = answer is not None and answer == gold_number
            return ItemScore(answer or "", item.gold, correct, float(correct), answer is not None)
        text = first_line(output.text) if mode == "first_line" else output.text.strip()
        correct = _fold(text, params.ignore_case) == _fold(item.gold.strip(), params.ignore_case)
        return ItemScore(text, item.gold, correct, float(correct), bool(text))

    return score


class ContainsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ignore_case: bool = False


#: Predictions are stored in ``item_scores``; long completions are cut to this many characters there.
SHOWN_CHARS = 200


def contains(params: ContainsParams) -> Scorer[GenerationItem, GenerationOutput]:
    def score(item: GenerationItem, output: GenerationOutput) -> ItemScore:
        text = output.text.strip()
        correct = _fold(item.gold.strip(), params.ignore_case) in _fold(text, params.ignore_case)
        return ItemScore(text[:SHOWN_CHARS], item.gold, correct, float(correct), bool(text))

    return score


def _check_not_empty(_params: BaseModel, gold: str) -> None:
    if not gold.strip():
        raise ValueError("the reference answer is empty")


EXACT_MATCH = register_scorer(
    ScorerEntry(
        name="exact_match",
        kinds=frozenset({"generation"}),
        build=exact_match,
        params=ExactMatchParams,
        description="the answer (whole text, first line, or final number) equals the reference",
        check_gold=_check_not_empty,
    )
)
CONTAINS = register_scorer(
    ScorerEntry(
        name="contains",
        kinds=frozenset({"generation"}),
        build=contains,
        params=ContainsParams,
        description="the completion contains the reference",
        check_gold=_check_not_empty,
    )
)
