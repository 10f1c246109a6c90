"""``acc``: the continuation with the highest log-likelihood is the model's choice (lm-eval's ``acc``)."""

from __future__ import annotations

from eval_assets.kinds._errors import MalformedPredictionError
from eval_assets.kinds._registry import register_scorer
from eval_assets.kinds._types import ItemScore, LikelihoodOutput, NoParams, Scorer, ScorerEntry
from eval_assets.suites.items import LikelihoodItem


def acc(item: LikelihoodItem, output: LikelihoodOutput) -> ItemScore:
    """(predicted choice index, gold index, correct): argmax of the continuation log-likelihoods; ties go to the
    first choice, as in lm-eval."""
    if len(output.logprobs) != len(item.continuations):
        raise MalformedPredictionError(
            f"item {item.item_id}: {len(output.logprobs)} log-likelihoods for {len(item.continuations)} choices"
        )
    best = max(range(len(output.logprobs)), key=lambda i: output.logprobs[i])
    correct = best == item.gold
    return ItemScore(
        prediction=str(best), gold=str(item.gold), correct=correct, score=float(correct), parsed=True
    )


def _build(_params: NoParams) -> Scorer[LikelihoodItem, LikelihoodOutput]:
    return acc


ACC = register_scorer(
    ScorerEntry(
        name="acc",
        kinds=frozenset({"likelihood"}),
        build=_build,
        params=NoParams,
        description="the choice with the highest log-likelihood is right",
    )
)
