import numpy as np
import polars as pl
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from eval_assets.compare import compare
from eval_assets.gate import load_gate_policy

POLICY = load_gate_policy()


def _scores(correct: list[bool], ids: list[str] | None = None) -> pl.DataFrame:
    ids = ids or [f"i{k}" for k in range(len(correct))]
    return pl.DataFrame({"item_id": ids, "correct": correct, "score": [float(c) for c in correct]})


def test_paired_difference_and_mcnemar_match_statsmodels() -> None:
    rng = np.random.default_rng(0)
    prod = rng.random(300) < 0.55
    cand = np.where(rng.random(300) < 0.15, ~prod, prod)
    result = compare(
        _scores(list(cand)), _scores(list(prod)), suite="s", candidate="c", production="p", policy=POLICY
    )
    assert result.n == 300
    assert result.difference == pytest.approx(cand.mean() - prod.mean())
    assert result.low <= result.difference <= result.high
    b = int((cand & ~prod).sum())
    c = int((~cand & prod).sum())
    assert (result.improvements, result.regressions) == (b, c)
    reference = sm_mcnemar([[0, b], [c, 0]], exact=b + c < 25, correction=True)
    assert result.mcnemar_p == pytest.approx(reference.pvalue, rel=1e-9)


def test_only_shared_items_are_compared() -> None:
    cand = _scores([True, True, False], ["a", "b", "c"])
    prod = _scores([False, True, True], ["b", "c", "d"])
    result = compare(cand, prod, suite="s", candidate="c", production="p", policy=POLICY)
    assert result.n == 2
    assert result.candidate_accuracy == pytest.approx(0.5)
    assert result.production_accuracy == pytest.approx(0.5)
    assert (result.improvements, result.regressions) == (1, 1)


def test_disjoint_items_are_refused() -> None:
    with pytest.raises(ValueError, match="share no items"):
        compare(
            _scores([True], ["a"]),
            _scores([True], ["b"]),
            suite="s",
            candidate="c",
            production="p",
            policy=POLICY,
        )


def test_no_production_and_self_comparison() -> None:
    solo = compare(_scores([True, False]), None, suite="s", candidate="c", production=None, policy=POLICY)
    assert solo.production is None and solo.candidate_accuracy == pytest.approx(0.5)
    same = compare(_scores([True]), _scores([True]), suite="s", candidate="p", production="p", policy=POLICY)
    assert same.is_production


def test_a_real_regression_is_detected() -> None:
    prod = [True] * 120 + [False] * 80
    cand = [False] * 40 + [True] * 80 + [False] * 80
    result = compare(_scores(cand), _scores(prod), suite="s", candidate="c", production="p", policy=POLICY)
    assert result.difference == pytest.approx(-0.2)
    assert result.high < -0.01
    assert result.mcnemar_p < 1e-6


def test_agreement_on_a_tiny_suite_proves_nothing() -> None:
    """Both checkpoints 0/8: the percentile bootstrap collapses to [0, 0]; the gate's default CI must not."""
    from eval_assets.rules import regression

    zeros = _scores([False] * 8)
    result = compare(zeros, zeros, suite="s", candidate="c", production="p", policy=POLICY)
    assert result.method.startswith("newcombe")
    assert result.low < -0.2 and result.high > 0.2
    verdict = regression.evaluate(POLICY.section(regression.NAME), result.as_dict(), POLICY, "s")
    assert verdict.outcome == "inconclusive"
    bootstrap = POLICY.model_copy(update={"ci_method": "bootstrap"})
    collapsed = compare(zeros, zeros, suite="s", candidate="c", production="p", policy=bootstrap)
    assert (collapsed.low, collapsed.high) == (0.0, 0.0)


def test_fractional_scores_use_a_paired_bootstrap() -> None:
    """Code suites score pass@1 of several samples per problem: not binary, so no McNemar."""
    cand = pl.DataFrame(
        {"item_id": ["a", "b", "c", "d"], "correct": [True] * 4, "score": [0.5, 1.0, 0.0, 0.5]}
    )
    prod = pl.DataFrame(
        {"item_id": ["a", "b", "c", "d"], "correct": [True] * 4, "score": [1.0, 1.0, 0.5, 0.5]}
    )
    result = compare(cand, prod, suite="s", candidate="c", production="p", policy=POLICY)
    assert result.difference == pytest.approx(-0.25)
    assert "bootstrap" in result.method
    assert (result.improvements, result.regressions) == (0, 2)
    assert result.mcnemar_method.startswith("n/a")
