"""The shape of the evalgate graph with no model in it, for daemon tests of declarative automation: the real
automation conditions (``eval_assets.defs.automation``), the real ``production`` source and its move events,
a blocking check on each comparison, and ``promotion`` gated on it. Each asset body takes a moment (so the
daemon ticks while a run is in progress, as with a real model) and appends one line per execution to
``$EVALGATE_AUTOMATION_LOG``: the test counts what ran.

A checkpoint whose name starts with ``bad`` fails its comparison's check; any other passes and is promoted
(unless it was production before: the real gate refuses moving back without an override).
Production lives in ``$EVALGATE_AUTOMATION_HOME/production.txt``, and every move is reported as a
materialization of ``production`` with a data version, exactly as ``promotion`` does in the real graph.
"""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG

from eval_assets.defs.automation import evaluate_when_new_or_changed, gated
from eval_assets.defs.comparison_assets import production_asset, production_moved
from eval_assets.defs.partitions import CHECKPOINTS, PRODUCTION, checkpoints

HOME_ENV = "EVALGATE_AUTOMATION_HOME"
LOG_ENV = "EVALGATE_AUTOMATION_LOG"
STEP_S_ENV = "EVALGATE_AUTOMATION_STEP_S"
SUITES = ("arc", "gsm")
#: Called after every asset step (in-process tests tick automation here, as the daemon does mid-run).
AFTER_STEP: list[Callable[[], None]] = []


def _home() -> Path:
    return Path(os.environ[HOME_ENV])


def current_production() -> str | None:
    path = _home() / "production.txt"
    return path.read_text(encoding="utf-8").strip() or None if path.exists() else None


def move_production(instance: dg.DagsterInstance, checkpoint: str) -> None:
    """What ``promotion`` (or ``evalgate promote --baseline``) does: move, then report the move."""
    (_home() / "production.txt").write_text(checkpoint, encoding="utf-8")
    with (_home() / "history.txt").open("a", encoding="utf-8") as history:
        history.write(checkpoint + "\n")
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=PRODUCTION, tags={DATA_VERSION_TAG: f"production-{checkpoint}"})
    )


def _ran(context: dg.AssetExecutionContext, value: Any) -> dg.Output[Any]:
    time.sleep(float(os.environ.get(STEP_S_ENV, "0.5")))
    entry = {
        "asset": context.asset_key.to_user_string(),
        "partition": context.partition_key,
        "run": context.run_id,
    }
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")
    for hook in AFTER_STEP:
        hook()
    return dg.Output(value, data_version=dg.DataVersion(json.dumps(value, sort_keys=True)))


@dg.asset(partitions_def=checkpoints, automation_condition=evaluate_when_new_or_changed())
def checkpoint_manifest(context: dg.AssetExecutionContext) -> dg.Output[Any]:
    return _ran(context, {"checkpoint": context.partition_key})


def _suite_assets(suite: str) -> list[Any]:
    @dg.asset(
        key=["predictions", suite],
        deps=["checkpoint_manifest"],
        partitions_def=checkpoints,
        automation_condition=evaluate_when_new_or_changed(),
    )
    def predictions(context: dg.AssetExecutionContext) -> dg.Output[Any]:
        return _ran(context, {"predictions": context.partition_key})

    @dg.asset(
        key=["scores", suite],
        deps=[["predictions", suite]],
        partitions_def=checkpoints,
        automation_condition=evaluate_when_new_or_changed(),
    )
    def scores(context: dg.AssetExecutionContext) -> dg.Output[Any]:
        return _ran(context, {"scores": context.partition_key})

    @dg.asset(
        key=["comparison", suite],
        deps=[["scores", suite], PRODUCTION],
        partitions_def=checkpoints,
        automation_condition=evaluate_when_new_or_changed(
            also=production_moved(), external=dg.AssetSelection.assets(PRODUCTION)
        ),
    )
    def comparison(context: dg.AssetExecutionContext) -> dg.Output[Any]:
        return _ran(context, {"checkpoint": context.partition_key, "production": current_production()})

    @dg.asset_check(
        asset=comparison, name="no_regression_vs_production", blocking=True, partitions_def=checkpoints
    )
    def no_regression(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        passed = not context.partition_key.startswith("bad")
        return dg.AssetCheckResult(passed=passed, metadata={"production": current_production() or "(none)"})

    return [predictions, scores, comparison, no_regression]


@dg.asset(
    deps=[["comparison", suite] for suite in SUITES], partitions_def=checkpoints, automation_condition=gated()
)
def promotion(context: dg.AssetExecutionContext) -> dg.Output[Any]:
    checkpoint = context.partition_key
    production = current_production()
    history = _home() / "history.txt"
    was_production = history.exists() and checkpoint in history.read_text(encoding="utf-8").split()
    # as the real gate: no production yet awaits a baseline; a former production is not moved back to
    if production is not None and not was_production and not checkpoint.startswith("bad"):
        move_production(context.instance, checkpoint)
    return _ran(context, {"checkpoint": checkpoint, "production": current_production()})


_suites = [definition for suite in SUITES for definition in _suite_assets(suite)]
_checks = [d for d in _suites if isinstance(d, dg.AssetChecksDefinition)]

defs = dg.Definitions(
    assets=[checkpoint_manifest, promotion, production_asset, *(d for d in _suites if d not in _checks)],
    asset_checks=_checks,
    sensors=[
        dg.AutomationConditionSensorDefinition(
            "evaluate_checkpoints",
            target=dg.AssetSelection.all(include_sources=False),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=1,
        )
    ],
    executor=dg.in_process_executor,
)

__all__ = ["CHECKPOINTS", "defs", "move_production"]
