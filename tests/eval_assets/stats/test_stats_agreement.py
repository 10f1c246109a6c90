"""Cohen's and Fleiss' kappa agree with statsmodels' inter_rater module; edge cases behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from eval_assets import stats


def _ratings(rng: np.random.Generator, n: int, k: int, agree: float) -> tuple[np.ndarray, np.ndarray]:
    weights = rng.dirichlet(np.ones(k))
    a = rng.choice(k, size=n, p=weights)
    b = np.where(rng.random(n) < agree, a, rng.choice(k, size=n, p=weights))
    return a, b


@pytest.mark.parametrize("k", [2, 3, 5])
def test_cohens_kappa_matches_statsmodels(k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(60):
        n = int(rng.integers(10, 500))
        a, b = _ratings(rng, n, k, agree=float(rng.uniform(0, 0.95)))
        labels = list(range(k))
        table = np.zeros((k, k))
        np.add.at(table, (a, b), 1)
        if np.sum(table.sum(0) * table.sum(1)) == n * n:
            continue  # a single label throughout: undefined (tested below)
        ref = sm_cohens_kappa(table)
        ours = stats.cohens_kappa(a, b, labels=labels)
        assert ours.kappa == pytest.approx(ref.kappa, rel=1e-12, abs=1e-12)
        assert ours.low == pytest.approx(max(-1.0, ref.kappa_low), rel=1e-10, abs=1e-12)  # statsmodels: 95%
        assert ours.high == pytest.approx(min(1.0, ref.kappa_upp), rel=1e-10, abs=1e-12)
        assert ours.agreement == pytest.approx(np.trace(table) / n)
        at_90 = stats.cohens_kappa(a, b, labels=labels, confidence=0.9)
        z = sps.norm.isf(0.05)
        assert at_90.high == pytest.approx(min(1.0, ref.kappa + z * ref.std_kappa), rel=1e-10)


def test_string_labels_and_label_order_do_not_matter() -> None:
    judge = ["A", "B", "tie", "A", "A", "B", "tie", "B", "A", "A"]
    human = ["A", "B", "A", "A", "B", "B", "tie", "B", "A", "tie"]
    first = stats.cohens_kappa(judge, human)
    second = stats.cohens_kappa(judge, human, labels=["tie", "B", "A"])
    assert first.kappa == pytest.approx(second.kappa) and first.low == pytest.approx(second.low)
    assert first.labels == ("A", "B", "tie") and second.labels == ("tie", "B", "A")
    assert first.agreement == 0.7 and first.n == 10 and first.n_raters == 2


def test_an_unused_declared_label_changes_nothing() -> None:
    a, b = _ratings(np.random.default_rng(0), 200, 2, agree=0.7)
    plain = stats.cohens_kappa(a, b)
    declared = stats.cohens_kappa(a, b, labels=[0, 1, 2])
    assert (declared.kappa, declared.low, declared.high) == pytest.approx(
        (plain.kappa, plain.low, plain.high)
    )


def test_perfect_agreement_gives_kappa_one_and_an_informative_agreement_interval() -> None:
    labels = ["A", "B", "A", "B", "A"] * 4
    result = stats.cohens_kappa(labels, labels)
    assert result.kappa == 1.0 and result.high == 1.0 and result.agreement == 1.0
    assert result.agreement_high == 1.0 and result.agreement_low == pytest.approx(
        stats.wilson_interval(20, 20).low
    )


def test_systematic_disagreement_gives_negative_kappa() -> None:
    result = stats.cohens_kappa([0, 1] * 20, [1, 0] * 20)
    assert result.kappa == -1.0 and result.agreement == 0.0 and result.low == -1.0


def test_single_label_throughout_is_undefined() -> None:
    """All ties everywhere: chance agreement is 1 and kappa is 0/0 — an error, not a NaN."""
    with pytest.raises(ValueError, match=r"undefined.*'tie'"):
        stats.cohens_kappa(["tie"] * 8, ["tie"] * 8)
    with pytest.raises(ValueError, match="undefined"):
        stats.cohens_kappa([1], [1])  # one item
    one_item_disagreeing = stats.cohens_kappa([1], [0])
    assert one_item_disagreeing.kappa == 0.0 and one_item_disagreeing.agreement == 0.0


def test_bootstrap_interval_is_close_to_wald_for_large_n() -> None:
    a, b = _ratings(np.random.default_rng(5), 2_000, 3, agree=0.6)
    wald = stats.cohens_kappa(a, b)
    boot = stats.cohens_kappa(a, b, method="bootstrap", seed=1)
    assert boot.method == "bootstrap-percentile" and boot.kappa == wald.kappa
    assert boot.low == pytest.approx(wald.low, abs=0.006) and boot.high == pytest.approx(wald.high, abs=0.006)


def test_fleiss_kappa_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        subjects, raters, k = int(rng.integers(5, 300)), int(rng.integers(2, 8)), int(rng.integers(2, 6))
        truth = rng.choice(k, size=subjects)
        ratings = np.where(
            rng.random((subjects, raters)) < rng.uniform(0, 0.9),
            truth[:, None],
            rng.choice(k, size=(subjects, raters)),
        )
        table, labels = stats.ratings_to_table(ratings)
        ref_table, _ = aggregate_raters(ratings)
        np.testing.assert_array_equal(table, ref_table)
        if len(labels) < 2:
            continue
        result = stats.fleiss_kappa(table, n_resamples=1_000)
        assert result.kappa == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), rel=1e-12, abs=1e-12)
        assert (
            result.low <= result.kappa <= result.high and result.n == subjects and result.n_raters == raters
        )


def test_fleiss_with_two_raters_is_close_to_cohen() -> None:
    """Fleiss' kappa for two raters is Scott's pi, which is close to Cohen's kappa when marginals agree."""
    a, b = _ratings(np.random.default_rng(3), 1_000, 3, agree=0.7)
    table, _ = stats.ratings_to_table(np.column_stack([a, b]))
    assert stats.fleiss_kappa(table).kappa == pytest.approx(stats.cohens_kappa(a, b).kappa, abs=0.01)


def test_fleiss_interval_covers_a_sensible_range_and_bad_tables_are_rejected() -> None:
    rng = np.random.default_rng(8)
    truth = rng.choice(3, size=400)
    ratings = np.where(rng.random((400, 4)) < 0.6, truth[:, None], rng.choice(3, size=(400, 4)))
    table, labels = stats.ratings_to_table(ratings)
    result = stats.fleiss_kappa(table, labels=labels)
    assert result.high - result.low == pytest.approx(2 * 1.96 * 0.02, rel=0.5)
    assert result.agreement_low < result.agreement < result.agreement_high
    with pytest.raises(ValueError, match="same number of raters"):
        stats.fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(ValueError, match="at least 2 raters"):
        stats.fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="non-negative integer"):
        stats.fleiss_kappa([[1.5, 0.5], [1, 1]])
    with pytest.raises(ValueError, match="undefined"):
        stats.fleiss_kappa([[3, 0], [3, 0]])  # everyone always says the same: ties everywhere
    with pytest.raises(ValueError, match="2-D"):
        stats.fleiss_kappa([1, 2, 3])
    with pytest.raises(ValueError, match="labels has 3 names"):
        stats.fleiss_kappa([[1, 1], [2, 0]], labels=["a", "b", "c"])
