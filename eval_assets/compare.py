"""A candidate's item scores against production's on the items both share. Pure."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from eval_assets import stats
from eval_assets.gate import Comparison, GatePolicy


def _minimum_detectable_effect(n: int, discordant: int, policy: GatePolicy) -> float:
    """The difference ``n`` paired items detect at the policy's power (McNemar, continuity-corrected). The
    observed discordance is floored at 2/n so that two near-identical checkpoints do not claim unlimited
    resolution from a handful of items."""
    discordance = min(1.0, max(discordant / n, 2.0 / n))
    return stats.minimum_detectable_effect(n, discordance, alpha=1 - policy.confidence, power=policy.power)


def compare(
    candidate_scores: pl.DataFrame,
    production_scores: pl.DataFrame | None,
    *,
    suite: str,
    candidate: str,
    production: str | None,
    policy: GatePolicy,
    production_model_hash: str | None = None,
    candidate_model_hash: str | None = None,
) -> Comparison:
    """Paired comparison on shared item ids: CI of the accuracy difference (policy ``ci_method``) and
    McNemar's test. The production it was made against (name and model hash) is part of the result."""
    if production_scores is None or production is None or candidate == production:
        values = candidate_scores["score"].to_numpy()
        accuracy = float(values.mean()) if values.size else math.nan
        return Comparison(
            suite=suite, candidate=candidate, production=production, n=int(values.size),
            candidate_accuracy=accuracy, production_accuracy=accuracy, difference=0.0, low=0.0, high=0.0,
            confidence=policy.confidence, method="none", improvements=0, regressions=0, mcnemar_p=1.0,
            mcnemar_method="none", minimum_detectable_effect=math.nan, is_production=candidate == production,
            production_model_hash=production_model_hash, candidate_model_hash=candidate_model_hash,
        )  # fmt: skip
    joined = candidate_scores.select("item_id", pl.col("score").alias("cand")).join(
        production_scores.select("item_id", pl.col("score").alias("prod")), on="item_id", how="inner"
    )
    if joined.height == 0:
        raise ValueError(
            f"suite {suite}: {candidate} and production {production} share no items; "
            "evaluate both on the same suite version and profile"
        )
    cand = joined["cand"].to_numpy().astype(np.float64)
    prod = joined["prod"].to_numpy().astype(np.float64)
    n = joined.height
    binary = bool(np.isin(cand, (0.0, 1.0)).all() and np.isin(prod, (0.0, 1.0)).all())
    if not binary:
        # Per-item scores in [0, 1] (pass@1 of several samples): a paired bootstrap of the mean difference.
        diff = stats.paired_bootstrap_diff(
            cand, prod, confidence=policy.confidence, n_resamples=policy.bootstrap_resamples,
            method="percentile", seed=policy.seed,
        )  # fmt: skip
        return Comparison(
            suite=suite, candidate=candidate, production=production, n=n,
            candidate_accuracy=float(cand.mean()), production_accuracy=float(prod.mean()),
            difference=diff.estimate, low=diff.low, high=diff.high, confidence=policy.confidence,
            method=diff.method, improvements=int((cand > prod).sum()), regressions=int((cand < prod).sum()),
            mcnemar_p=math.nan, mcnemar_method="n/a (scores are not binary)", minimum_detectable_effect=math.nan,
            production_model_hash=production_model_hash, candidate_model_hash=candidate_model_hash,
        )  # fmt: skip
    if policy.ci_method == "newcombe":
        diff = stats.paired_proportion_difference_interval(cand, prod, confidence=policy.confidence)
    else:
        diff = stats.paired_bootstrap_diff(
            cand, prod, confidence=policy.confidence, n_resamples=policy.bootstrap_resamples,
            method="percentile", seed=policy.seed,
        )  # fmt: skip
    test = stats.mcnemar(cand.astype(bool), prod.astype(bool))
    return Comparison(
        suite=suite,
        candidate=candidate,
        production=production,
        n=n,
        candidate_accuracy=float(cand.mean()),
        production_accuracy=float(prod.mean()),
        difference=diff.estimate,
        low=diff.low,
        high=diff.high,
        confidence=policy.confidence,
        method=diff.method,
        improvements=test.b,
        regressions=test.c,
        mcnemar_p=test.p_value,
        mcnemar_method=test.method,
        minimum_detectable_effect=_minimum_detectable_effect(n, test.b + test.c, policy),
        production_model_hash=production_model_hash,
        candidate_model_hash=candidate_model_hash,
    )
