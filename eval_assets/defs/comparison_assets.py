"""``comparison/<suite>``: a candidate's item scores against the current production's, with the production it
was made against recorded (checkpoint and model hash), so the gate can refuse stale evidence."""


from typing import Any

import dagster as dg
import polars as pl

from eval_assets.compare import compare
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from eval_assets.gate import GatePolicy
from eval_assets.hashing import hash_value
from eval_assets.suites.spec import SuiteSpec, suite_code_version
from resources.evalgate import EvalgateHome
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
    }
)

#: The production pointer as an asset: every move is reported as a materialization of it, so the comparisons of
#: every other checkpoint show as stale in the UI and automation re-runs them (and only them) against it.
PRODUCTION = dg.AssetKey("production")

production_asset = dg.AssetSpec(
    PRODUCTION,
    group_name="gate",
    kinds={"deltalake"},
    description="The current production checkpoint, derived from the verified history of moves in "
    "gate_decisions. Moves only through `promotion`, the first `evalgate promote --baseline`, or an override record.",
)


def _production_scores(
    results: ResultsStore, suite: str, version: str, production: str, model_hash: str
) -> pl.DataFrame:
    """Production's item scores on ``suite``, refused unless made by production's weights under this version."""
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


def production_moved() -> dg.AutomationCondition:
    """The production pointer moved since this partition's comparison was last handled."""
    return dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).allow(
        dg.AssetSelection.assets(PRODUCTION)
    )


def build_comparison_asset(spec: SuiteSpec, policy: GatePolicy) -> dg.AssetsDefinition:
    suite = spec.name
    version = suite_code_version(spec)
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
        context: dg.AssetExecutionContext, scores: dict[str, Any], evalgate: EvalgateHome
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
            production_scores = _production_scores(results, suite, version, head.checkpoint, head.model_hash)
        candidate_scores = results.read("item_scores", checkpoint=checkpoint, suite=suite)
        result = compare(
            candidate_scores, production_scores, suite=suite, candidate=checkpoint, production=production,
            policy=policy, production_model_hash=head.model_hash if head else None,
            candidate_model_hash=scores.get("model_hash"),
        )  # fmt: skip
        row = result.as_dict() | {
            "checkpoint": checkpoint, "policy_version": policy.version, "policy_hash": policy.policy_hash,
            "production_sequence": head.sequence if head else None, "suite_code_version": version,
        }  # fmt: skip
        results.replace("comparisons", pl.DataFrame([row], schema=COMPARISON_SCHEMA), checkpoint=checkpoint, suite=suite)
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
