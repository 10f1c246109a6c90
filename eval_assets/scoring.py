"""Scores of a suite from its predictions: per item through the spec's registered scorer
(:mod:`eval_assets.kinds`), then the summary row with its confidence interval. Pure functions.

Bump ``scorer_version`` in the suite spec when a scorer's behaviour changes, and :data:`SCORES_VERSION` when the
summary's schema or interval changes.

The interval states its method: **Wilson** when every per-item score is 0/1 (a percentile bootstrap covers only
~81% at n = 50 and gives [0, 0] on an all-wrong run); **Wilson clustered by item** when each item's score is the
share of several correlated samples (pass@1 of code suites: the effective sample size of the problems, so an
all-failed run still has an upper bound); a **seeded percentile bootstrap** of the mean
otherwise (fractional scores of other kinds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from eval_assets import stats
from eval_assets.kinds._errors import MalformedPredictionError
from eval_assets.kinds._scoring import ITEM_SCORE_SCHEMA, score_predictions
from eval_assets.kinds._types import SuiteScores
from eval_assets.kinds.code import score_code as _score_code
from eval_assets.suites.items import Item
from eval_assets.suites.spec import SuiteSpec

__all__ = [
    "CONFIDENCE",
    "ITEM_SCORE_SCHEMA",
    "SCORES_SCHEMA",
    "SCORES_VERSION",
    "MalformedPredictionError",
    "score_code",
    "score_interval",
    "score_items",
    "summarize",
]

#: Bump when the scores summary's columns or its interval change (part of the scores asset's code version).
SCORES_VERSION = 3
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000

SCORES_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String,
        "suite": pl.String,
        "suite_version": pl.Int64,
        "suite_code_version": pl.String,
        "profile": pl.String,
        "metric": pl.String,
        "score": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "confidence": pl.Float64,
        "ci_method": pl.String,
        "n": pl.Int64,
        "n_total": pl.Int64,
        "errors": pl.Int64,
        "unparsed": pl.Int64,
        "error_rate": pl.Float64,
        "model_hash": pl.String,
        "details": pl.String,
    }
)


def score_items(spec: SuiteSpec, items: Sequence[Item], predictions: pl.DataFrame) -> pl.DataFrame:
    """Per-item scores (``ITEM_SCORE_SCHEMA``) of a likelihood or generation suite's predictions.

    Raises:
        MalformedPredictionError: an item without a prediction, or a prediction that cannot be read.
    """
    return score_predictions(spec, items, predictions)


def score_code(spec: SuiteSpec, checkpoint: str, executions: pl.DataFrame) -> pl.DataFrame:
    """Per-problem scores of a code suite from its executions (samples that errored in the sandbox excluded)."""
    return _score_code(spec, checkpoint, executions).item_scores


def score_interval(values: Any, *, binary: bool, confidence: float = CONFIDENCE) -> stats.Interval | None:
    """The suite score's CI: Wilson for 0/1 scores, a seeded percentile bootstrap otherwise; ``None`` when no
    item was scored."""
    count = len(values)
    if count == 0:
        return None
    if binary:
        return stats.wilson_interval(float(sum(values)), count, confidence)
    return stats.bootstrap_mean_ci(
        values, confidence=confidence, n_resamples=BOOTSTRAP_RESAMPLES, method="percentile", seed=0
    )


def summarize(
    spec: SuiteSpec,
    scored: SuiteScores,
    *,
    checkpoint: str,
    profile: str,
    suite_code_version: str,
    model_hash: str,
) -> dict[str, Any]:
    """The ``scores`` row of a suite (``SCORES_SCHEMA``).

    ``n`` items are in the score; ``n_total`` prediction items were attempted (code suites: problems × samples);
    ``errors`` of those were excluded for infrastructure errors and ``unparsed`` scored wrong for want of a
    readable answer (same unit as ``n_total``); ``error_rate = (errors + unparsed) / n_total``.
    """
    values = scored.item_scores["score"].to_numpy()
    if scored.sample_counts is not None and values.size:
        interval: stats.Interval | None = stats.mean_rate_wilson_interval(
            values, scored.sample_counts, CONFIDENCE
        )
    else:
        interval = score_interval(values, binary=scored.binary)
    unparsed = int((~scored.item_scores["parsed"]).sum())
    details = dict(scored.details)
    return {
        "checkpoint": checkpoint,
        "suite": spec.name,
        "suite_version": spec.version,
        "suite_code_version": suite_code_version,
        "profile": profile,
        "metric": scored.metric,
        "score": interval.estimate if interval else math.nan,
        "ci_low": interval.low if interval else math.nan,
        "ci_high": interval.high if interval else math.nan,
        "confidence": interval.confidence if interval else CONFIDENCE,
        "ci_method": interval.method if interval else "none (no item scored)",
        "n": int(values.size),
        "n_total": scored.n_total,
        "errors": scored.errors,
        "unparsed": unparsed,
        "error_rate": (scored.errors + unparsed) / scored.n_total if scored.n_total else math.nan,
        "model_hash": model_hash,
        "details": json.dumps(details, sort_keys=True),
    }
