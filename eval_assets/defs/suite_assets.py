"""Per suite: ``predictions/<suite>`` → ``scores/<suite>`` → ``comparison/<suite>``, each partitioned by
checkpoint. Thin: the work is in :mod:`eval_assets.predict`, :mod:`eval_assets.scoring`,
:mod:`eval_assets.compare`; I/O goes through the resources."""


import time
from typing import Any

import dagster as dg
import polars as pl

from eval_assets import stats
from eval_assets.checkpoints import CheckpointManifest
from eval_assets.compare import compare
from eval_assets.datapkgs import DATA_PACKAGES
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import GatePolicy
from eval_assets.hashing import hash_value
from eval_assets.predict import predict_suite
from eval_assets.run_manifest import run_manifest
from eval_assets.scoring import score_items
from eval_assets.suites.loaders import load_items
from eval_assets.suites.spec import SuiteSpec, suite_code_version
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

SCORES_SCHEMA = {
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
}

COMPARISON_SCHEMA = {
    "checkpoint": pl.String,
    "suite": pl.String,
    "candidate": pl.String,
    "production": pl.String,
    "n": pl.Int64,
    "candidate_accuracy": pl.Float64,
    "production_accuracy": pl.Float64,
    "difference": pl.Float64,
    "low": pl.Float64,
    "high": pl.Float64,
    "confidence": pl.Float64,
    "method": pl.String,
    "improvements": pl.Int64,
    "regressions": pl.Int64,
    "mcnemar_p": pl.Float64,
    "mcnemar_method": pl.String,
    "minimum_detectable_effect": pl.Float64,
    "is_production": pl.Boolean,
    "policy_version": pl.Int64,
}


def _progress_logger(context: dg.AssetExecutionContext, suite: str) -> Any:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 10:
            last[0] = now
            context.log.info(f"{suite}: {done}/{total} uncached items predicted")

    return report


def build_suite_assets(spec: SuiteSpec, policy: GatePolicy) -> list[dg.AssetsDefinition]:
    suite = spec.name
    version = suite_code_version(spec)
    tags = {"suite": suite, "kind": spec.kind}

    @dg.asset(
        key=["predictions", suite],
        partitions_def=checkpoints,
        code_version=version,
        automation_condition=evaluate_when_new_or_changed(),
        group_name="evaluation",
        kinds={"python", "deltalake"},
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

    @dg.asset(
        key=["scores", suite],
        ins={"predictions": dg.AssetIn(key=["predictions", suite])},
        deps=[],
        partitions_def=checkpoints,
        code_version=version,
        automation_condition=evaluate_when_new_or_changed(),
        group_name="evaluation",
        kinds={"python", "deltalake"},
        tags=tags,
        description=f"Per-item scores and {spec.metric} with a bootstrap CI on {suite}.",
    )
    def scores(
        context: dg.AssetExecutionContext,
        predictions: pl.DataFrame,
        evalgate: EvalgateHome,
        suite_settings: SuiteSettings,
    ) -> dg.Output[dict[str, Any]]:
        checkpoint = context.partition_key
        items = load_items(spec, suite_settings.profile, suite_settings.data_root())
        item_scores = score_items(spec, items, predictions)
        correct = item_scores["correct"].cast(pl.Float64).to_numpy()
        interval = stats.bootstrap_mean_ci(correct, confidence=0.95, n_resamples=10_000, method="percentile", seed=0)
        summary: dict[str, Any] = {
            "checkpoint": checkpoint,
            "suite": suite,
            "suite_version": spec.version,
            "suite_code_version": version,
            "profile": suite_settings.profile,
            "metric": spec.metric,
            "score": interval.estimate,
            "ci_low": interval.low,
            "ci_high": interval.high,
            "confidence": interval.confidence,
            "ci_method": interval.method,
            "n": interval.n,
            "unparsed": int((~item_scores["parsed"]).sum()),
            "model_hash": predictions["model_hash"][0],
        }
        results = evalgate.results()
        results.replace("item_scores", item_scores, checkpoint=checkpoint, suite=suite)
        results.replace("scores", pl.DataFrame([summary], schema=SCORES_SCHEMA), checkpoint=checkpoint, suite=suite)
        return dg.Output(
            summary,
            data_version=dg.DataVersion(hash_value(item_scores["correct"].to_list())[:32]),
            metadata={
                spec.metric: dg.MetadataValue.float(interval.estimate),
                "ci": f"[{interval.low:.3f}, {interval.high:.3f}] ({interval.confidence:.0%}, {interval.method})",
                "n": interval.n,
                "unparsed": summary["unparsed"],
            },
        )

    @dg.asset(
        key=["comparison", suite],
        ins={"scores": dg.AssetIn(key=["scores", suite])},
        partitions_def=checkpoints,
        code_version=f"{version}-{policy.code_version}",
        automation_condition=evaluate_when_new_or_changed(),
        group_name="gate",
        kinds={"python", "deltalake"},
        tags=tags,
        description=f"{suite}: paired difference vs the production checkpoint on shared items, with its CI "
        "and McNemar's test.",
    )
    def comparison(
        context: dg.AssetExecutionContext, scores: dict[str, Any], evalgate: EvalgateHome
    ) -> dg.Output[dict[str, Any]]:
        checkpoint = context.partition_key
        results = evalgate.results()
        pointer = evalgate.production().get()
        production = pointer["checkpoint"] if pointer else None
        production_scores = None
        if production is not None and production != checkpoint:
            summary = results.read("scores", checkpoint=production, suite=suite)
            if summary.height == 0:
                raise ValueError(
                    f"production checkpoint {production} has no {suite} scores yet: materialize its partition "
                    "first (`evalgate evaluate {production}`)"
                )
            if summary["suite_code_version"][0] != version:
                raise ValueError(
                    f"{suite}: production {production} was scored with suite code version "
                    f"{summary['suite_code_version'][0]}, this checkpoint with {version}. Scores from different "
                    "suite or scorer versions are not comparable; re-evaluate production with this version."
                )
            production_scores = results.read("item_scores", checkpoint=production, suite=suite)
        candidate_scores = results.read("item_scores", checkpoint=checkpoint, suite=suite)
        result = compare(
            candidate_scores, production_scores, suite=suite, candidate=checkpoint, production=production,
            policy=policy,
        )  # fmt: skip
        row = result.as_dict() | {"checkpoint": checkpoint, "policy_version": policy.version}
        results.replace("comparisons", pl.DataFrame([row], schema=COMPARISON_SCHEMA), checkpoint=checkpoint, suite=suite)
        return dg.Output(
            row,
            data_version=dg.DataVersion(hash_value(row)[:32]),
            metadata={
                "production": production or "(none)",
                "difference": dg.MetadataValue.float(result.difference),
                "ci": f"[{result.low:+.3f}, {result.high:+.3f}]",
                "n_shared": result.n,
                "mcnemar_p": dg.MetadataValue.float(result.mcnemar_p),
            },
        )

    return [predictions, scores, comparison]
