"""Which items of a checkpoint people label, and why: a seeded, stratified sample. Pure functions over frames.

Strata, per suite:

* generation (and any kind without a judge or classifier): the automatic scorer's verdict, ``scored_correct``
  or ``scored_incorrect``;
* pairwise: the judge's verdict when both orders agree (``judge_candidate``, ``judge_opponent``,
  ``judge_tie``), ``orders_disagree`` when they do not, ``judge_error`` when either order errored;
* refusal: the classifier's label (``classifier_refusal`` ...), ``classifiers_disagree`` when a second
  classifier labelled the item differently.

A suite's sample size comes from the policy. Each stratum first gets ``min_per_stratum`` items (or all it
has); the rest is allocated in proportion to stratum size times the stratum's ``oversample`` weight (largest
remainder, capped by what each stratum holds). Within a stratum items are ranked by
``sha256(seed:checkpoint:suite:item_id)``, so the sample is the same for a seed whatever the row order, and a
larger size only adds items. ``weight`` (stratum size over items sampled from it) re-weights sampled labels
into estimates for the whole suite.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import polars as pl

from eval_assets.human_eval._policy import SamplingPolicy
from eval_assets.human_eval._store import label_family

STRATUM_REASONS = {
    "scored_correct": "the automatic scorer marked the answer correct",
    "scored_incorrect": "the automatic scorer marked the answer incorrect",
    "orders_disagree": "the judge's two orders disagree (a tie by the judge's rule)",
    "judge_error": "the judge errored on at least one order",
    "classifiers_disagree": "the refusal classifiers disagree",
}

SAMPLE_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String(),
        "suite": pl.String(),
        "item_id": pl.String(),
        "kind": pl.String(),
        "suite_kind": pl.String(),
        "stratum": pl.String(),
        "reason": pl.String(),
        "stratum_size": pl.Int64(),
        "stratum_sampled": pl.Int64(),
        "weight": pl.Float64(),
        "rank_key": pl.String(),
        "seed": pl.Int64(),
        "policy_version": pl.Int64(),
        "policy_hash": pl.String(),
    }
)


def is_sampled(kind: str, policy: SamplingPolicy) -> bool:
    """Whether the policy samples suites of ``kind``: named in ``kinds``, or a pairwise/refusal variant of a
    family named there (``refusal`` covers ``refusal_harmful`` and ``refusal_benign``)."""
    family = label_family(kind)
    return kind in policy.kinds or (family != "generation" and family in policy.kinds)


def stratum_reason(stratum: str) -> str:
    if stratum in STRATUM_REASONS:
        return STRATUM_REASONS[stratum]
    if stratum.startswith("judge_"):
        return f"both judge orders say {stratum.removeprefix('judge_')}"
    if stratum.startswith("classifier_"):
        return f"the classifier labelled it {stratum.removeprefix('classifier_')}"
    return stratum


def _require(frame: pl.DataFrame, table: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {missing}; it must have {list(columns)}")


def generation_strata(item_scores: pl.DataFrame) -> pl.DataFrame:
    """(suite, item_id, stratum) from ``item_scores`` rows: the automatic scorer's verdict."""
    _require(item_scores, "item_scores", ("suite", "item_id", "correct"))
    return item_scores.select(
        "suite",
        pl.col("item_id").cast(pl.String),
        pl.when(pl.col("correct"))
        .then(pl.lit("scored_correct"))
        .otherwise(pl.lit("scored_incorrect"))
        .alias("stratum"),
    ).unique(["suite", "item_id"], keep="first", maintain_order=True)


def combined_verdicts(judge_verdicts: pl.DataFrame) -> pl.DataFrame:
    """One verdict per (suite, item_id, opponent) from the two orders: the shared verdict when they agree,
    ``tie`` when they disagree (``orders_agree`` False), ``error`` when either order errored."""
    _require(judge_verdicts, "judge_verdicts", ("suite", "item_id", "order", "verdict"))
    frame = judge_verdicts.filter(pl.col("order").is_in(["ab", "ba"]))  # placeholder rows have no order
    if "opponent" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("opponent"))
    grouped = frame.group_by(["suite", "item_id", "opponent"], maintain_order=True).agg(
        pl.col("verdict").unique().alias("verdicts"), pl.col("order").n_unique().alias("orders")
    )
    rows = []
    for row in grouped.iter_rows(named=True):
        verdicts = set(row["verdicts"])
        if "error" in verdicts:
            verdict, agree = "error", None
        elif len(verdicts) == 1:
            verdict, agree = next(iter(verdicts)), True
        else:
            verdict, agree = "tie", False
        rows.append({"suite": row["suite"], "item_id": str(row["item_id"]), "opponent": row["opponent"],
                     "verdict": verdict, "orders_agree": agree, "orders": row["orders"]})  # fmt: skip
    schema = {"suite": pl.String, "item_id": pl.String, "opponent": pl.String, "verdict": pl.String,
              "orders_agree": pl.Boolean, "orders": pl.UInt32}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def pairwise_strata(judge_verdicts: pl.DataFrame) -> pl.DataFrame:
    combined = combined_verdicts(judge_verdicts)
    return combined.select(
        "suite",
        "item_id",
        pl.when(pl.col("verdict") == "error")
        .then(pl.lit("judge_error"))
        .when(pl.col("orders_agree").not_())
        .then(pl.lit("orders_disagree"))
        .otherwise(pl.lit("judge_") + pl.col("verdict"))
        .alias("stratum"),
    ).unique(["suite", "item_id"], keep="first", maintain_order=True)


def classifier_labels(refusal_labels: pl.DataFrame) -> pl.DataFrame:
    """(suite, item_id, label, other_labels) with the primary classifier's label, and every other classifier's.

    Accepts the long form (one row per classifier, column ``classifier``; the first classifier in sorted order
    is the primary) and a ``second_label`` column beside ``label``."""
    _require(refusal_labels, "refusal_labels", ("suite", "item_id", "label"))
    frame = refusal_labels.with_columns(pl.col("item_id").cast(pl.String))
    if "classifier" not in frame.columns:
        frame = frame.with_columns(pl.lit("classifier").alias("classifier"))
    frame = frame.sort(["suite", "item_id", "classifier"])
    grouped = frame.group_by(["suite", "item_id"], maintain_order=True).agg(
        pl.col("label").first().alias("label"),
        pl.col("label").slice(1).alias("other_labels"),
        *([pl.col("second_label").drop_nulls().alias("second")] if "second_label" in frame.columns else []),
    )
    if "second" in grouped.columns:
        grouped = grouped.with_columns(pl.concat_list("other_labels", "second").alias("other_labels")).drop(
            "second"
        )
    return grouped


def refusal_strata(refusal_labels: pl.DataFrame) -> pl.DataFrame:
    labels = classifier_labels(refusal_labels)
    rows = []
    for row in labels.iter_rows(named=True):
        others = set(row["other_labels"] or [])
        stratum = "classifiers_disagree" if others - {row["label"]} else f"classifier_{row['label']}"
        rows.append({"suite": row["suite"], "item_id": row["item_id"], "stratum": stratum})
    return pl.DataFrame(rows, schema={"suite": pl.String, "item_id": pl.String, "stratum": pl.String})


def allocate(
    sizes: Mapping[str, int], weights: Mapping[str, float], total: int, minimum: int
) -> dict[str, int]:
    """Items to draw from each stratum: ``total`` (at most all items) shared in proportion to size × weight,
    each stratum between ``minimum`` (capped by its size; lowered evenly when the minimums alone exceed
    ``total``) and its size, rounded by largest remainder. Deterministic (ties broken by stratum name)."""
    if total < 0 or minimum < 0:
        raise ValueError("sample sizes must be non-negative")
    total = min(total, sum(sizes.values()))
    nonempty = [s for s in sizes if sizes[s] > 0]
    if sum(min(minimum, sizes[s]) for s in sizes) > total:
        minimum = total // max(len(nonempty), 1)
    lower = {s: min(minimum, sizes[s]) for s in sizes}
    pinned: dict[str, int] = {}
    while True:
        free = [s for s in sizes if s not in pinned]
        left = total - sum(pinned.values())
        mass = sum(sizes[s] * weights.get(s, 1.0) for s in free)
        shares = {s: (left * sizes[s] * weights.get(s, 1.0) / mass) if mass > 0 else 0.0 for s in free}
        over = [s for s in free if shares[s] > sizes[s]]
        under = [] if over else [s for s in free if shares[s] < lower[s]]
        if not over and not under:
            break
        for s in over:
            pinned[s] = sizes[s]
        for s in under:
            pinned[s] = lower[s]
    take = dict(pinned) | {s: min(math.floor(v), sizes[s]) for s, v in shares.items()}
    by_remainder = sorted(shares, key=lambda s: (-(shares[s] - math.floor(shares[s])), s))
    by_room = sorted(sizes, key=lambda s: (-(sizes[s] - take[s]), s))
    for s in [*by_remainder, *by_room]:
        if sum(take.values()) >= total:
            break
        if take[s] < sizes[s]:
            take[s] += 1
    return take


def rank_key(seed: int, checkpoint: str, suite: str, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{checkpoint}:{suite}:{item_id}".encode()).hexdigest()


def draw_sample(
    strata: pl.DataFrame, *, checkpoint: str, kinds: Mapping[str, str], policy: SamplingPolicy
) -> pl.DataFrame:
    """The sample of one checkpoint from (suite, item_id, stratum) rows; ``kinds`` maps suite -> kind.
    Returns rows of :data:`SAMPLE_SCHEMA` sorted by suite, stratum and rank."""
    _require(strata, "strata", ("suite", "item_id", "stratum"))
    rows: list[dict[str, object]] = []
    for suite in sorted(set(strata["suite"].to_list())):
        of_suite = strata.filter(pl.col("suite") == suite)
        by_stratum: dict[str, list[str]] = {}
        for item_id, stratum in of_suite.select("item_id", "stratum").iter_rows():
            by_stratum.setdefault(stratum, []).append(str(item_id))
        sizes = {s: len(ids) for s, ids in by_stratum.items()}
        weights = {s: policy.weight(s) for s in sizes}
        take = allocate(sizes, weights, policy.size(suite), policy.min_per_stratum)
        for stratum in sorted(by_stratum):
            ranked = sorted(by_stratum[stratum], key=lambda i: rank_key(policy.seed, checkpoint, suite, i))
            k = take[stratum]
            weight_note = f", oversampled ×{weights[stratum]:g}" if weights[stratum] != 1.0 else ""
            reason = f"{stratum}: {stratum_reason(stratum)}; {k} of {sizes[stratum]} items{weight_note}"
            for item_id in ranked[:k]:
                rows.append({
                    "checkpoint": checkpoint, "suite": suite, "item_id": item_id, "kind": label_family(kinds.get(suite, "")), "suite_kind": kinds.get(suite, ""),
                    "stratum": stratum, "reason": reason, "stratum_size": sizes[stratum], "stratum_sampled": k,
                    "weight": sizes[stratum] / k, "rank_key": rank_key(policy.seed, checkpoint, suite, item_id),
                    "seed": policy.seed, "policy_version": policy.version, "policy_hash": policy.policy_hash,
                })  # fmt: skip
    return pl.DataFrame(rows, schema=SAMPLE_SCHEMA)


def checkpoint_strata(
    *,
    kinds: Mapping[str, str],
    item_scores: pl.DataFrame,
    judge_verdicts: pl.DataFrame | None = None,
    refusal_labels: pl.DataFrame | None = None,
    policy: SamplingPolicy,
) -> pl.DataFrame:
    """(suite, item_id, stratum) for every sampled kind of suite of one checkpoint, from its result frames.
    Pairwise suites without ``judge_verdicts`` rows and refusal suites without ``refusal_labels`` rows are
    stratified by the automatic score when one exists."""
    parts = []
    judged = (
        set(judge_verdicts["suite"].unique().to_list())
        if judge_verdicts is not None and judge_verdicts.height
        else set()
    )
    classified = (
        set(refusal_labels["suite"].unique().to_list())
        if refusal_labels is not None and refusal_labels.height
        else set()
    )
    wanted = {s for s, k in kinds.items() if is_sampled(k, policy)}
    if judge_verdicts is not None and judged & wanted:
        parts.append(pairwise_strata(judge_verdicts.filter(pl.col("suite").is_in(sorted(judged & wanted)))))
    if refusal_labels is not None and classified & wanted:
        parts.append(
            refusal_strata(refusal_labels.filter(pl.col("suite").is_in(sorted(classified & wanted))))
        )
    rest = sorted(wanted - judged - classified)
    if rest and item_scores.height:
        parts.append(generation_strata(item_scores.filter(pl.col("suite").is_in(rest))))
    if not parts:
        return pl.DataFrame(schema={"suite": pl.String, "item_id": pl.String, "stratum": pl.String})
    return pl.concat(parts, how="vertical")
