"""``refusal_validation``: the refusal classifier measured against human labels, out of distribution (each labelled
source tested by a classifier that never saw it), and the check ``refusal_classifier_agrees_with_humans``: its
validated kappa must reach the policy's ``min_kappa``. The refusal rules re-check the same kappa on every
checkpoint (recorded in each suite's ``refusal_labels``), so a classifier that failed validation cannot pass one."""

from __future__ import annotations

from typing import Any

import dagster as dg

from eval_assets.gate import GatePolicy
from resources.refusal_classifier import RefusalClassifierResource

CHECK = "refusal_classifier_agrees_with_humans"


@dg.asset(
    key="refusal_validation",
    group_name="validation",
    kinds={"python"},
    description="The refusal classifier's agreement and Cohen's kappa against human labels (XSTest GPT-4 and "
    "Llama-2 completions, PyRIT's refusal sets), each set tested out of distribution.",
)
def refusal_validation(refusal_classifier: RefusalClassifierResource) -> dg.Output[dict[str, Any]]:
    classifier = refusal_classifier.classifier()
    report = refusal_classifier.validation(classifier)
    return dg.Output(
        report.as_dict(),
        data_version=dg.DataVersion(f"{report.classifier}-{report.validated_kappa:.6f}"),
        metadata={
            "classifier": report.classifier,
            "validated_kappa": dg.MetadataValue.float(report.validated_kappa),
            "folds": dg.MetadataValue.md(report.table()),
            "recipe": report.recipe,
            "provenance": dg.MetadataValue.json(report.provenance),
        },
    )


def build_refusal_validation_check(policy: GatePolicy) -> dg.AssetChecksDefinition:
    min_kappa = float(policy.section("refusal_on_harmful").min_kappa)

    @dg.asset_check(
        asset=refusal_validation,
        name=CHECK,
        blocking=True,
        description=f"The refusal classifier's validated kappa (lowest binary kappa over XSTest's two sets, each "
        f"unseen in training) is at least {min_kappa:.2f}.",
    )
    def check(refusal_validation: dict[str, Any]) -> dg.AssetCheckResult:
        kappa = float(refusal_validation["validated_kappa"])
        passed = kappa >= min_kappa
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"classifier {refusal_validation['classifier']}: validated kappa {kappa:.3f} "
            f"{'>=' if passed else '<'} {min_kappa:.2f}"
            + ("" if passed else "; it cannot pass a checkpoint"),
            metadata={"validated_kappa": dg.MetadataValue.float(kappa), "min_kappa": min_kappa},
        )

    return check
