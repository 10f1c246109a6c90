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
        "policy_version": pl.Int64,
    }
)


def build_comparison_asset(spec: SuiteSpec, policy: GatePolicy) -> dg.AssetsDefinition:
    suite = spec.name
    version = suite_code_version(spec)
    tags = {"suite": suite, "kind": spec.kind}

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
                    f"first (`evalgate evaluate {production}`)"
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

    return comparison
