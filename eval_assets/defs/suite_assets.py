"""Per suite: ``predictions/<suite>`` → the kind's extra stages (code suites: ``code_executions/<suite>``) →
``scores/<suite>``, each partitioned by checkpoint. Generic over the registered suite kinds
(:mod:`eval_assets.kinds`): no branch here names a kind. Thin: the work is in :mod:`eval_assets.predict`, the
kind's stages and scoring, and :mod:`eval_assets.scoring`; I/O goes through the resources.
(``comparison/<suite>`` is built in :mod:`eval_assets.defs.comparison_assets`.)

Assets are built for one profile (``SuiteSettings.profile``): their code version covers what shapes that
profile's outputs (:func:`eval_assets.suites.spec.suite_code_version`), and a run whose settings name another
profile is refused rather than recorded under the wrong version. Scores are also kept per profile
(:mod:`resources.profile_results`), so evaluating on a grown profile leaves the earlier profile's scores
queryable."""

import time
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
import polars as pl

from eval_assets.checkpoints import CheckpointManifest
from eval_assets.datapkgs import DATA_PACKAGES
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import PRODUCTION as PRODUCTION_KEY
from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import GatePolicy
from eval_assets.hashing import hash_value
from eval_assets.kinds import Stage, StageEnv, SuiteKind, get_kind
from eval_assets.predict import predict_suite
from eval_assets.run_manifest import run_manifest
from eval_assets.scoring import SCORES_SCHEMA, SCORES_VERSION, summarize
from eval_assets.suites.loaders import load_items
from eval_assets.suites.spec import SuiteSpec, suite_code_version
from resources.evalgate import CodeSandbox, EvalgateHome, ModelRunner, SuiteSettings
from resources.profile_results import ProfileResults

__all__ = ["SCORES_SCHEMA", "build_suite_assets"]


def _progress_logger(context: dg.AssetExecutionContext, suite: str) -> Callable[[int, int], None]:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 10:
            last[0] = now
            context.log.info(f"{suite}: {done}/{total} uncached items predicted")

    return report


def _metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values as Dagster metadata: mappings and lists as JSON, the rest as they are."""
    return {
        key: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
        for key, value in values.items()
    }


def check_profile(settings: SuiteSettings, profile: str, suite: str) -> None:
    """The run's profile must be the one the definitions (and so the code versions) were built for."""
    wanted = settings.profile_for(suite)
    if wanted != profile:
        raise ValueError(
            f"{suite}: these definitions were built for profile {profile!r} (their code versions cover it), but "
            f"the run's SuiteSettings name profile {wanted!r}. Build the definitions with "
            f"SuiteSettings(profile={wanted!r}) (`evalgate evaluate --profile {wanted}`)."
        )


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


def _predictions_asset(
    spec: SuiteSpec, version: str, profile: str, tags: dict[str, str]
) -> dg.AssetsDefinition:
    suite = spec.name

    @_suite_asset(
        ["predictions", suite],
        ins={"checkpoint_manifest": dg.AssetIn(key="checkpoint_manifest")},
        code_version=version,
        group="evaluation",
        tags=tags,
        description=f"Predictions of the checkpoint on {suite} v{spec.version}, cached per item on "
        "(model identity, prompt_hash, sampling_hash).",
    )
    def predictions(
        context: dg.AssetExecutionContext,
        checkpoint_manifest: dict[str, Any],
        evalgate: EvalgateHome,
        model_runner: ModelRunner,
        suite_settings: SuiteSettings,
    ) -> dg.Output[pl.DataFrame]:
        check_profile(suite_settings, profile, suite)
        manifest = CheckpointManifest.model_validate(checkpoint_manifest)
        items = load_items(spec, profile, suite_settings.data_root())
        frame, run = predict_suite(
            checkpoint=manifest.name,
            **manifest.key_hashes(),
            spec=spec,
            items=items,
            cache=evalgate.prediction_cache(),
            engine=model_runner.engine(manifest),
            open_backend=lambda: model_runner.open(manifest, evalgate.layout.model_cache),
            progress=_progress_logger(context, suite),
        )
        evalgate.results().replace("predictions", frame, checkpoint=manifest.name, suite=suite)
        content = hash_value(
            list(zip(frame["prompt_hash"].to_list(), frame["output"].to_list(), strict=True))
        )
        return dg.Output(
            frame,
            data_version=dg.DataVersion(content[:32]),
            metadata={
                "items": run.items,
                "cache_hits": run.cache_hits,
                "cache_misses": run.cache_misses,
                "model_calls": run.model_calls,
                "cache_differing": run.differing,
                "wall_seconds": round(run.wall_seconds, 3),
                "engine": run.engine,
                "profile": profile,
                "run_manifest": dg.MetadataValue.json(
                    run_manifest(
                        model_hash=manifest.model_hash,
                        tokenizer_hash=manifest.tokenizer_hash,
                        config_hash=manifest.config_hash,
                        model_identity=manifest.identity,
                        engine=run.engine,
                        sampling_hash=frame["sampling_hash"][0] if frame.height else None,
                        suite=suite,
                        suite_version=spec.version,
                        suite_code_version=version,
                        template_version=spec.template.version,
                        seed=spec.sampling.seed if spec.sampling else None,
                        seeds="per sample: derived from the seed, the rendered prompt and the sample index"
                        if spec.sampling and spec.sampling.temperature > 0
                        else None,
                        samples_per_item=spec.samples(profile),
                        profile=profile,
                        data_packages=DATA_PACKAGES,
                    )
                ),
            },
        )

    return predictions


def _stage_asset(
    spec: SuiteSpec, stage: Stage, upstream: list[str], version: str, tags: dict[str, str]
) -> dg.AssetsDefinition:
    """A kind's extra stage as an asset: it reads the previous asset's table, writes its own results table.
    Its resources are named (``required_resource_keys``) because a stage may declare more of them."""
    suite = spec.name

    @dg.asset(
        key=[stage.name, suite],
        ins={"upstream": dg.AssetIn(key=upstream)},
        deps=[PRODUCTION_KEY] if stage.reads_production else None,
        partitions_def=checkpoints,
        code_version=f"{version}-{stage.version}",
        automation_condition=evaluate_when_new_or_changed(),
        group_name="evaluation",
        kinds={"python", "deltalake"},
        tags=tags,
        description=stage.description.format(suite=suite),
        required_resource_keys={"evalgate", "code_sandbox", "suite_settings", *stage.resources},
    )
    def run_stage(context: dg.AssetExecutionContext, upstream: pl.DataFrame) -> dg.Output[pl.DataFrame]:
        evalgate: EvalgateHome = context.resources.evalgate
        code_sandbox: CodeSandbox = context.resources.code_sandbox
        suite_settings: SuiteSettings = context.resources.suite_settings
        head = evalgate.ledger().head() if stage.reads_production else None
        env = StageEnv(
            checkpoint=context.partition_key,
            data_root=suite_settings.data_root(),
            tables=evalgate.tables(),
            sandbox_pool=code_sandbox.pool,
            log=context.log.info,
            resources={key: getattr(context.resources, key) for key in stage.resources},
            production=(head.checkpoint, head.model_hash) if head is not None else None,
        )
        result = stage.run(spec, upstream, env)
        evalgate.results().replace(stage.name, result.frame, checkpoint=context.partition_key, suite=suite)
        return dg.Output(
            result.frame,
            data_version=dg.DataVersion(hash_value(result.content)[:32]),
            metadata=_metadata(result.metadata),
        )

    return run_stage


def _scores_asset(
    spec: SuiteSpec, kind: SuiteKind, upstream: list[str], version: str, profile: str, tags: dict[str, str]
) -> dg.AssetsDefinition:
    suite = spec.name

    @_suite_asset(
        ["scores", suite],
        ins={"upstream": dg.AssetIn(key=upstream)},
        code_version=f"{version}-s{SCORES_VERSION}",
        group="evaluation",
        tags=tags,
        description=f"Per-item scores and {spec.metric} with its CI (Wilson for 0/1 scores, else a seeded "
        f"bootstrap) on {suite}; infrastructure errors excluded and counted.",
    )
    def scores(
        context: dg.AssetExecutionContext,
        upstream: pl.DataFrame,
        evalgate: EvalgateHome,
        suite_settings: SuiteSettings,
    ) -> dg.Output[dict[str, Any]]:
        check_profile(suite_settings, profile, suite)
        checkpoint = context.partition_key
        scored = kind.score(
            spec, checkpoint, upstream, lambda: load_items(spec, profile, suite_settings.data_root())
        )
        summary = summarize(
            spec,
            scored,
            checkpoint=checkpoint,
            profile=profile,
            suite_code_version=version,
            model_hash=upstream["model_hash"][0] if upstream.height else "",
        )
        item_scores = scored.item_scores
        summary_frame = pl.DataFrame([summary], schema=SCORES_SCHEMA)
        results = evalgate.results()
        results.replace("item_scores", item_scores, checkpoint=checkpoint, suite=suite)
        results.replace("scores", summary_frame, checkpoint=checkpoint, suite=suite)
        by_profile = ProfileResults(evalgate.tables())
        tagged = [pl.lit(profile).alias("profile"), pl.lit(version).alias("suite_code_version")]
        by_profile.replace(
            "item_scores_by_profile", item_scores.with_columns(tagged), checkpoint=checkpoint, suite=suite,
            profile=profile,
        )  # fmt: skip
        by_profile.replace(
            "scores_by_profile", summary_frame, checkpoint=checkpoint, suite=suite, profile=profile
        )
        return dg.Output(
            summary,
            data_version=dg.DataVersion(hash_value(item_scores["score"].to_list())[:32]),
            metadata={
                summary["metric"]: dg.MetadataValue.float(summary["score"]),
                "ci": f"[{summary['ci_low']:.3f}, {summary['ci_high']:.3f}] ({summary['confidence']:.0%}, "
                f"{summary['ci_method']})",
                "n": summary["n"],
                "n_total": summary["n_total"],
                "errors": summary["errors"],
                "unparsed": summary["unparsed"],
                "error_rate": dg.MetadataValue.float(summary["error_rate"]),
                **_metadata(scored.details),
            },
        )

    return scores


def build_suite_assets(spec: SuiteSpec, policy: GatePolicy, *, profile: str) -> list[dg.AssetsDefinition]:
    """``predictions/<suite>``, the kind's stages (``code_executions/<suite>`` for code suites), and
    ``scores/<suite>``, in order, for ``profile`` (their code version is that profile's). ``policy`` is accepted
    for the factory's signature (the gate reads it in the comparison and checks)."""
    kind = get_kind(spec.kind)
    version = suite_code_version(spec, profile)
    tags = {"suite": spec.name, "kind": spec.kind}
    assets = [_predictions_asset(spec, version, profile, tags)]
    upstream = ["predictions", spec.name]
    for stage in kind.stages:
        assets.append(_stage_asset(spec, stage, upstream, version, tags))
        upstream = [stage.name, spec.name]
    assets.append(_scores_asset(spec, kind, upstream, version, profile, tags))
    return assets
