"""Per-item scores from predictions: pure functions, one per metric. Bump ``scorer_version`` in the suite
spec when a scorer's behaviour changes."""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from eval_assets.suites.gsm8k import extract_answer
from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem
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


class MalformedPredictionError(ValueError):
    """A cached or fresh prediction cannot be read: reported with its location, never scored as wrong."""


def score_likelihood(item: LikelihoodItem, output: str) -> tuple[str, bool, bool]:
    """(predicted choice index, correct, parsed): acc = argmax of the continuation log-likelihoods."""
    logprobs = json.loads(output)["logprobs"]
    if len(logprobs) != len(item.continuations):
        raise MalformedPredictionError(
            f"item {item.item_id}: {len(logprobs)} log-likelihoods for {len(item.continuations)} choices"
        )
    best = max(range(len(logprobs)), key=lambda i: logprobs[i])
    return str(best), best == item.gold, True


def score_exact_match(item: GenerationItem, output: str) -> tuple[str, bool, bool]:
    """(extracted final number, correct, parsed). An answer with no number is wrong and counted unparsed."""
    answer = extract_answer(json.loads(output)["text"])
    return (answer or ""), answer == item.gold, answer is not None


def score_items(spec: SuiteSpec, items: Sequence[Item], predictions: pl.DataFrame) -> pl.DataFrame:
    by_id = dict(zip(predictions["item_id"].to_list(), predictions["output"].to_list(), strict=True))
    checkpoint = predictions["checkpoint"][0] if predictions.height else ""
    rows: list[tuple[str, str, bool, bool]] = []
    for item in items:
        if item.item_id not in by_id:
            raise MalformedPredictionError(f"suite {spec.name}: no prediction for item {item.item_id}")
        output = by_id[item.item_id]
        try:
            if isinstance(item, LikelihoodItem):
                prediction, correct, parsed = score_likelihood(item, output)
                gold = str(item.gold)
            else:
                prediction, correct, parsed = score_exact_match(item, output)
                gold = item.gold
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise MalformedPredictionError(
                f"suite {spec.name}, item {item.item_id}: prediction {output[:80]!r} is malformed ({exc})"
            ) from exc
        rows.append((prediction, gold, correct, parsed))
    return pl.DataFrame(
        {
            "checkpoint": [checkpoint] * len(rows),
            "suite": [spec.name] * len(rows),
            "item_id": [item.item_id for item in items],
            "prediction": [r[0] for r in rows],
            "gold": [r[1] for r in rows],
            "correct": [r[2] for r in rows],
            "score": [float(r[2]) for r in rows],
            "parsed": [r[3] for r in rows],
        },
        schema=ITEM_SCORE_SCHEMA,
    )


def score_code(spec: SuiteSpec, checkpoint: str, executions: pl.DataFrame) -> pl.DataFrame:
    """Per-problem scores of a code suite from its executions: ``score`` is the unbiased pass@1 of the
    problem (c/n), ``correct`` whether its first sample passed (a binary pass@1 draw, for paired tests),
    ``parsed`` whether no execution ended in ``error`` (a sandbox fault, not the model's)."""
    per_problem = (
        executions.group_by("task_id", maintain_order=True)
        .agg(
            pl.len().alias("n"),
            pl.col("passed").sum().alias("c"),
            pl.col("passed").sort_by("sample_index").first().alias("first_passed"),
            (pl.col("status") != "error").all().alias("clean"),
        )
        .sort("task_id")
    )
    return pl.DataFrame(
        {
            "checkpoint": [checkpoint] * per_problem.height,
            "suite": [spec.name] * per_problem.height,
            "item_id": per_problem["task_id"],
            "prediction": [f"{c}/{n} passed" for c, n in zip(per_problem["c"], per_problem["n"], strict=True)],
            "gold": [""] * per_problem.height,
            "correct": per_problem["first_passed"],
            "score": (per_problem["c"] / per_problem["n"]).cast(pl.Float64),
            "parsed": per_problem["clean"],
        },
        schema=ITEM_SCORE_SCHEMA,
    )
