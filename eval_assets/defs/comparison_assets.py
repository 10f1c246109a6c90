"""``comparison/<suite>``: a candidate's item scores against the current production's, with the production it
was made against recorded (checkpoint and model hash), so the gate can refuse stale evidence."""

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import dagster as dg
import polars as pl

from eval_assets import stats
from eval_assets.compare import compare
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.growth_source import GrowthSource, can_grow
from eval_assets.defs.partitions import PRODUCTION, checkpoints
from eval_assets.gate import Comparison, GatePolicy
from eval_assets.growth import ScoresAt, decide_sequentially, gate_design
from eval_assets.hashing import hash_value
from eval_assets.suites.spec import SuiteSpec, suite_code_version
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings
from resources.profile_results import ProfileResults
from resources.results_store import ResultsStore

COMPARISON_SCHEMA = pl.Schema(
    {
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
        "production_model_hash": pl.String,
        "candidate_model_hash": pl.String,
        "production_sequence": pl.Int64,
        "suite_code_version": pl.String,
        "policy_version": pl.Int64,
        "policy_hash": pl.String,
        # planned growth (group-sequential), when on: the looks taken, the design, the deciding look's reason
        "looks": pl.String,
        "design": pl.String,
        "sequential_reason": pl.String,
    }
)

#: The production pointer as an asset: every move is reported as a materialization of it, so the comparisons of
#: every other checkpoint show as stale in the UI and automation re-runs them (and only them) against it.
production_asset = dg.AssetSpec(
    PRODUCTION,
    group_name="gate",
    kinds={"deltalake"},
    description="The current production checkpoint, derived from the verified history of moves in "
    "gate_decisions. Moves only through `promotion`, the first `evalgate promote --baseline`, or an override record.",
)


def _production_scores(
    results: ResultsStore,
    suite: str,
    version: str,
    production: str,
    model_hash: str,
    by_profile: ProfileResults,
    profile: str,
) -> pl.DataFrame:
    """Production's item scores on ``suite``, refused unless made by production's weights under this version
    (its latest scores, else those it kept for this profile)."""
    kept = by_profile.read("scores_by_profile", checkpoint=production, suite=suite, profile=profile)
    if kept.height:
        row = kept.row(0, named=True)
        if row["suite_code_version"] == version and row["model_hash"] == model_hash:
            items = by_profile.read(
                "item_scores_by_profile", checkpoint=production, suite=suite, profile=profile
            )
            return items.drop("profile", "suite_code_version")
    summary = results.read("scores", checkpoint=production, suite=suite)
    if summary.height == 0:
        raise ValueError(
            f"production checkpoint {production} has no {suite} scores yet: materialize its partition "
            f"first (`evalgate evaluate {production}`)"
        )
    row = summary.row(0, named=True)
    if row["suite_code_version"] != version:
        raise ValueError(
            f"{suite}: production {production} was scored with suite code version {row['suite_code_version']}, "
            f"this checkpoint with {version}. Scores from different suite or scorer versions are not comparable; "
            f"re-evaluate production with this version (`evalgate evaluate {production}`)."
        )
    if row["model_hash"] != model_hash:
        raise ValueError(
            f"{suite}: production {production}'s scores were made by weights {row['model_hash']}, but production "
            f"is {model_hash}; re-evaluate production (`evalgate evaluate {production}`)"
        )
    return results.read("item_scores", checkpoint=production, suite=suite)


def grow_comparison(
    first: Comparison,
    policy: GatePolicy,
    suite: str,
    available: int,
    scores_at: ScoresAt,
    log: Callable[[str], None],
) -> tuple[Comparison, dict[str, Any]]:
    """Re-decide ``first`` (a binary comparison on the profile's items) under the planned group-sequential
    design, growing both checkpoints' samples until a look decides. The comparison is then the deciding look's:
    its n, its items, its interval at that look's nominal level."""
    if first.method == "none" or not first.method.startswith("newcombe"):
        return first, {}
    rule = policy.section("no_regression_vs_production").for_suite(suite)
    design = gate_design(policy, first.n, available, grow=True)
    inconclusive = "block" if rule.blocks_when_inconclusive else "warn"
    grown = decide_sequentially(
        design, scores_at, margin=rule.margin, inconclusive=inconclusive, power=policy.power,
        progress=lambda line: log(f"{suite}: {line}"),
    )  # fmt: skip
    verdict, cand, prod = grown.verdict, grown.cand, grown.prod
    test = stats.mcnemar(cand.astype(bool), prod.astype(bool))
    result = replace(
        first, n=verdict.n, candidate_accuracy=float(cand.mean()), production_accuracy=float(prod.mean()),
        difference=verdict.estimate, low=verdict.low, high=verdict.high, confidence=verdict.confidence,
        method=f"{verdict.method}, group-sequential look {verdict.look}/{verdict.looks}",
        improvements=verdict.improvements, regressions=verdict.regressions, mcnemar_p=test.p_value,
        mcnemar_method=test.method, minimum_detectable_effect=math.nan,
    )  # fmt: skip
    looks = ", ".join(f"{look.n}: {look.outcome}" for look in grown.looks)
    return result, {"looks": looks, "design": verdict.design, "reason": verdict.reason}


def production_moved() -> dg.AutomationCondition:
    """The production pointer moved since this partition's comparison was last handled."""
    return dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).allow(
        dg.AssetSelection.assets(PRODUCTION)
    )


def build_comparison_asset(spec: SuiteSpec, policy: GatePolicy, *, profile: str) -> dg.AssetsDefinition:
    suite = spec.name
    version = suite_code_version(spec, profile)
    tags = {"suite": suite, "kind": spec.kind}

    @dg.asset(
        key=["comparison", suite],
        ins={"scores": dg.AssetIn(key=["scores", suite])},
        deps=[PRODUCTION],
        partitions_def=checkpoints,
        code_version=f"{version}-{policy.code_version}",
        automation_condition=evaluate_when_new_or_changed(
            also=production_moved(), external=dg.AssetSelection.assets(PRODUCTION)
        ),
        group_name="gate",
        kinds={"python", "deltalake"},
        tags=tags,
        description=f"{suite}: paired difference vs the production checkpoint on shared items, with its CI "
        "and McNemar's test.",
    )
    def comparison(
        context: dg.AssetExecutionContext,
        scores: dict[str, Any],
        evalgate: EvalgateHome,
        suite_settings: SuiteSettings,
        model_runner: ModelRunner,
    ) -> dg.Output[dict[str, Any]]:
        checkpoint = context.partition_key
        results = evalgate.results()
        if scores.get("suite_code_version") != version:
            raise ValueError(
                f"{suite}: the scores of {checkpoint} were made with suite code version "
                f"{scores.get('suite_code_version')}, the suite is now {version}; re-materialize scores/{suite}"
            )
        head = evalgate.ledger().head()
        production = head.checkpoint if head else None
        production_scores = None
        if head is not None and head.checkpoint != checkpoint:
            production_scores = _production_scores(
                results, suite, version, head.checkpoint, head.model_hash, ProfileResults(evalgate.tables()),
                profile,
            )  # fmt: skip
        candidate_scores = results.read("item_scores", checkpoint=checkpoint, suite=suite)
        result = compare(
            candidate_scores, production_scores, suite=suite, candidate=checkpoint, production=production,
            policy=policy, production_model_hash=head.model_hash if head else None,
            candidate_model_hash=scores.get("model_hash"),
        )  # fmt: skip
        sequential: dict[str, Any] = {}
        if head is not None and production_scores is not None and suite_settings.grow and can_grow(spec):
            source = GrowthSource(spec, suite_settings, evalgate, model_runner, context.log.info)
            registry = evalgate.registry()
            result, sequential = grow_comparison(
                result, policy, suite, source.available,
                source.scores_at(registry.get(checkpoint), registry.get(head.checkpoint)), context.log.info,
            )  # fmt: skip
        row = result.as_dict() | {
            "checkpoint": checkpoint, "policy_version": policy.version, "policy_hash": policy.policy_hash,
            "production_sequence": head.sequence if head else None, "suite_code_version": version,
            "looks": sequential.get("looks"), "design": sequential.get("design"),
            "sequential_reason": sequential.get("reason"),
        }  # fmt: skip
        results.replace(
            "comparisons", pl.DataFrame([row], schema=COMPARISON_SCHEMA), checkpoint=checkpoint, suite=suite
        )
        return dg.Output(
            row,
            data_version=dg.DataVersion(hash_value(row)[:32]),
            metadata={
                "production": production or "(none)",
                "production_model_hash": (head.model_hash if head else "") or "(none)",
                "difference": dg.MetadataValue.float(result.difference),
                "ci": f"[{result.low:+.3f}, {result.high:+.3f}] ({result.confidence:.0%}, {result.method})",
                "n_shared": result.n,
                "mcnemar_p": dg.MetadataValue.float(result.mcnemar_p),
            },
        )

    return comparison
