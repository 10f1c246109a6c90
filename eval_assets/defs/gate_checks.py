"""Blocking asset checks of the promotion gate: one per registered rule and suite, built generically, and
the decisions they record. A check carries its evidence in its metadata (the target's code version, the policy
hash, the production it was compared against), which ``promotion`` re-reads and matches."""

from typing import Any

import dagster as dg

from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import GatePolicy, GateRule, RuleVerdict, check_policy_version
from resources.evalgate import EvalgateHome
from resources.results_store import ResultsStore


def ensure_policy_consistent(results: ResultsStore, policy: GatePolicy) -> None:
    """Refuse a policy whose content changed without a new version (raises ``GatePolicyError``)."""
    check_policy_version(policy, results.policy_hashes())


def record_verdict(
    results: ResultsStore, *, checkpoint: str, verdict: RuleVerdict, policy: GatePolicy, run_id: str
) -> None:
    results.record_decision(
        checkpoint=checkpoint, suite=verdict.suite, rule=verdict.rule, outcome=verdict.outcome,
        blocking=verdict.blocking, reason=verdict.reason, policy_version=policy.version,
        policy_hash=policy.policy_hash, run_id=run_id, n=verdict.n, observed=verdict.observed,
        ci_low=verdict.low, ci_high=verdict.high, threshold=verdict.threshold,
        extra={
            "production": verdict.evidence.get("production"),
            "production_model_hash": verdict.evidence.get("production_model_hash"),
        },
    )  # fmt: skip


def build_rule_check(
    rule: GateRule, suite: str, policy: GatePolicy, code_version: str
) -> dg.AssetChecksDefinition:
    """The blocking check that carries ``rule`` on ``<rule.target>/<suite>``; ``code_version`` is the target
    asset's, recorded so that promotion can tell a verdict on an older version of the asset."""
    section = policy.section(rule.name)
    usage = rule.describe(section, policy, suite)

    @dg.asset_check(
        asset=dg.AssetKey([rule.target, suite]),
        name=rule.check_name,
        blocking=rule.blocks_downstream,
        partitions_def=checkpoints,
        description=usage,
    )
    def check(
        context: dg.AssetCheckExecutionContext, value: dict[str, Any], evalgate: EvalgateHome
    ) -> dg.AssetCheckResult:
        checkpoint = context.partition_key
        results = evalgate.results()
        ensure_policy_consistent(results, policy)
        verdict = rule.evaluate(section, value, policy, suite)
        record_verdict(
            results, checkpoint=checkpoint, verdict=verdict, policy=policy, run_id=context.run.run_id
        )
        # An inconclusive verdict under `inconclusive: warn` passes (it must not block, and automation's
        # all_deps_blocking_checks_passed() counts any failed blocking check, WARN included, as blocking);
        # its outcome and reason stay in the description and metadata, and promotion lists it as a warning.
        evidence = {key: str(value) for key, value in verdict.evidence.items() if value is not None}
        return dg.AssetCheckResult(
            passed=not verdict.blocking,
            severity=dg.AssetCheckSeverity.ERROR,
            description=verdict.reason,
            metadata={
                "rule": rule.name,
                "outcome": verdict.outcome,
                "observed": dg.MetadataValue.float(verdict.observed),
                "ci_low": dg.MetadataValue.float(verdict.low),
                "ci_high": dg.MetadataValue.float(verdict.high),
                "threshold": dg.MetadataValue.float(verdict.threshold),
                "n": verdict.n,
                "how_it_decides": usage,
                "policy_version": policy.version,
                "policy_hash": policy.policy_hash,
                "code_version": code_version,
                "reason": verdict.reason,
                **evidence,
            },
        )

    return check
