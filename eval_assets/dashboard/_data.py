"""What the dashboard shows, read from the results tables into plain frames (no HTML, no plotting here).

Tables written by other stages (``judge_verdicts``, ``refusal_labels``, the human-eval tables) are read when
present; when absent, their section says so instead of showing nothing or failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike

import polars as pl

from eval_assets.human_eval import (
    Agreement,
    HumanEvalStore,
    between_raters,
    classifier_vs_humans,
    judge_vs_humans,
    scorer_vs_humans,
)
from eval_assets.human_eval._store import read_frame
from resources.table_location import TableLocation

#: Rows of gate_decisions that are not a rule's verdict on a suite.
NOT_VERDICTS = ("promotion", "production_move")


Tables = TableLocation | str | PathLike[str]


def read_table(tables: Tables, name: str, checkpoint: str | None = None) -> pl.DataFrame:
    """Table ``name`` under ``tables`` (one checkpoint's rows), empty when the table does not exist."""
    return read_frame(TableLocation.of(tables).child(name), checkpoint)


@dataclass
class CheckpointView:
    """Everything one checkpoint's page shows. Empty frames mean "no rows"; ``notes`` say why."""

    checkpoint: str
    scores: pl.DataFrame
    comparisons: pl.DataFrame
    verdicts: pl.DataFrame
    promotion: pl.DataFrame
    moves: pl.DataFrame
    judge: pl.DataFrame
    refusal: pl.DataFrame
    cost: pl.DataFrame
    sample: pl.DataFrame
    agreement: list[Agreement]
    labels: int
    notes: dict[str, str] = field(default_factory=dict)


def latest_decisions(decisions: pl.DataFrame) -> pl.DataFrame:
    if decisions.height == 0:
        return decisions
    return (
        decisions.sort("decided_at")
        .group_by(["suite", "rule"], maintain_order=True)
        .last()
        .sort(["suite", "rule"])
    )


JUDGE_COLUMNS = ("suite", "item_id", "order", "verdict", "position", "candidate_length", "opponent_length")


def judge_diagnostics(verdicts: pl.DataFrame) -> pl.DataFrame:
    """Per suite, the judge's own diagnostics (:func:`eval_assets.judge.diagnose`: win-rate with ties as half,
    position consistency, first-position and longer-answer preference, length-controlled win-rate) plus
    errors, tokens, cost and mean latency. Placeholder rows (no order) are left out."""
    from eval_assets.judge import diagnose

    if verdicts.height == 0:
        return pl.DataFrame()
    missing = [c for c in JUDGE_COLUMNS if c not in verdicts.columns]
    if missing:
        raise ValueError(f"judge_verdicts: missing column(s) {missing}")
    rows = []
    ordered = verdicts.filter(pl.col("order").is_in(["ab", "ba"]))
    for suite in sorted(ordered["suite"].unique().to_list()):
        raw = ordered.filter(pl.col("suite") == suite)
        d = diagnose(raw.to_dicts())
        tokens = sum(
            int(raw[c].fill_null(0).sum()) for c in ("input_tokens", "output_tokens") if c in raw.columns
        )
        rows.append({
            "suite": suite, "prompts": d.prompts, "scored": d.scored, "errors": d.errors, "wins": d.wins,
            "ties": d.ties, "losses": d.losses, "win_rate": d.win_rate,
            "position_consistency": d.position_consistency, "first_position_preference": d.first_position_preference,
            "longer_answer_preference": d.longer_answer_preference,
            "length_controlled_win_rate": d.length_controlled_win_rate, "tokens": tokens,
            "cost_usd": float(raw["cost_usd"].fill_null(0).sum()) if "cost_usd" in raw.columns else 0.0,
            "latency_s": float(raw["latency_s"].mean()) if "latency_s" in raw.columns else None,  # type: ignore[arg-type]
        })  # fmt: skip
    frame = pl.DataFrame(rows)
    # NaN (a share of nothing) is shown as '-'
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def refusal_rates(labels: pl.DataFrame) -> pl.DataFrame:
    """Per suite, classifier and category: items and the share labelled refusal / compliance / partial."""
    if labels.height == 0:
        return pl.DataFrame()
    frame = labels
    for column in ("classifier", "category"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit("-").alias(column))
    return (
        frame.group_by(["suite", "classifier", "category"])
        .agg(
            pl.len().alias("n_items"),
            (pl.col("label") == "refusal").mean().alias("refusal_rate"),
            (pl.col("label") == "compliance").mean().alias("compliance_rate"),
            (pl.col("label") == "partial").mean().alias("partial_rate"),
            (pl.col("label") == "error").sum().alias("errors"),
        )
        .sort(["suite", "classifier", "category"])
    )


def cost_rows(predictions: pl.DataFrame, judge: pl.DataFrame) -> pl.DataFrame:
    """Per suite: predictions, how many came from the cache, and the judge's tokens and dollars."""
    rows = []
    suites = sorted(set(predictions["suite"].to_list() if predictions.height else []) |
                    set(judge["suite"].to_list() if judge.height else []))  # fmt: skip
    for suite in suites:
        pred = predictions.filter(pl.col("suite") == suite) if predictions.height else predictions
        jud = (
            judge.filter((pl.col("suite") == suite) & pl.col("order").is_in(["ab", "ba"]))
            if judge.height
            else judge
        )
        rows.append({
            "suite": suite, "predictions": pred.height,
            "cached": int(pred["cached"].sum()) if pred.height and "cached" in pred.columns else 0,
            "judge_calls": jud.height,
            "judge_tokens": sum(int(jud[c].fill_null(0).sum()) for c in ("input_tokens", "output_tokens")
                                if jud.height and c in jud.columns),
            "judge_cost_usd": float(jud["cost_usd"].fill_null(0).sum()) if jud.height and "cost_usd" in jud.columns else 0.0,
        })  # fmt: skip
    return pl.DataFrame(rows)


def checkpoint_view(tables: Tables, checkpoint: str) -> CheckpointView:
    decisions = read_table(tables, "gate_decisions", checkpoint)
    latest = latest_decisions(decisions)
    notes: dict[str, str] = {}
    verdicts = latest.filter(~pl.col("rule").is_in(NOT_VERDICTS)) if latest.height else latest
    promotion = latest.filter(pl.col("rule") == "promotion") if latest.height else latest
    all_decisions = read_table(tables, "gate_decisions")
    moves = (
        all_decisions.filter(
            (pl.col("rule") == "production_move") & (pl.col("checkpoint") == checkpoint)
        ).sort("sequence")
        if all_decisions.height
        else all_decisions
    )
    judge = read_table(tables, "judge_verdicts", checkpoint)
    if judge.height == 0:
        notes["judge"] = (
            "no judge_verdicts rows for this checkpoint (no pairwise suite ran, or the table is absent)"
        )
    try:
        diagnostics = judge_diagnostics(judge)
    except ValueError as exc:
        diagnostics, notes["judge"] = pl.DataFrame(), str(exc)
    refusal = read_table(tables, "refusal_labels", checkpoint)
    if refusal.height == 0:
        notes["refusal"] = (
            "no refusal_labels rows for this checkpoint (no red-team suite ran, or the table is absent)"
        )
    store = HumanEvalStore(tables)
    sample = store.read_sample(checkpoint)
    labels = store.read_labels(checkpoint)
    if sample.height == 0:
        notes["human"] = "no human_eval_sample rows for this checkpoint"
    agreement: list[Agreement] = []
    if labels.height:
        item_scores = read_table(tables, "item_scores", checkpoint)
        agreement = [
            *judge_vs_humans(labels, judge, pooled=False),
            *classifier_vs_humans(labels, refusal, pooled=False),
            *scorer_vs_humans(labels, item_scores, pooled=False),
            *between_raters(labels, pooled=False),
        ]
    scores = read_table(tables, "scores", checkpoint)
    if scores.height == 0:
        notes["scores"] = "no scores for this checkpoint yet: evaluate it with `evalgate evaluate NAME`"
    return CheckpointView(
        checkpoint=checkpoint, scores=scores.sort("suite") if scores.height else scores,
        comparisons=read_table(tables, "comparisons", checkpoint), verdicts=verdicts, promotion=promotion,
        moves=moves, judge=diagnostics, refusal=refusal_rates(refusal),
        cost=cost_rows(read_table(tables, "predictions", checkpoint), judge), sample=sample, agreement=agreement,
        labels=labels.height, notes=notes,
    )  # fmt: skip


def trend_points(tables: Tables, order: list[str]) -> pl.DataFrame:
    """Every (checkpoint, suite) score in ``order`` (oldest first), with its position and version group:
    ``segment`` counts version changes along the suite's history; only points of one segment are comparable."""
    scores = read_table(tables, "scores")
    if scores.height == 0:
        return pl.DataFrame()
    position = {name: i for i, name in enumerate(order)}
    scores = scores.filter(pl.col("checkpoint").is_in(order)).with_columns(
        pl.col("checkpoint").replace_strict(position, return_dtype=pl.Int64).alias("position")
    )
    parts = []
    for suite in sorted(scores["suite"].unique().to_list()):
        rows = scores.filter(pl.col("suite") == suite).sort("position")
        versions = rows["suite_code_version"].to_list()
        segment, seg = [], 0
        for i, version in enumerate(versions):
            if i and version != versions[i - 1]:
                seg += 1
            segment.append(seg)
        parts.append(rows.with_columns(pl.Series("segment", segment, dtype=pl.Int64)))
    return pl.concat(parts, how="diagonal_relaxed")
