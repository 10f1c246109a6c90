"""``refusal_validation``: the refusal classifier measured against human labels, out of distribution (each labelled
source tested by a classifier that never saw it), and the check ``refusal_classifier_agrees_with_humans``: its
validated kappa must reach the policy's ``min_kappa``. The refusal rules re-check the same kappa on every
checkpoint (recorded in each suite's ``refusal_labels``), so a classifier that failed validation cannot pass one.
The team's own labels on refusal suites (``human_labels``) are reported beside it and, from ``min_human_labels``
items on a suite, counted: the lower kappa is trusted."""

from __future__ import annotations

from typing import Any

import dagster as dg

from eval_assets.gate import GatePolicy
from eval_assets.hashing import hash_value
from eval_assets.human_eval import (
    agreement_table,
    classifier_human_agreement,
    in_house_per_suite,
    trusted_over_suites,
)
from eval_assets.kinds.refusal import LABELS_TABLE
from resources.evalgate import EvalgateHome
from resources.refusal_classifier import RefusalClassifierResource

CHECK = "refusal_classifier_agrees_with_humans"


@dg.asset(
    key="refusal_validation",
    group_name="validation",
    kinds={"python"},
    description="The refusal classifier's agreement and Cohen's kappa against human labels (XSTest GPT-4 and "
    "Llama-2 completions, PyRIT's refusal sets), each set tested out of distribution.",
)
def refusal_validation(
    refusal_classifier: RefusalClassifierResource, evalgate: EvalgateHome
) -> dg.Output[dict[str, Any]]:
    classifier = refusal_classifier.classifier()
    report = refusal_classifier.validation(classifier)
    in_house = in_house_agreement(evalgate, report.classifier)
    return dg.Output(
        report.as_dict() | {"in_house": in_house},
        data_version=dg.DataVersion(
            f"{report.classifier}-{report.validated_kappa:.6f}-{hash_value(in_house)[:12]}"
        ),
        metadata={
            "classifier": report.classifier,
            "validated_kappa": dg.MetadataValue.float(report.validated_kappa),
            "folds": dg.MetadataValue.md(report.table()),
            "recipe": report.recipe,
            "provenance": dg.MetadataValue.json(report.provenance),
            "in_house": dg.MetadataValue.md(agreement_table(in_house)),
        },
    )


def in_house_agreement(evalgate: EvalgateHome, classifier: str) -> list[dict[str, Any]]:
    """The classifier's binary agreement with the team's own labels, per refusal suite (pooled over checkpoints)."""
    return in_house_per_suite(
        evalgate.tables(), LABELS_TABLE,
        lambda labels, labelled, s: classifier_human_agreement(labels, labelled, suite=s, classifier=classifier),
    )  # fmt: skip


def build_refusal_validation_check(policy: GatePolicy) -> dg.AssetChecksDefinition:
    section = policy.section("refusal_on_harmful")
    min_kappa, min_labels = float(section.min_kappa), int(section.min_human_labels)

    @dg.asset_check(
        asset=refusal_validation,
        name=CHECK,
        blocking=True,
        description=f"The refusal classifier's validated kappa (lowest binary kappa over XSTest's two sets, each "
        f"unseen in training) is at least {min_kappa:.2f}.",
    )
    def check(refusal_validation: dict[str, Any]) -> dg.AssetCheckResult:
        reference = float(refusal_validation["validated_kappa"])
        in_house = refusal_validation.get("in_house", [])
        trusted, people = trusted_over_suites(reference, in_house, min_labels)
        kappa = float(reference if trusted is None else trusted)
        passed = kappa >= min_kappa
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"classifier {refusal_validation['classifier']}: validated kappa {reference:.3f} out of "
            f"distribution; {people}; trusted kappa {kappa:.3f} {'>=' if passed else '<'} {min_kappa:.2f}"
            + ("" if passed else "; it cannot pass a checkpoint"),
            metadata={
                "validated_kappa": dg.MetadataValue.float(reference),
                "trusted_kappa": dg.MetadataValue.float(kappa),
                "min_kappa": min_kappa,
            },
        )

    return check
