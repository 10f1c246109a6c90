"""``promotion``: moves production to this checkpoint when the gate's evidence is complete, current and passing.

It re-reads the check results from the event log itself rather than trusting orchestration: automation can
run this asset alone in a later run (docs/dagster-notes.md "Checks and promotion"), after a failed check in an
earlier one. It decides and moves under the home's production lock, and every check must have compared
against the production that holds when the lock is taken, so two candidates compared against one production
cannot both be promoted.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg
from dagster._core.definitions.data_version import CODE_VERSION_TAG, DATA_VERSION_TAG

from eval_assets.defs.automation import gated
from eval_assets.defs.gate_checks import ensure_policy_consistent
from eval_assets.defs.partitions import PRODUCTION, checkpoints
from eval_assets.event_log import latest_check_evaluation
from eval_assets.gate import (
    CheckStatus,
    GatePolicy,
    GateRule,
    ProductionRef,
    PromotionDecision,
    decide_promotion,
    overridable_rules,
)
from eval_assets.overrides import override_path, validate_override
from resources.evalgate import EvalgateHome
from resources.production_ledger import ProductionHead


@dataclass(frozen=True)
class ExpectedCheck:
    """A check promotion requires, with the code version its target asset has in these definitions."""

    key: dg.AssetCheckKey
    rule: GateRule
    suite: str
    code_version: str


def _text(metadata: Mapping[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return None if value is None else str(value.value)


def read_check_status(instance: dg.DagsterInstance, expected: ExpectedCheck, partition: str) -> CheckStatus:
    key = expected.key
    base = CheckStatus(
        suite=expected.suite, check=key.name, rule=expected.rule.name, found=False, blocking_failure=True,
        current=False,
        reason="no completed evaluation (never run, or its latest execution errored or is still running)",
        expected_code_version=expected.code_version,
        compares_to_production=expected.rule.compares_to_production,
    )  # fmt: skip
    evaluation = latest_check_evaluation(instance, key, partition)
    if evaluation is None:
        return base
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key.asset_key, asset_partitions=[partition]), limit=1
    ).records
    target = evaluation.target_materialization_data
    metadata = evaluation.metadata
    materialization = latest[0].asset_materialization if latest else None
    code_version = (
        materialization.tags.get(CODE_VERSION_TAG) if materialization and materialization.tags else None
    )
    # the check judged the latest materialization, and says it judged the code version that one has
    current = (
        bool(latest)
        and target is not None
        and target.storage_id == latest[0].storage_id
        and _text(metadata, "code_version") == code_version
    )
    return replace(
        base,
        found=True,
        blocking_failure=(not evaluation.passed) and evaluation.severity == dg.AssetCheckSeverity.ERROR,
        current=current,
        reason=_text(metadata, "reason") or evaluation.description or "",
        outcome=_text(metadata, "outcome") or "",
        code_version=code_version,
        policy_hash=_text(metadata, "policy_hash"),
        production=_text(metadata, "production"),
        production_model_hash=_text(metadata, "production_model_hash"),
    )


def report_production_move(instance: dg.DagsterInstance, head: ProductionHead) -> None:
    """Record the move as a materialization of the ``production`` asset (lineage, staleness, automation)."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=PRODUCTION,
            description=f"production is {head.checkpoint} ({head.authority_kind}: {head.authority})",
            metadata={
                "checkpoint": head.checkpoint,
                "model_hash": head.model_hash,
                "sequence": head.sequence,
                "predecessor": head.predecessor or "(none)",
                "authority": f"{head.authority_kind}: {head.authority}",
                "actor": head.actor,
            },
            tags={DATA_VERSION_TAG: head.chain_hash.removeprefix("sha256:")[:32]},
        )
    )


def expected_checks(
    suites: Mapping[str, str], code_versions: Mapping[dg.AssetKey, str], rules: Mapping[str, GateRule]
) -> list[ExpectedCheck]:
    """Every (rule, suite) check that applies, given each suite's kind (``suites``: name -> kind) and the code
    version of every asset a rule targets."""
    expected = []
    for suite, kind in sorted(suites.items()):
        for rule in rules.values():
            if rule.applies_to(kind):
                asset = dg.AssetKey([rule.target, suite])
                expected.append(
                    ExpectedCheck(dg.AssetCheckKey(asset, rule.check_name), rule, suite, code_versions[asset])
                )
    return expected


def decide_and_move(
    evalgate: EvalgateHome,
    checkpoint: str,
    policy: GatePolicy,
    known_rules: set[str],
    *,
    run_id: str,
    read_statuses: Callable[[], list[CheckStatus]],
) -> tuple[PromotionDecision, ProductionHead | None]:
    """Under the home's production lock: read production, the check results and any override record, decide,
    move production when the decision says so, and record the decision. Everything the decision rests on is
    read inside the lock, so a concurrent promotion cannot slip between the decision and the move."""
    results = evalgate.results()
    ensure_policy_consistent(results, policy)
    ledger = evalgate.ledger()
    manifest = evalgate.registry().get(checkpoint)
    with ledger.locked():
        head = ledger.head()
        statuses = read_statuses()
        file = override_path(evalgate.overrides(), checkpoint)
        override = (
            validate_override(
                file,
                checkpoint=checkpoint,
                model_hash=manifest.model_hash,
                policy=policy.overrides,
                known_rules=known_rules,
            )
            if file.is_file()
            else None
        )
        decision = decide_promotion(
            checkpoint, ProductionRef(head.checkpoint, head.model_hash) if head else None, statuses,
            policy_hash=policy.policy_hash, was_production=ledger.was_production(checkpoint), override=override,
        )  # fmt: skip
        moved = None
        if decision.moves_pointer and head is not None:
            moved = ledger.move(
                checkpoint=checkpoint, model_hash=manifest.model_hash, expected_predecessor=head.checkpoint,
                authority_kind=decision.authority_kind, authority=decision.override or f"gate run {run_id}",
                actor="evalgate gate", reason=decision.reason, policy_version=policy.version,
                policy_hash=policy.policy_hash, run_id=run_id,
            )  # fmt: skip
        results.record_decision(
            checkpoint=checkpoint, suite="*", rule="promotion", outcome=decision.outcome,
            blocking=decision.outcome == "blocked", reason=decision.reason, policy_version=policy.version,
            policy_hash=policy.policy_hash, run_id=run_id, n=len(statuses),
            extra={"production": head.checkpoint if head else None,
                   "production_model_hash": head.model_hash if head else None},
        )  # fmt: skip
    return decision, moved


def build_promotion_asset(expected: Sequence[ExpectedCheck], policy: GatePolicy) -> dg.AssetsDefinition:
    """Promotion over the ``expected`` checks (see :func:`expected_checks`)."""
    known_rules = overridable_rules()
    deps = sorted({check.key.asset_key for check in expected}, key=lambda key: key.to_user_string())

    @dg.asset(
        deps=deps,
        partitions_def=checkpoints,
        code_version=policy.code_version,
        automation_condition=gated(),
        group_name="gate",
        kinds={"python"},
        description="Moves production to this checkpoint when every blocking gate check passed on current "
        "evidence against the current production (or a valid override record lifts the failed rules).",
    )
    def promotion(context: dg.AssetExecutionContext, evalgate: EvalgateHome) -> dg.Output[dict[str, Any]]:
        checkpoint = context.partition_key
        decision, moved = decide_and_move(
            evalgate, checkpoint, policy, known_rules, run_id=context.run.run_id,
            read_statuses=lambda: [read_check_status(context.instance, check, checkpoint) for check in expected],
        )  # fmt: skip
        if moved is not None:
            report_production_move(context.instance, moved)
            context.log.info(f"production is now {checkpoint} (was {moved.predecessor}): {decision.reason}")
        value = {"checkpoint": checkpoint, "outcome": decision.outcome, "reason": decision.reason}
        return dg.Output(value, metadata={"outcome": decision.outcome, "reason": decision.reason})

    return promotion
