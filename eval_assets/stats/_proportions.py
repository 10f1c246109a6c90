"""Confidence intervals for a proportion: Wilson (default), Clopper-Pearson, and Wilson for clustered data.

Wilson is the default because its coverage stays close to nominal down to small ``n`` while the interval stays
short (Brown, Cai & DasGupta 2001); Clopper-Pearson ("beta") never covers less than nominal, at the price of
width. Both give informative intervals for 0/n and n/n, where any bootstrap collapses to a point.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

import numpy as np
from scipy import stats

from ._bootstrap import cluster_codes
from ._types import Interval
from ._validation import as_float_array, check_choice, check_confidence, check_int

ProportionMethod = Literal["wilson", "beta", "clopper-pearson"]


def _check_counts(successes: float, n: int, *, integer: bool) -> tuple[float, int]:
    n = check_int(n, "n", minimum=1)
    if integer:
        s: float = check_int(successes, "successes", minimum=0)
    else:
        if isinstance(successes, bool) or not isinstance(successes, numbers.Real):
            raise ValueError(f"successes must be a number; got {successes!r}.")
        s = float(successes)
        if not math.isfinite(s) or s < 0:
            raise ValueError(f"successes must be a finite number >= 0; got {successes!r}.")
    if s > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n}); check the counts.")
    return s, n


def wilson_bounds(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for an observed proportion ``p`` from ``n`` (possibly effective) trials."""
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z * math.sqrt(max(p * (1.0 - p), 0.0) / n + z2 / (4.0 * n * n)) / denom
    low = 0.0 if p <= 0.0 else max(0.0, centre - half)
    high = 1.0 if p >= 1.0 else min(1.0, centre + half)
    return low, high


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for ``successes`` out of ``n`` independent trials.

    ``successes`` may be fractional (e.g. ties counted as half a win); the interval then treats the score as a
    proportion of ``n`` trials, which is conservative because ties have less variance than wins and losses.

    Returns:
        :class:`Interval` with ``estimate = successes / n`` and method ``"wilson"``.

    Raises:
        ValueError: ``n < 1``, ``successes`` outside [0, n], confidence outside (0, 1).

    Coverage (computed exactly and simulated in the tests): within 95% ± 1.5% for every ``p`` in [0.1, 0.9]
    once ``n >= 200``; it dips below nominal for ``p`` close to 0 or 1 at small ``n`` (92.5% at n = 20,
    p = 0.05). Use :func:`clopper_pearson_interval` when you need a guarantee.
    """
    s, n = _check_counts(successes, n, integer=False)
    confidence = check_confidence(confidence)
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    low, high = wilson_bounds(s / n, n, z)
    return Interval(s / n, low, high, n, confidence, "wilson")


def clopper_pearson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Clopper-Pearson ("exact", beta) interval for ``successes`` out of ``n`` independent trials.

    Its coverage is at least the nominal level for every ``p`` and ``n`` (it is conservative: typically 96-99%
    for a 95% interval), so it suits claims that must not be over-confident.

    Raises:
        ValueError: non-integer counts, ``n < 1``, ``successes`` outside [0, n], confidence outside (0, 1).
    """
    s_float, n = _check_counts(successes, n, integer=True)
    s = int(s_float)
    confidence = check_confidence(confidence)
    alpha_2 = (1.0 - confidence) / 2.0
    low = float(stats.beta.ppf(alpha_2, s, n - s + 1)) if s > 0 else 0.0
    high = float(stats.beta.isf(alpha_2, s + 1, n - s)) if s < n else 1.0
    return Interval(s / n, low, high, n, confidence, "clopper-pearson")


def proportion_interval(
    successes: float, n: int, confidence: float = 0.95, method: ProportionMethod = "wilson"
) -> Interval:
    """Interval for a proportion: ``method="wilson"`` (default) or ``"beta"``/``"clopper-pearson"``."""
    check_choice(method, "method", ("wilson", "beta", "clopper-pearson"))
    if method == "wilson":
        return wilson_interval(successes, n, confidence)
    if isinstance(successes, float) and not successes.is_integer():
        raise ValueError(
            f"Clopper-Pearson needs an integer number of successes; got {successes}. "
            "Use method='wilson' for fractional (tie-weighted) counts."
        )
    return clopper_pearson_interval(int(successes), n, confidence)


def clustered_wilson_interval(values: Any, clusters: Any, confidence: float = 0.95) -> Interval:
    """Wilson interval for a rate over correlated items, using the effective sample size of the clusters.

    Intended for a judge win-rate where each prompt is judged in both orders (the two verdicts of a prompt are
    correlated). The estimate is the mean over items; its variance is the cluster-robust (linearisation)
    variance of a ratio mean, ``v = G/(G-1) * sum_g (S_g - p * m_g)**2 / M**2``, and the Wilson formula is
    applied with the effective sample size ``n_eff = p(1-p) / v`` (Korn & Graubard 1998), capped at the number
    of items ``M``. When the rate is 0 or 1, or there is a single cluster, ``v`` carries no information and
    ``n_eff`` falls back to the number of clusters ``G`` (the conservative choice: fully correlated clusters).

    Args:
        values: per-item scores in [0, 1] (1 win, 0.5 tie, 0 loss).
        clusters: one cluster label per item (e.g. the prompt id).
        confidence: nominal two-sided coverage.

    Returns:
        :class:`Interval` with ``n`` items, ``n_clusters`` clusters, method ``"wilson-clustered"``.

    Raises:
        ValueError: values outside [0, 1], NaN, mismatched lengths, confidence outside (0, 1).

    Coverage: 95% ± 1.5% in simulation for 200 prompts judged in both orders (see the tests).
    """
    confidence = check_confidence(confidence)
    x = as_float_array(values, "values")
    if x.min() < 0.0 or x.max() > 1.0:
        raise ValueError("values must lie in [0, 1] (e.g. 1 win, 0.5 tie, 0 loss); rescale scores first.")
    codes, n_clusters = cluster_codes(clusters, len(x))
    sums = np.bincount(codes, weights=x, minlength=n_clusters)
    sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    n_items = len(x)
    p = float(sums.sum() / n_items)
    n_eff: float = float(n_clusters)
    if n_clusters > 1 and 0.0 < p < 1.0:
        variance = n_clusters / (n_clusters - 1) * float(np.sum((sums - p * sizes) ** 2)) / n_items**2
        n_eff = float(n_items) if variance <= 0 else min(float(n_items), p * (1.0 - p) / variance)
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    low, high = wilson_bounds(p, n_eff, z)
    return Interval(p, low, high, n_items, confidence, "wilson-clustered", n_clusters=n_clusters)


def mean_rate_wilson_interval(rates: Any, sizes: Any, confidence: float = 0.95) -> Interval:
    """Wilson interval for the mean of per-item rates, each from ``sizes[i]`` correlated samples (pass@1 of a
    code suite: per problem, the share of its samples that passed; the suite's pass@1 is their mean).

    The estimate weighs every item equally (the unbiased pass@1 of HumanEval). The variance of the mean is
    ``s**2 / G`` over the ``G`` items (``s`` their rates' standard deviation), the effective sample size
    ``n_eff = p(1-p) / v`` capped at the number of samples; with equal sizes this is
    :func:`clustered_wilson_interval` over the samples. At a rate of 0 or 1 (every sample failed, or every one
    passed) or a single item the variance says nothing and ``n_eff`` is ``G`` (fully correlated samples: the
    conservative choice), so an all-failed run still gets an informative upper bound where a bootstrap gives
    [0, 0].

    Raises:
        ValueError: rates outside [0, 1], NaN, sizes below 1, mismatched lengths, confidence outside (0, 1).

    Coverage: within 95% ± 1.5% in simulation for 164 problems × 5 samples with varying difficulty, and at
    least 93% down to a mean rate of 2% (see the tests).
    """
    confidence = check_confidence(confidence)
    r = as_float_array(rates, "rates")
    m = as_float_array(sizes, "sizes")
    if len(m) != len(r):
        raise ValueError(f"rates and sizes differ in length ({len(r)} vs {len(m)}); give one size per rate.")
    if r.min() < 0.0 or r.max() > 1.0:
        raise ValueError("rates must lie in [0, 1] (a share of samples per item).")
    if m.min() < 1:
        raise ValueError("sizes must be >= 1 (the number of samples behind each rate).")
    n_items = len(r)
    p = float(r.mean())
    n_eff = float(n_items)
    if n_items > 1 and 0.0 < p < 1.0:
        variance = float(r.var(ddof=1)) / n_items
        n_eff = float(m.sum()) if variance <= 0 else min(float(m.sum()), p * (1.0 - p) / variance)
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    low, high = wilson_bounds(p, n_eff, z)
    return Interval(p, low, high, n_items, confidence, "wilson-clustered", n_clusters=n_items)
