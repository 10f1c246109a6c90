"""``promotion``: moves the production pointer when every blocking check of the checkpoint passed.

It re-reads the check results from the event log itself rather than trusting orchestration: automation can
run this asset alone in a later run (DESIGN.md §8), after a failed check in an earlier one.
"""


from typing import Any

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter

from eval_assets.defs.automation import gated
from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import CheckStatus, GatePolicy, decide_promotion
from resources.evalgate import EvalgateHome


def read_check_status(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, partition: str) -> CheckStatus:
    suite = check_key.asset_key.path[-1]
    history = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, partition_filter=PartitionKeyFilter(key=partition)
    )
    evaluation = history[0].evaluation if history else None
    if evaluation is None:
        return CheckStatus(suite, check_key.name, False, False, True, False, "no evaluation recorded")
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=check_key.asset_key, asset_partitions=[partition]), limit=1
    ).records
    target = evaluation.target_materialization_data
    current = bool(latest) and target is not None and target.storage_id == latest[0].storage_id
    reason_value = evaluation.metadata.get("reason")
    reason = str(reason_value.value) if reason_value is not None else (evaluation.description or "")
    outcome_value = evaluation.metadata.get("outcome")
    return CheckStatus(
        suite=suite,
        check=check_key.name,
        found=True,
        passed=evaluation.passed,
        blocking_failure=(not evaluation.passed) and evaluation.severity == dg.AssetCheckSeverity.ERROR,
        current=current,
        reason=reason,
        outcome=str(outcome_value.value) if outcome_value is not None else "",
    )


def build_promotion_asset(suites: list[str], policy: GatePolicy) -> dg.AssetsDefinition:
    comparison_keys = [dg.AssetKey(["comparison", suite]) for suite in suites]
    check_keys = [dg.AssetCheckKey(key, "no_regression_vs_production") for key in comparison_keys]

    @dg.asset(
        deps=comparison_keys,
        partitions_def=checkpoints,
        code_version=policy.code_version,
        automation_condition=gated(),
        group_name="gate",
        kinds={"python"},
        description="Moves the production pointer to this checkpoint when every blocking gate check passed.",
    )
    def promotion(context: dg.AssetExecutionContext, evalgate: EvalgateHome) -> dg.Output[dict[str, Any]]:
        checkpoint = context.partition_key
        statuses = [read_check_status(context.instance, key, checkpoint) for key in check_keys]
        pointer = evalgate.production()
        current = pointer.get()
        decision = decide_promotion(checkpoint, current["checkpoint"] if current else None, statuses)
        if decision.moves_pointer:
            manifest = evalgate.registry().get(checkpoint)
            pointer.set(checkpoint, manifest.model_hash, reason=f"gate passed in run {context.run_id}")
        evalgate.results().record_decision(
            checkpoint=checkpoint, suite="*", rule="promotion", outcome=decision.outcome,
            blocking=decision.outcome == "blocked", reason=decision.reason, policy_version=policy.version,
            run_id=context.run_id, n=len(statuses),
        )  # fmt: skip
        value = {"checkpoint": checkpoint, "outcome": decision.outcome, "reason": decision.reason}
        return dg.Output(value, metadata={"outcome": decision.outcome, "reason": decision.reason})

    return promotion
