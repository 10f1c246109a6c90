"""``code``: n samples per problem continued from the problem's prompt, each program run against the problem's
tests in the sandbox (an extra stage, ``code_executions/<suite>``), scored by pass@k.

Samples whose sandbox status is ``error`` are the infrastructure's failure, not the model's: they are excluded
from the score and counted (``errors``, in samples). A problem all of whose samples errored is excluded from
the item scores altogether (and listed in the details).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import polars as pl

from eval_assets import stats
from eval_assets.code import EXECUTION_KEY_VERSION as _EXECUTION_KEY_VERSION
from eval_assets.code import CodeSample, code_suite, execute_samples, open_execution_store, status_counts
from eval_assets.kinds._errors import MalformedPredictionError
from eval_assets.kinds._registry import register_kind, register_scorer
from eval_assets.kinds._requests import GENERATION
from eval_assets.kinds._scoring import build_scorer, item_scores_frame
from eval_assets.kinds._types import (
    ExecutionOutput,
    ItemScore,
    NoParams,
    Scorer,
    ScorerEntry,
    Stage,
    StageEnv,
    StageResult,
    SuiteKind,
    SuiteScores,
)
from eval_assets.suites.items import GenerationItem, Item
from sandboxes import Limits

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

#: The sandbox status that is the infrastructure's fault (the program never got a fair run).
INFRASTRUCTURE_ERROR = "error"


def code_sample(item_id: str, output: str) -> CodeSample:
    """A prediction row of a code suite (item id ``<task>#<k>``) as the sample the sandbox runs."""
    task_id, _, sample = item_id.partition("#")
    try:
        completion = json.loads(output)["text"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise MalformedPredictionError(
            f"item {item_id}: prediction {output[:80]!r} has no `text` ({exc})"
        ) from exc
    return CodeSample(task_id=task_id, completion=completion, sample_index=int(sample or 0))


def limits_of(spec: SuiteSpec) -> Limits:
    return Limits(
        cpu_seconds=spec.limits.cpu_seconds if spec.limits else 10.0,
        memory_mb=spec.limits.memory_mb if spec.limits else 512,
    )


def run_code_executions(spec: SuiteSpec, predictions: pl.DataFrame, env: StageEnv) -> StageResult:
    """Every sample run against its problem's tests in the sandbox, through the execution cache."""
    started = time.perf_counter()
    problems = code_suite(spec.loader).load(env.data_root)
    samples = [
        code_sample(item_id, output)
        for item_id, output in predictions.select("item_id", "output").iter_rows()
    ]
    store = open_execution_store(env.tables)
    with env.sandbox_pool() as pool:
        executions = execute_samples(
            problems, samples, pool, store, limits_of(spec), report_as=(env.checkpoint, spec.name)
        )
    model_hash = predictions["model_hash"][0] if predictions.height else ""
    rows = [
        {"checkpoint": env.checkpoint, "suite": spec.name, "model_hash": model_hash} | execution.to_row()
        for execution in executions
    ]
    frame = pl.DataFrame(rows, infer_schema_length=None)
    cached = sum(1 for e in executions if e.outcome.cached)
    return StageResult(
        frame=frame,
        content=frame.select("execution_key", "passed").rows() if frame.height else [],
        metadata={
            "executions": len(executions),
            "cached": cached,
            "executed": len(executions) - cached,
            "statuses": status_counts(executions),
            "sandbox": executions[0].outcome.result.sandbox if executions else "",
            "wall_seconds": round(time.perf_counter() - started, 3),
        },
    )


CODE_EXECUTIONS = Stage(
    name="code_executions",
    version=_EXECUTION_KEY_VERSION,
    description="Every {suite} sample run against its tests in the sandbox, cached on (program hash, tests hash, "
    "limits, sandbox version).",
    run=run_code_executions,
)


# -- scoring ---------------------------------------------------------------------------------------------------
def sample_passed(_item: object, output: ExecutionOutput) -> ItemScore:
    """One sample: passed or not. An infrastructure error is not the model's answer (``parsed`` stays True; the
    kind excludes the sample and counts it)."""
    return ItemScore(output.status, "", output.passed, float(output.passed), True)


def _build_pass_at_k(_params: NoParams) -> Scorer[Any, ExecutionOutput]:
    return sample_passed


PASS_AT_K = register_scorer(
    ScorerEntry(
        name="pass_at_k",
        kinds=frozenset({"code"}),
        build=_build_pass_at_k,
        params=NoParams,
        description="pass@k over n samples per problem (unbiased estimator), programs run in the sandbox",
        binary=False,
    )
)


def pass_at_k_details(executions: pl.DataFrame, ks: tuple[int, ...]) -> dict[str, Any]:
    """pass@k with its CI for every k the samples allow (``executions``: the samples that ran)."""
    if executions.height == 0:
        return {f"pass@{k}": "no sample ran without an infrastructure error" for k in ks}
    counts = executions.group_by("task_id").agg(pl.len().alias("n"), pl.col("passed").sum().alias("c"))
    n, c = counts["n"].to_numpy(), counts["c"].to_numpy()
    details: dict[str, Any] = {}
    for k in ks:
        if k > int(n.min()):
            details[f"pass@{k}"] = f"needs {k} samples per problem, profile has {int(n.min())}"
            continue
        interval = stats.pass_at_k_interval(n, c, k, method="percentile", seed=0)
        details[f"pass@{k}"] = {"estimate": interval.estimate, "low": interval.low, "high": interval.high}
    return details


def score_code(spec: SuiteSpec, checkpoint: str, executions: pl.DataFrame) -> SuiteScores:
    """Per-problem scores from the executions: each sample judged by the spec's scorer (``pass_at_k``: passed or
    not), ``score`` the unbiased pass@1 of the problem (c/n over its samples that ran), ``correct`` whether its
    first such sample passed (a binary pass@1 draw, for paired tests). Samples with status ``error`` are excluded
    and counted; a problem with no sample left is excluded. With several samples per problem the suite's CI is a
    Wilson interval clustered by problem (``sample_counts``)."""
    status = pl.col("status")
    scorer = build_scorer(spec)
    ran = executions.filter(status != INFRASTRUCTURE_ERROR)
    ran = ran.with_columns(
        pl.Series(
            "sample_score",
            [
                scorer(None, ExecutionOutput(task, index, state, bool(passed))).score
                for task, index, state, passed in ran.select(
                    "task_id", "sample_index", "status", "passed"
                ).iter_rows()
            ],
            dtype=pl.Float64,
        )
    )
    errored = executions.group_by("task_id").agg((status == INFRASTRUCTURE_ERROR).sum().alias("errored"))
    per_problem = (
        ran.group_by("task_id", maintain_order=True)
        .agg(
            pl.len().alias("n"),
            pl.col("sample_score").sum().alias("c"),
            (pl.col("sample_score").sort_by("sample_index").first() > 0).alias("first_passed"),
        )
        .join(errored, on="task_id", how="left")
        .sort("task_id")
    )
    scores = [
        ItemScore(
            prediction=f"{c:g}/{n} passed" + (f" ({e} errored)" if e else ""),
            gold="",
            correct=bool(first),
            score=c / n,
            parsed=True,
        )
        for c, n, first, e in per_problem.select("c", "n", "first_passed", "errored").iter_rows()
    ]
    excluded = sorted(set(executions["task_id"].to_list()) - set(per_problem["task_id"].to_list()))
    samples_per_problem = executions.group_by("task_id").len()["len"].max() if executions.height else 1
    details = pass_at_k_details(ran, spec.pass_at)
    details["error_samples"] = executions.height - ran.height
    if excluded:
        details["problems_excluded"] = excluded
    binary = samples_per_problem == 1
    return SuiteScores(
        item_scores=item_scores_frame(spec.name, checkpoint, per_problem["task_id"].to_list(), scores),
        n_total=executions.height,
        errors=executions.height - ran.height,
        binary=binary,
        metric="pass@1",
        details=details,
        sample_counts=None if binary else tuple(per_problem["n"].to_list()),
    )


def _score(
    spec: SuiteSpec, checkpoint: str, executions: pl.DataFrame, _load_items: Callable[[], list[Item]]
) -> SuiteScores:
    return score_code(spec, checkpoint, executions)


CODE_KIND = register_kind(
    SuiteKind(
        name="code",
        description="programs sampled from the model, run against tests in the sandbox, scored by pass@k",
        item_type=GenerationItem,
        request=GENERATION,
        score=_score,
        sampling="required",
        stages=(CODE_EXECUTIONS,),
        takes_limits=True,
    )
)
