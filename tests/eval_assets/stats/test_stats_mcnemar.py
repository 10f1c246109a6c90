"""McNemar's test agrees with statsmodels (exact and continuity-corrected) and scipy's binomial test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from eval_assets import stats


def _table(b: int, c: int, concordant: int = 10) -> np.ndarray:
    # rows: candidate right / wrong; columns: baseline right / wrong
    return np.array([[concordant, b], [c, concordant]])


@pytest.mark.parametrize("exact", [True, False])
def test_counts_match_statsmodels(exact: bool) -> None:
    rng = np.random.default_rng(int(exact))
    for _ in range(400):
        b, c = (int(v) for v in rng.integers(0, 120, size=2))
        if b + c == 0 or (not exact and b == c):
            continue  # b == c: statsmodels' (|b-c|-1)^2 does not clamp at 0 (see the next test)
        ours = stats.mcnemar_from_counts(b, c, exact=exact)
        ref = sm_mcnemar(_table(b, c), exact=exact, correction=True)
        assert ours.statistic == pytest.approx(float(ref.statistic), rel=1e-12)
        assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-10, abs=1e-300)
        assert (ours.b, ours.c) == (b, c)


def test_corrected_chi_square_clamps_at_zero_when_b_equals_c() -> None:
    result = stats.mcnemar_from_counts(30, 30)
    assert result.method == "chi2-continuity" and result.statistic == 0.0 and result.p_value == 1.0


def test_automatic_choice_is_exact_below_25_discordant_items() -> None:
    assert stats.mcnemar_from_counts(20, 4).method == "exact-binomial"
    assert stats.mcnemar_from_counts(20, 5).method == "chi2-continuity"
    assert stats.mcnemar_from_counts(20, 5, exact=True).method == "exact-binomial"
    assert stats.mcnemar_from_counts(2, 1, exact=False).method == "chi2-continuity"


def test_from_outcomes_counts_the_discordant_pairs() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        base = rng.random(n) < 0.6
        cand = np.where(rng.random(n) < 0.2, ~base, base)
        result = stats.mcnemar(cand.astype(int), base)
        b, c = int(np.sum(cand & ~base)), int(np.sum(~cand & base))
        assert (result.b, result.c, result.n) == (b, c, n)
        ref = sm_mcnemar(_table(b, c), exact=b + c < 25, correction=True)
        if b + c and (b + c < 25 or b != c):
            assert result.p_value == pytest.approx(float(ref.pvalue), rel=1e-10)
        assert result.difference == pytest.approx(cand.mean() - base.mean())


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_exact_matches_scipy_binomtest(alternative: str) -> None:
    for b in range(0, 15):
        for c in range(0, 10):
            if b + c == 0:
                continue
            ours = stats.mcnemar_from_counts(b, c, exact=True, alternative=alternative)
            ref = sps.binomtest(b, b + c, 0.5, alternative=alternative).pvalue
            assert ours.p_value == pytest.approx(ref, rel=1e-10)


def test_one_sided_normal_halves_the_two_sided_p_in_the_tested_direction() -> None:
    two = stats.mcnemar_from_counts(40, 20)
    greater = stats.mcnemar_from_counts(40, 20, alternative="greater")
    less = stats.mcnemar_from_counts(40, 20, alternative="less")
    assert greater.p_value == pytest.approx(two.p_value / 2, rel=1e-9)
    assert less.p_value == pytest.approx(1 - two.p_value / 2, rel=1e-9)


@pytest.mark.parametrize("exact", [True, False, None])
def test_no_discordant_items_mean_no_evidence(exact: bool | None) -> None:
    """All correct, all wrong, identical checkpoints: p = 1."""
    for cand, base in [([1] * 10, [1] * 10), ([0] * 10, [0] * 10), ([1, 0, 1], [1, 0, 1]), ([1], [1])]:
        result = stats.mcnemar(cand, base, exact=exact)
        assert (result.b, result.c, result.p_value) == (0, 0, 1.0)


def test_one_item_and_bad_counts() -> None:
    result = stats.mcnemar([1], [0])
    assert (result.b, result.c, result.n, result.p_value) == (1, 0, 1, 1.0)
    with pytest.raises(ValueError, match="at least 0"):
        stats.mcnemar_from_counts(-1, 3)
    with pytest.raises(ValueError, match="integer"):
        stats.mcnemar_from_counts(1.5, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot be smaller"):
        stats.mcnemar_from_counts(5, 3, n=7)
    with pytest.raises(ValueError, match="alternative"):
        stats.mcnemar_from_counts(5, 3, alternative="worse")  # type: ignore[arg-type]
    assert "b=12" in str(stats.mcnemar_from_counts(12, 3, n=100))
