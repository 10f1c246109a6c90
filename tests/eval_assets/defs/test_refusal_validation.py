"""The ``refusal_validation`` asset and its check, materialized with a real classifier (string match: no model,
so the test is fast); a policy demanding more agreement than the classifier has fails the check."""

import dagster as dg

from eval_assets.defs.refusal_validation import CHECK, build_refusal_validation_check, refusal_validation
from eval_assets.gate import load_gate_policy
from resources.refusal_classifier import RefusalClassifierResource


def _run(min_kappa: float) -> dg.ExecuteInProcessResult:
    policy = load_gate_policy()
    section = policy.section("refusal_on_harmful").model_copy(update={"min_kappa": min_kappa})
    policy = policy.model_copy(update={"rules": policy.rules | {"refusal_on_harmful": section}})
    return dg.materialize(
        [refusal_validation, build_refusal_validation_check(policy)],
        resources={"refusal_classifier": RefusalClassifierResource(backend="string_match")},
        raise_on_error=False,
    )


def test_validation_metadata_and_a_passing_check() -> None:
    result = _run(0.8)
    assert result.success
    materialization = result.asset_materializations_for_node("refusal_validation")[0]
    metadata = materialization.metadata
    assert metadata["classifier"].value == "string_match/v1"
    assert 0.8 < metadata["validated_kappa"].value < 0.9  # type: ignore[operator]
    assert "xstest_llama2" in str(metadata["folds"].value)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK and evaluation.passed


def test_a_classifier_below_min_kappa_fails_the_check() -> None:
    (evaluation,) = _run(0.95).get_asset_check_evaluations()
    assert not evaluation.passed and "cannot pass a checkpoint" in str(evaluation.description)
