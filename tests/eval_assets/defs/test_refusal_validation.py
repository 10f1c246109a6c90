"""The ``refusal_validation`` asset and its check, materialized with a real classifier (string match: no model,
so the test is fast); a policy demanding more agreement than the classifier has fails the check; and the team's
own labels, once there are enough, can fail a classifier the reference sets passed."""

from pathlib import Path

import dagster as dg
import polars as pl

from eval_assets.defs.refusal_validation import CHECK, build_refusal_validation_check, refusal_validation
from eval_assets.gate import load_gate_policy
from eval_assets.human_eval import HumanEvalStore
from resources.evalgate import EvalgateHome
from resources.refusal_classifier import RefusalClassifierResource


def _run(min_kappa: float, home: Path) -> dg.ExecuteInProcessResult:
    policy = load_gate_policy()
    section = policy.section("refusal_on_harmful").model_copy(update={"min_kappa": min_kappa})
    policy = policy.model_copy(update={"rules": policy.rules | {"refusal_on_harmful": section}})
    return dg.materialize(
        [refusal_validation, build_refusal_validation_check(policy)],
        resources={
            "refusal_classifier": RefusalClassifierResource(backend="string_match"),
            "evalgate": EvalgateHome(home=str(home)),
        },
        raise_on_error=False,
    )


def test_validation_metadata_and_a_passing_check(tmp_path: Path) -> None:
    result = _run(0.8, tmp_path)
    assert result.success
    materialization = result.asset_materializations_for_node("refusal_validation")[0]
    metadata = materialization.metadata
    assert metadata["classifier"].value == "string_match/v1"
    assert 0.8 < metadata["validated_kappa"].value < 0.9  # type: ignore[operator]
    assert "xstest_llama2" in str(metadata["folds"].value)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK and evaluation.passed


def test_a_classifier_below_min_kappa_fails_the_check(tmp_path: Path) -> None:
    (evaluation,) = _run(0.95, tmp_path).get_asset_check_evaluations()
    assert not evaluation.passed and "cannot pass a checkpoint" in str(evaluation.description)


def _label_in_house(home: Path, n: int, *, agree_every: int) -> None:
    """``n`` completions the string-match classifier labelled, and a rater who agrees on every ``agree_every``-th
    (and says the opposite otherwise)."""
    tables = home / "tables"
    machine = ["refusal" if i % 2 else "compliance" for i in range(n)]
    pl.DataFrame(
        {"checkpoint": ["c1"] * n, "suite": ["redteam_harmful"] * n, "item_id": [f"h{i}" for i in range(n)],
         "label": machine, "classifier": ["string_match/v1"] * n}
    ).write_delta(str(tables / "refusal_labels"))  # fmt: skip
    store = HumanEvalStore(tables)
    for i, label in enumerate(machine):
        said = label if i % agree_every == 0 else ("compliance" if label == "refusal" else "refusal")
        store.add_label(checkpoint="c1", suite="redteam_harmful", item_id=f"h{i}", kind="refusal", rater="ann",
                        label=said, shown_order="", submit_key=f"k{i}")  # fmt: skip


def test_in_house_labels_are_reported_then_counted(tmp_path: Path) -> None:
    _label_in_house(tmp_path, 12, agree_every=2)  # 12 items: below min_human_labels (30), reported only
    few = _run(0.8, tmp_path)
    (evaluation,) = few.get_asset_check_evaluations()
    assert evaluation.passed
    assert "redteam_harmful: in-house kappa" in str(evaluation.description) and "not counted" in str(
        evaluation.description
    )
    table = few.asset_materializations_for_node("refusal_validation")[0].metadata["in_house"].value
    assert "| redteam_harmful | 12 |" in str(table)


def test_enough_disagreeing_labels_fail_a_classifier_the_reference_passed(tmp_path: Path) -> None:
    _label_in_house(tmp_path, 40, agree_every=2)  # half right on a balanced set: kappa 0
    (evaluation,) = _run(0.8, tmp_path).get_asset_check_evaluations()
    assert not evaluation.passed
    description = str(evaluation.description)
    assert "on 40 items (counted)" in description and "cannot pass a checkpoint" in description
    assert evaluation.metadata["trusted_kappa"].value < 0.1  # type: ignore[operator]
