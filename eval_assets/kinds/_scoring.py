"""Per-item scoring shared by the kinds: decode each stored output, hand it to the spec's scorer, collect the
:class:`ItemScore` rows into the ``item_scores`` table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from eval_assets.kinds._errors import MalformedPredictionError
from eval_assets.kinds._registry import get_kind, get_scorer
from eval_assets.kinds._types import ItemScore, Scorer, SuiteScores
from eval_assets.suites.items import Item

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

ITEM_SCORE_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String,
        "suite": pl.String,
        "item_id": pl.String,
        "prediction": pl.String,
        "gold": pl.String,
        "correct": pl.Boolean,
        "score": pl.Float64,
        "parsed": pl.Boolean,
    }
)


def build_scorer(spec: SuiteSpec) -> Scorer[Any, Any]:
    """The spec's scorer: its metric's registered factory applied to the spec's ``scorer`` parameters."""
    return get_scorer(spec.metric).build(spec.scorer_params())


def item_scores_frame(
    suite: str, checkpoint: str, item_ids: Sequence[str], scores: Sequence[ItemScore]
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "checkpoint": [checkpoint] * len(scores),
            "suite": [suite] * len(scores),
            "item_id": list(item_ids),
            "prediction": [s.prediction for s in scores],
            "gold": [s.gold for s in scores],
            "correct": [s.correct for s in scores],
            "score": [float(s.score) for s in scores],
            "parsed": [s.parsed for s in scores],
        },
        schema=ITEM_SCORE_SCHEMA,
    )


def score_predictions(spec: SuiteSpec, items: Sequence[Item], predictions: pl.DataFrame) -> pl.DataFrame:
    """One row per item: its stored output decoded by the kind's request and judged by the spec's scorer.

    Raises:
        MalformedPredictionError: an item has no prediction, or its prediction cannot be read (never scored as
            wrong: a broken cache entry or backend is not the model's answer).
    """
    by_id = dict(zip(predictions["item_id"].to_list(), predictions["output"].to_list(), strict=True))
    checkpoint = predictions["checkpoint"][0] if predictions.height else ""
    request = get_kind(spec.kind).request
    scorer = build_scorer(spec)
    scores: list[ItemScore] = []
    for item in items:
        if item.item_id not in by_id:
            raise MalformedPredictionError(f"suite {spec.name}: no prediction for item {item.item_id}")
        output = by_id[item.item_id]
        try:
            scores.append(scorer(item, request.decode(item, output)))
        except MalformedPredictionError as exc:
            raise MalformedPredictionError(f"suite {spec.name}, {exc}") from exc
    return item_scores_frame(spec.name, checkpoint, [item.item_id for item in items], scores)


def per_item_scores(
    spec: SuiteSpec, checkpoint: str, predictions: pl.DataFrame, load_items: Callable[[], list[Item]]
) -> SuiteScores:
    """A kind's ``score`` when each prediction item is scored on its own (likelihood, generation): every item
    attempted is scored; there are no infrastructure errors to exclude (a failed model call fails the run)."""
    items = load_items()
    return SuiteScores(
        item_scores=score_predictions(spec, items, predictions),
        n_total=len(items),
        errors=0,
        binary=get_scorer(spec.metric).binary,
        metric=spec.metric,
    )
