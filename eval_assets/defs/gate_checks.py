"""Blocking asset checks of the promotion gate, one per rule and suite, and the decisions they record."""


from typing import Any

import dagster as dg

from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import (
    Comparison,
    GatePolicy,
    RuleVerdict,
    describe_ci_usage,
    no_regression_vs_production,
)
from resources.evalgate import EvalgateHome


def record_verdict(
    evalgate: EvalgateHome, *, checkpoint: str, verdict: RuleVerdict, policy: GatePolicy, run_id: str
) -> None:
    evalgate.results().record_decision(
        checkpoint=checkpoint, suite=verdict.suite, rule=verdict.rule, outcome=verdict.outcome,
        blocking=verdict.blocking, reason=verdict.reason, policy_version=policy.version, run_id=run_id,
        n=verdict.n, observed=verdict.observed, ci_low=verdict.low, ci_high=verdict.high,
        threshold=verdict.threshold,
    )  # fmt: skip


def _comparison_from_row(row: dict[str, Any]) -> Comparison:
    fields = Comparison.__dataclass_fields__
    return Comparison(**{key: value for key, value in row.items() if key in fields})


def build_regression_check(suite: str, policy: GatePolicy) -> dg.AssetChecksDefinition:
    usage = describe_ci_usage(policy, suite)

    @dg.asset_check(
        asset=dg.AssetKey(["comparison", suite]),
        name="no_regression_vs_production",
        blocking=True,
        partitions_def=checkpoints,
        description=usage,
    )
    def check(
        context: dg.AssetCheckExecutionContext, comparison: dict[str, Any], evalgate: EvalgateHome
    ) -> dg.AssetCheckResult:
        checkpoint = context.partition_key if context.has_partition_key else comparison["checkpoint"]
        verdict = no_regression_vs_production(_comparison_from_row(comparison), policy)
        record_verdict(evalgate, checkpoint=checkpoint, verdict=verdict, policy=policy, run_id=context.run.run_id)
        # An inconclusive verdict under `inconclusive: warn` passes (it must not block, and automation's
        # all_deps_blocking_checks_passed() counts any failed blocking check, WARN included, as blocking);
        # its outcome and reason stay in the description and metadata, and promotion lists it as a warning.
        passed = not verdict.blocking
        severity = dg.AssetCheckSeverity.ERROR
        return dg.AssetCheckResult(
            passed=passed,
            severity=severity,
            description=verdict.reason,
            metadata={
                "outcome": verdict.outcome,
                "observed_difference": dg.MetadataValue.float(verdict.observed),
                "ci_low": dg.MetadataValue.float(verdict.low),
                "ci_high": dg.MetadataValue.float(verdict.high),
                "confidence": dg.MetadataValue.float(policy.confidence),
                "threshold": dg.MetadataValue.float(verdict.threshold),
                "n": verdict.n,
                "how_the_ci_is_used": usage,
                "policy_version": policy.version,
                "reason": verdict.reason,
            },
        )

    return check
