"""Newcombe's paired hybrid score interval (1998, method 10): published values, an independent re-implementation,
the degenerate tables where the bootstrap collapses, symmetry, and bad input. Coverage is in test_stats_coverage.py.

Published values used:

* Cavo et al. (2012), complete response before/after consolidation, (a, b, c, d) = (59, 6, 16, 80):
  -0.0621 (95% CI -0.1186 to -0.0046), as given for the Newcombe square-and-add interval by Fagerland, Lydersen
  & Laake (Statistical Analysis of Contingency Tables, 2017, ch. 8) and asserted in their R package's tests
  (ocbe-uio/contingencytables, tests/testthat/test-ch8.R). This table has ad - bc > n/2, so it also pins down
  Newcombe's shrunk phi (the plain phi coefficient would give -0.1174 to -0.0059).

Not confirmed: Newcombe's own Table II. For (36, 12, 2, 0) a value of (0.0528, 0.3339) has been quoted to us, but
we could not read the paper, and neither method 10 (0.0569, 0.3404 here), method 11 with continuity-corrected
Wilson limits (0.0407, 0.3522) nor Wald (0.0642, 0.3358) reproduces it. That table, and the degenerate
(5, 0, 0, 0)-type tables, are therefore checked against the independent implementation below and, where the
limits have a closed form, against that.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import optimize
from scipy import stats as sps

from eval_assets import stats

Z95 = float(sps.norm.ppf(0.975))


# --- an independent implementation, straight from the formula -----------------------------------------------


def _wilson_by_root_finding(successes: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson limits as the roots of the score equation (p_hat - pi)^2 = z^2 pi (1 - pi) / n."""
    p_hat = successes / n

    def score(pi: float) -> float:
        return (p_hat - pi) ** 2 - z * z * pi * (1.0 - pi) / n

    # score < 0 strictly between the roots; p_hat itself is a (trivial) root when it is 0 or 1, so step off it
    inside_low, inside_high = min(p_hat, 1.0 - 1e-12), max(p_hat, 1e-12)
    low = 0.0 if successes == 0 else optimize.brentq(score, 0.0, inside_low, xtol=1e-15, rtol=1e-15)
    high = 1.0 if successes == n else optimize.brentq(score, inside_high, 1.0, xtol=1e-15, rtol=1e-15)
    return low, high


def _reference(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Newcombe (1998) method 10, with phi from the item-level Pearson correlation (phi coefficient)."""
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    n = a + b + c + d
    candidate = np.repeat([1, 1, 0, 0], [a, b, c, d])
    baseline = np.repeat([1, 0, 1, 0], [a, b, c, d])
    p1, p2 = candidate.mean(), baseline.mean()
    l1, u1 = _wilson_by_root_finding(a + b, n, z)
    l2, u2 = _wilson_by_root_finding(a + c, n, z)
    if 0 in (a + b, c + d, a + c, b + d):
        phi = 0.0  # a constant margin: the correlation is undefined, Newcombe sets phi to 0
    else:
        raw = float(np.corrcoef(candidate, baseline)[0, 1])
        shrink = (n / 2) / math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
        phi = raw - shrink if raw > shrink else (0.0 if raw >= 0 else raw)
    theta = p1 - p2
    low = theta - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = theta + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return theta, low, high


def _all_tables(n: int) -> list[tuple[int, int, int, int]]:
    return [
        (a, b, c, n - a - b - c) for a in range(n + 1) for b in range(n + 1 - a) for c in range(n + 1 - a - b)
    ]


# --- published values and the reference ---------------------------------------------------------------------


def test_cavo_2012_published_limits() -> None:
    interval = stats.paired_proportion_difference_interval_from_counts(59, 6, 16, 80)
    assert round(interval.estimate, 4) == -0.0621
    assert (round(interval.low, 4), round(interval.high, 4)) == (-0.1186, -0.0046)
    assert interval.method == "newcombe-paired-score" and interval.n == 161 and interval.confidence == 0.95


def test_newcombe_table_ii_first_example_against_the_reference() -> None:
    """(36, 12, 2, 0): see the module docstring for why this is not compared with a published value."""
    interval = stats.paired_proportion_difference_interval_from_counts(36, 12, 2, 0)
    theta, low, high = _reference(36, 12, 2, 0)
    assert interval.estimate == pytest.approx(0.2) == theta
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0569, 0.3404)


@pytest.mark.parametrize("n", [1, 5, 8, 30])
def test_all_concordant_single_cell_tables_have_closed_form_limits(n: int) -> None:
    """(n, 0, 0, 0) and (0, 0, 0, n): phi = 0 and the half-width is the Wilson margin of n/n, z^2 / (n + z^2)."""
    margin = Z95**2 / (n + Z95**2)
    for table in [(n, 0, 0, 0), (0, 0, 0, n)]:
        interval = stats.paired_proportion_difference_interval_from_counts(*table)
        assert interval.estimate == 0.0
        assert (interval.low, interval.high) == pytest.approx((-margin, margin), abs=1e-12)
    five = stats.paired_proportion_difference_interval_from_counts(5, 0, 0, 0)
    assert (round(five.low, 4), round(five.high, 4)) == (-0.4345, 0.4345)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 12])
def test_every_small_table_matches_the_reference(n: int) -> None:
    for table in _all_tables(n):
        got = stats.paired_proportion_difference_interval_from_counts(*table)
        theta, low, high = _reference(*table)
        assert got.estimate == pytest.approx(theta, abs=1e-15), table
        assert (got.low, got.high) == pytest.approx((low, high), abs=1e-10), table


def test_random_tables_and_confidences_match_the_reference() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 3_000))
        a, b, c, d = (int(v) for v in rng.multinomial(n, rng.dirichlet(np.full(4, 0.7))))
        confidence = float(rng.choice([0.8, 0.9, 0.95, 0.99]))
        got = stats.paired_proportion_difference_interval_from_counts(a, b, c, d, confidence=confidence)
        _, low, high = _reference(a, b, c, d, confidence)
        assert (got.low, got.high) == pytest.approx((low, high), abs=1e-9), (a, b, c, d, confidence)


def test_wald_option_matches_its_formula() -> None:
    for a, b, c, d in [(36, 12, 2, 0), (59, 6, 16, 80), (10, 3, 3, 10), (0, 0, 0, 8)]:
        n = a + b + c + d
        theta = (b - c) / n
        half = Z95 * math.sqrt(b + c - (b - c) ** 2 / n) / n
        got = stats.paired_proportion_difference_interval_from_counts(a, b, c, d, method="wald")
        assert got.method == "wald-paired"
        assert (got.low, got.high) == pytest.approx((max(-1, theta - half), min(1, theta + half)), abs=1e-12)


# --- the degenerate case the gate cares about ----------------------------------------------------------------


def test_no_discordant_items_give_a_positive_width_interval() -> None:
    """0/8 against 0/8 does not show the candidate is as good: the bootstrap says [0, 0], Newcombe does not."""
    zeros = np.zeros(8)
    newcombe = stats.paired_proportion_difference_interval(zeros, zeros)
    bootstrap = stats.paired_bootstrap_diff(zeros, zeros, n_resamples=1_000)
    assert (bootstrap.low, bootstrap.high) == (0.0, 0.0)
    assert newcombe.estimate == 0.0 and newcombe.low == pytest.approx(-0.3244, abs=1e-4)
    assert newcombe.low < -0.05  # so a non-inferiority margin of 5 points is not met
    for n in range(1, 31):
        for a in range(n + 1):
            interval = stats.paired_proportion_difference_interval_from_counts(a, 0, 0, n - a)
            assert interval.low < 0.0 < interval.high, (a, n)
            assert interval.low == pytest.approx(-interval.high, abs=1e-12)


@pytest.mark.parametrize("n", [1, 4, 15])
def test_limits_are_ordered_and_within_minus_one_to_one(n: int) -> None:
    for table in _all_tables(n):
        interval = stats.paired_proportion_difference_interval_from_counts(*table)
        assert -1.0 <= interval.low < interval.estimate < interval.high <= 1.0 or (
            -1.0 <= interval.low <= interval.estimate <= interval.high <= 1.0
            and abs(interval.estimate) == 1.0
        ), table
    assert stats.paired_proportion_difference_interval_from_counts(0, n, 0, 0).high == 1.0
    assert stats.paired_proportion_difference_interval_from_counts(0, 0, n, 0).low == -1.0


# --- symmetry ------------------------------------------------------------------------------------------------


def test_symmetric_tables_give_intervals_symmetric_about_zero() -> None:
    for a, b, d in [(10, 3, 10), (0, 4, 0), (40, 7, 1), (2, 0, 9), (100, 25, 60)]:
        interval = stats.paired_proportion_difference_interval_from_counts(a, b, b, d)
        assert interval.estimate == 0.0
        assert interval.low == pytest.approx(-interval.high, abs=1e-12)


def test_swapping_candidate_and_baseline_negates_the_interval() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 400))
        a, b, c, d = (int(v) for v in rng.multinomial(n, rng.dirichlet(np.ones(4))))
        forward = stats.paired_proportion_difference_interval_from_counts(a, b, c, d)
        swapped = stats.paired_proportion_difference_interval_from_counts(a, c, b, d)
        flipped = stats.paired_proportion_difference_interval_from_counts(d, c, b, a)  # right <-> wrong
        for other in (swapped, flipped):
            assert other.estimate == pytest.approx(-forward.estimate, abs=1e-15)
            assert (other.low, other.high) == pytest.approx((-forward.high, -forward.low), abs=1e-12)


def test_higher_confidence_gives_a_wider_interval() -> None:
    widths = [
        stats.paired_proportion_difference_interval_from_counts(20, 7, 3, 10, confidence=level).width
        for level in (0.8, 0.9, 0.95, 0.99)
    ]
    assert widths == sorted(widths) and widths[0] > 0


# --- outcome vectors -----------------------------------------------------------------------------------------


def test_outcome_vectors_are_counted_into_the_table() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        base = rng.random(n) < 0.6
        cand = np.where(rng.random(n) < 0.25, ~base, base)
        a, b = int(np.sum(cand & base)), int(np.sum(cand & ~base))
        c, d = int(np.sum(~cand & base)), int(np.sum(~cand & ~base))
        for method in ("newcombe", "wald"):
            got = stats.paired_proportion_difference_interval(cand.astype(int), base, method=method)
            assert got == stats.paired_proportion_difference_interval_from_counts(a, b, c, d, method=method)
            assert got.estimate == pytest.approx(cand.mean() - base.mean(), abs=1e-12)
    polars = stats.paired_proportion_difference_interval(pl.Series([1, 0, 1, 1]), [True, False, False, True])
    assert polars == stats.paired_proportion_difference_interval_from_counts(2, 1, 0, 1)
    assert "newcombe-paired-score" in str(polars) and "n=4" in str(polars)


# --- bad input -----------------------------------------------------------------------------------------------


def test_bad_input_raises_value_error() -> None:
    counts = stats.paired_proportion_difference_interval_from_counts
    vectors = stats.paired_proportion_difference_interval
    with pytest.raises(ValueError, match="b must be at least 0"):
        counts(3, -1, 2, 4)
    with pytest.raises(ValueError, match="integer"):
        counts(3, 1.5, 2, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no paired items"):
        counts(0, 0, 0, 0)
    with pytest.raises(ValueError, match="method"):
        counts(3, 1, 2, 4, method="bootstrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a percentage"):
        counts(3, 1, 2, 4, confidence=95)
    with pytest.raises(ValueError, match="length mismatch"):
        vectors([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        vectors([1, 0, 2], [1, 0, 1])
    with pytest.raises(ValueError, match="NaN"):
        vectors([1.0, float("nan")], [1, 0])
    with pytest.raises(ValueError, match="empty"):
        vectors([], [])
    with pytest.raises(ValueError, match="null"):
        vectors(pl.Series([1, None, 0]), [1, 1, 0])
