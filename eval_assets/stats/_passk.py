"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

With ``n`` samples of which ``c`` pass, ``pass@k = 1 - C(n - c, k) / C(n, k)``: the probability that a random
subset of ``k`` of the ``n`` samples holds at least one passing one. The binomial coefficients overflow quickly,
so it is computed as ``1 - prod_{i=n-c+1}^{n} (1 - k / i)`` in log space (``-expm1(sum(log1p(-k / i)))``),
which keeps full relative precision even when pass@k is tiny.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._bootstrap import BootstrapMethod, bootstrap_mean_ci
from ._types import Interval
from ._validation import FloatArray, IntArray, as_float_array, check_int


def _check_k_le_n(n: int, k: int) -> None:
    if k > n:
        raise ValueError(
            f"pass@{k} needs at least k={k} samples per problem, but a problem has only n={n}; "
            "draw more samples or report a smaller k."
        )


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem from ``n`` samples of which ``c`` are correct.

    Raises:
        ValueError: ``n < 1``, ``c`` outside [0, n], ``k < 1`` or ``k > n``.
    """
    n = check_int(n, "n", minimum=1)
    c = check_int(c, "c", minimum=0)
    k = check_int(k, "k", minimum=1)
    if c > n:
        raise ValueError(f"c ({c}) correct samples cannot exceed n ({n}) samples.")
    _check_k_le_n(n, k)
    if n - c < k:
        return 1.0
    i = np.arange(n - c + 1, n + 1, dtype=np.float64)
    return float(-np.expm1(np.sum(np.log1p(-k / i)))) + 0.0  # + 0.0: no negative zero


def _as_counts(values: Any, name: str, size: int = 1) -> IntArray:
    array = np.full(size, values, dtype=np.float64) if np.isscalar(values) else as_float_array(values, name)
    if np.any(array != np.round(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold non-negative integer counts; got {array[:5]}...")
    return array.astype(np.int64)


def pass_at_k_per_problem(n: Any, c: Any, k: int) -> FloatArray:
    """Vectorised unbiased pass@k: one value per problem.

    Args:
        n: samples per problem (an array, or one integer shared by all problems).
        c: correct samples per problem (array).
        k: the k of pass@k, at most every problem's ``n``.

    Uses prefix sums of ``log1p(-k / i)`` so that all problems are computed in one pass, whatever their ``n``.

    Raises:
        ValueError: empty input, ``c > n``, non-integer or negative counts, ``k > n`` for any problem.
    """
    k = check_int(k, "k", minimum=1)
    c_arr = _as_counts(c, "c")
    n_arr = _as_counts(n, "n", size=len(c_arr))
    if len(n_arr) != len(c_arr):
        raise ValueError(f"length mismatch: n has {len(n_arr)} problems, c has {len(c_arr)}.")
    if np.any(n_arr < 1):
        raise ValueError("every problem needs at least one sample (n >= 1).")
    if np.any(c_arr > n_arr):
        first = int(np.flatnonzero(c_arr > n_arr)[0])
        raise ValueError(f"c > n for problem {first} (c={c_arr[first]}, n={n_arr[first]}).")
    if np.any(n_arr < k):
        _check_k_le_n(int(n_arr.min()), k)
    # prefix[m] = sum_{j=k+1}^{m} log1p(-k / j) for m >= k (0 up to k).
    max_n = int(n_arr.max())
    terms = np.log1p(-k / np.arange(k + 1, max_n + 1, dtype=np.float64))
    prefix = np.concatenate([np.zeros(k + 1), np.cumsum(terms)])
    fails = n_arr - c_arr
    out = np.ones(len(c_arr), dtype=np.float64)
    ok = fails >= k
    out[ok] = -np.expm1(prefix[n_arr[ok]] - prefix[fails[ok]]) + 0.0
    return out


def pass_at_k_interval(
    n: Any,
    c: Any,
    k: int,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    method: BootstrapMethod = "bca",
    seed: int = 0,
) -> Interval:
    """Mean pass@k over problems with a bootstrap interval that resamples problems.

    The samples of one problem are not independent draws of the benchmark, so problems are the resampling
    unit. Resampling whole problems with their per-problem estimates also carries the sampling noise of those
    estimates (the two-stage variance), so nothing is lost by not resampling the samples themselves.

    Raises:
        ValueError: as :func:`pass_at_k_per_problem` and :func:`bootstrap_mean_ci`.
    """
    per_problem = pass_at_k_per_problem(n, c, k)
    result = bootstrap_mean_ci(
        per_problem, confidence=confidence, n_resamples=n_resamples, method=method, seed=seed
    )
    return Interval(
        result.estimate,
        result.low,
        result.high,
        result.n,
        result.confidence,
        f"pass@{k}-{result.method}",
        n_resamples=result.n_resamples,
        seed=result.seed,
    )
