"""Per suite: ``predictions/<suite>`` → ``scores/<suite>`` → ``comparison/<suite>``, each partitioned by
checkpoint. Thin: the work is in :mod:`eval_assets.predict`, :mod:`eval_assets.scoring`,
:mod:`eval_assets.compare`; I/O goes through the resources."""


import json
import time
from typing import Any

import dagster as dg
import polars as pl

from eval_assets import stats
from eval_assets.checkpoints import CheckpointManifest
from eval_assets.code import (
    EXECUTION_KEY_VERSION,
    CodeSample,
    SqliteExecutionStore,
    code_suite,
    execute_samples,
    status_counts,
)
from eval_assets.datapkgs import DATA_PACKAGES
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import GatePolicy
from eval_assets.hashing import hash_value
from eval_assets.predict import predict_suite
from eval_assets.run_manifest import run_manifest
from eval_assets.scoring import score_code, score_items
from eval_assets.suites.loaders import load_items
from eval_assets.suites.spec import SuiteSpec, suite_code_version
from resources.evalgate import CodeSandbox, EvalgateHome, ModelRunner, SuiteSettings
from sandboxes import Limits

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
        "unparsed": pl.Int64,
        "model_hash": pl.String,
        "details": pl.String,
    }
)

def _code_sample(item_id: str, output: str) -> CodeSample:
    task_id, _, sample = item_id.partition("#")
    return CodeSample(task_id=task_id, completion=json.loads(output)["text"], sample_index=int(sample or 0))


def _pass_at_k(executions: pl.DataFrame, ks: tuple[int, ...]) -> dict[str, Any]:
    """pass@k with its CI for every k the samples allow."""
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


def _progress_logger(context: dg.AssetExecutionContext, suite: str) -> Any:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 10:
            last[0] = now
            context.log.info(f"{suite}: {done}/{total} uncached items predicted")

    return report


def _suite_asset(
    key: list[str],
    *,
    ins: dict[str, dg.AssetIn] | None,
    code_version: str,
    group: str,
    tags: dict[str, str],
    description: str,
) -> Any:
    """The decorator every per-suite asset shares: partitioned by checkpoint, materialized when new or changed."""
    return dg.asset(
        key=key,
        ins=ins,
        partitions_def=checkpoints,
        code_version=code_version,
        automation_condition=evaluate_when_new_or_changed(),
        group_name=group,
        kinds={"python", "deltalake"},
        tags=tags,
        description=description,
    )


def build_suite_assets(spec: SuiteSpec, policy: GatePolicy) -> list[dg.AssetsDefinition]:
    suite = spec.name
    version = suite_code_version(spec)
    tags = {"suite": suite, "kind": spec.kind}

    @_suite_asset(
        ["predictions", suite],
        ins={"checkpoint_manifest": dg.AssetIn(key="checkpoint_manifest")},
        code_version=version,
        group="evaluation",
        tags=tags,
        description=f"Predictions of the checkpoint on {suite} v{spec.version}, cached per item on "
        "(model_hash, prompt_hash, sampling_hash).",
    )
    def predictions(
        context: dg.AssetExecutionContext,
        checkpoint_manifest: dict[str, Any],
        evalgate: EvalgateHome,
        model_runner: ModelRunner,
        suite_settings: SuiteSettings,
    ) -> dg.Output[pl.DataFrame]:
        manifest = CheckpointManifest.model_validate(checkpoint_manifest)
        items = load_items(spec, suite_settings.profile, suite_settings.data_root())
        frame, run = predict_suite(
            checkpoint=manifest.name,
            model_hash=manifest.model_hash,
            tokenizer_hash=manifest.tokenizer_hash,
            spec=spec,
            items=items,
            cache=evalgate.prediction_cache(),
            engine=model_runner.engine(manifest),
            open_backend=lambda: model_runner.open(manifest, evalgate.layout.model_cache),
            progress=_progress_logger(context, suite),
        )
        evalgate.results().replace("predictions", frame, checkpoint=manifest.name, suite=suite)
        content = hash_value(list(zip(frame["prompt_hash"].to_list(), frame["output"].to_list(), strict=True)))
        return dg.Output(
            frame,
            data_version=dg.DataVersion(content[:32]),
            metadata={
                "items": run.items,
                "cache_hits": run.cache_hits,
                "cache_misses": run.cache_misses,
                "model_calls": run.model_calls,
                "wall_seconds": round(run.wall_seconds, 3),
                "engine": run.engine,
                "profile": suite_settings.profile,
                "run_manifest": dg.MetadataValue.json(
                    run_manifest(
                        model_hash=manifest.model_hash,
                        tokenizer_hash=manifest.tokenizer_hash,
                        sampling_hash=frame["sampling_hash"][0] if frame.height else None,
                        suite=suite,
                        suite_version=spec.version,
                        suite_code_version=version,
                        template_version=spec.template.version,
                        seed=spec.sampling.seed if spec.sampling else None,
                        profile=suite_settings.profile,
                        data_packages=DATA_PACKAGES,
                    )
                ),
            },
        )

    assets: list[dg.AssetsDefinition] = [predictions]

    if spec.kind == "code":
        limits = Limits(
            cpu_seconds=spec.limits.cpu_seconds if spec.limits else 10.0,
            memory_mb=spec.limits.memory_mb if spec.limits else 512,
        )

        @_suite_asset(
            ["code_executions", suite],
            ins={"predictions": dg.AssetIn(key=["predictions", suite])},
            code_version=f"{version}-{EXECUTION_KEY_VERSION}",
            group="evaluation",
            tags=tags,
            description=f"Every {suite} sample run against its tests in the sandbox, cached on (program hash, "
            "tests hash, limits, sandbox version).",
        )
        def code_executions(
            context: dg.AssetExecutionContext,
            predictions: pl.DataFrame,
            evalgate: EvalgateHome,
            code_sandbox: CodeSandbox,
            suite_settings: SuiteSettings,
        ) -> dg.Output[pl.DataFrame]:
            started = time.perf_counter()
            problems = code_suite(spec.loader).load(suite_settings.data_root())
            samples = [_code_sample(item_id, output) for item_id, output in predictions.select("item_id", "output").iter_rows()]
            store = SqliteExecutionStore(evalgate.layout.tables / "code_execution_cache.sqlite")
            with code_sandbox.pool() as pool:
                executions = execute_samples(problems, samples, pool, store, limits)
            rows = [
                {"checkpoint": context.partition_key, "suite": suite, "model_hash": predictions["model_hash"][0]}
                | execution.to_row()
                for execution in executions
            ]
            frame = pl.DataFrame(rows, infer_schema_length=None)
            evalgate.results().replace("code_executions", frame, checkpoint=context.partition_key, suite=suite)
            cached = sum(1 for e in executions if e.outcome.cached)
            return dg.Output(
                frame,
                data_version=dg.DataVersion(hash_value(frame.select("execution_key", "passed").rows())[:32]),
                metadata={
                    "executions": len(executions),
                    "cached": cached,
                    "executed": len(executions) - cached,
                    "statuses": dg.MetadataValue.json(status_counts(executions)),
                    "sandbox": executions[0].outcome.result.sandbox if executions else "",
                    "wall_seconds": round(time.perf_counter() - started, 3),
                },
            )

        assets.append(code_executions)

    scored_from = ["code_executions", suite] if spec.kind == "code" else ["predictions", suite]

    @_suite_asset(
        ["scores", suite],
        ins={"upstream": dg.AssetIn(key=scored_from)},
        code_version=version,
        group="evaluation",
        tags=tags,
        description=f"Per-item scores and {spec.metric} with a bootstrap CI on {suite}.",
    )
    def scores(
        context: dg.AssetExecutionContext,
        upstream: pl.DataFrame,
        evalgate: EvalgateHome,
        suite_settings: SuiteSettings,
    ) -> dg.Output[dict[str, Any]]:
        checkpoint = context.partition_key
        details: dict[str, Any] = {}
        if spec.kind == "code":
            item_scores = score_code(spec, checkpoint, upstream)
            details = _pass_at_k(upstream, spec.pass_at)
        else:
            items = load_items(spec, suite_settings.profile, suite_settings.data_root())
            item_scores = score_items(spec, items, upstream)
        interval = stats.bootstrap_mean_ci(
            item_scores["score"].to_numpy(), confidence=0.95, n_resamples=10_000, method="percentile", seed=0
        )
        summary: dict[str, Any] = {
            "checkpoint": checkpoint,
            "suite": suite,
            "suite_version": spec.version,
            "suite_code_version": version,
            "profile": suite_settings.profile,
            "metric": "pass@1" if spec.kind == "code" else spec.metric,
            "score": interval.estimate,
            "ci_low": interval.low,
            "ci_high": interval.high,
            "confidence": interval.confidence,
            "ci_method": interval.method,
            "n": interval.n,
            "unparsed": int((~item_scores["parsed"]).sum()),
            "model_hash": upstream["model_hash"][0],
            "details": json.dumps(details, sort_keys=True),
        }
        results = evalgate.results()
        results.replace("item_scores", item_scores, checkpoint=checkpoint, suite=suite)
        results.replace("scores", pl.DataFrame([summary], schema=SCORES_SCHEMA), checkpoint=checkpoint, suite=suite)
        return dg.Output(
            summary,
            data_version=dg.DataVersion(hash_value(item_scores["score"].to_list())[:32]),
            metadata={
                summary["metric"]: dg.MetadataValue.float(interval.estimate),
                "ci": f"[{interval.low:.3f}, {interval.high:.3f}] ({interval.confidence:.0%}, {interval.method})",
                "n": interval.n,
                "unparsed": summary["unparsed"],
                **{key: dg.MetadataValue.json(value) for key, value in details.items()},
            },
        )

    return [*assets, scores]
