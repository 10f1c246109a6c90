"""Unbiased pass@k: equal to the exact combinatorial formula, stable, vectorised."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from eval_assets import stats


def _exact(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


def _human_eval_reference(n: int, c: int, k: int) -> float:
    """The estimator as written in openai/human-eval (human_eval/evaluation.py)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def test_matches_exact_rational_arithmetic_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 400))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        expected = _exact(n, c, k)
        assert stats.pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-11, abs=1e-300)
        assert stats.pass_at_k(n, c, k) == pytest.approx(_human_eval_reference(n, c, k), rel=1e-9, abs=1e-15)


def test_tiny_values_keep_relative_precision() -> None:
    """1 correct of 10,000, pass@1 is exactly 1e-4; 1 - prod(...) would lose digits, the log form does not."""
    assert stats.pass_at_k(10_000, 1, 1) == pytest.approx(1e-4, rel=1e-12)
    assert stats.pass_at_k(100_000, 1, 2) == pytest.approx(_exact(100_000, 1, 2), rel=1e-10)


def test_known_values_and_edges() -> None:
    assert stats.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert stats.pass_at_k(10, 0, 5) == 0.0  # all wrong
    assert stats.pass_at_k(10, 10, 5) == 1.0  # all correct
    assert stats.pass_at_k(10, 6, 5) == 1.0  # fewer than k failures: every k-subset has a pass
    assert stats.pass_at_k(1, 1, 1) == 1.0 and stats.pass_at_k(1, 0, 1) == 0.0  # one sample
    assert stats.pass_at_k(5, 2, 5) == 1.0  # k == n: pass iff any correct


def test_k_larger_than_n_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least k=6 samples"):
        stats.pass_at_k(5, 2, 6)
    with pytest.raises(ValueError, match="at least k=6 samples"):
        stats.pass_at_k_per_problem([10, 5], [1, 2], 6)
    with pytest.raises(ValueError, match="cannot exceed"):
        stats.pass_at_k(5, 6, 1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        stats.pass_at_k(5, 2, 0)
    with pytest.raises(ValueError, match="integer"):
        stats.pass_at_k_per_problem([5, 5], [1.5, 2], 1)
    with pytest.raises(ValueError, match="c > n"):
        stats.pass_at_k_per_problem([5, 5], [1, 6], 1)


def test_vectorised_equals_scalar_with_varying_n() -> None:
    rng = np.random.default_rng(1)
    n = rng.integers(10, 300, size=1_000)
    c = rng.integers(0, n + 1)
    for k in (1, 5, 10):
        got = stats.pass_at_k_per_problem(n, c, k)
        expected = [stats.pass_at_k(int(a), int(b), k) for a, b in zip(n, c, strict=True)]
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-300)
    shared_n = stats.pass_at_k_per_problem(20, [0, 5, 20], 3)
    np.testing.assert_allclose(shared_n, [stats.pass_at_k(20, x, 3) for x in (0, 5, 20)], rtol=1e-12)


def test_pass_at_k_interval_resamples_problems() -> None:
    rng = np.random.default_rng(2)
    c = rng.binomial(20, rng.random(164))
    result = stats.pass_at_k_interval(20, c, 10)
    per_problem = stats.pass_at_k_per_problem(20, c, 10)
    assert result.estimate == pytest.approx(per_problem.mean())
    assert result.low < result.estimate < result.high and result.n == 164
    assert result.method == "pass@10-bootstrap-bca"
