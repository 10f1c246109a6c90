"""Bootstrap confidence intervals for means: plain, paired and clustered; percentile and BCa.

One engine serves every variant. Each resampling unit (an item, or a whole cluster) is a row of *features*
whose column totals determine the statistic: ``[value, 1]`` for a mean, ``[cluster sum, cluster size]`` for a
clustered mean. Resampling units with replacement then only changes how many times each unit is drawn, so:

* **Count path.** When the units take few distinct feature rows (binary outcomes, paired differences in
  {-1, 0, 1}, win/tie/loss scores, clusters of such), the bootstrap draws how many units of each *type* a
  resample holds — a multinomial, drawn as a chain of vectorised binomials — instead of drawing items. For
  binary outcomes that is one binomial draw per resample. This is exact: the counts of a resample of ``n``
  items drawn with replacement are multinomial, and the statistic depends on nothing else.
* **Index path.** Otherwise (real-valued scores), resample indices in chunks of about four million draws, so
  memory stays bounded whatever ``n`` and ``n_resamples`` are.

BCa follows Efron & Tibshirani (1993, §14.3) as :func:`scipy.stats.bootstrap` does: bias correction from the
share of resamples below the estimate (ties counted half), acceleration from the jackknife over units; for
these statistics the jackknife is closed-form from the totals, so it costs O(units).

Degenerate data (every unit has the same value: all correct, all wrong, a single item or cluster) give a
zero-width interval at the estimate: the bootstrap cannot express uncertainty the sample does not show. For
proportions prefer :func:`~eval_assets.stats.wilson_interval`, which stays informative there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from scipy.special import ndtr, ndtri

from ._types import Interval
from ._validation import (
    FloatArray,
    IntArray,
    as_float_array,
    as_labels,
    check_choice,
    check_confidence,
    check_n_resamples,
    check_same_length,
    check_seed,
)

BootstrapMethod = Literal["percentile", "bca"]
_METHODS = ("percentile", "bca")

#: Use the count path when the units fall into at most this many distinct types ...
_COUNT_PATH_MAX_TYPES = 64
#: ... and there are at least this many units per type on average (else drawing indices is as cheap).
_COUNT_PATH_MIN_UNITS_PER_TYPE = 4
#: Index draws per chunk on the index path (bounded memory: ~32 MiB of indices, the same again gathered).
_CHUNK_ELEMENTS = 1 << 22

#: A statistic of column totals: (R, f) totals -> (R,) values.
Statistic = Callable[[FloatArray], FloatArray]


def _ratio(totals: FloatArray) -> FloatArray:
    """Column 0 over column 1: a mean (``[value, 1]``) or a clustered mean (``[sum, size]``)."""
    return np.asarray(totals[:, 0] / totals[:, 1], dtype=np.float64)


def multinomial_counts(rng: np.random.Generator, type_counts: IntArray, size: int) -> FloatArray:
    """``size`` draws of how many units of each type a with-replacement resample of all units holds.

    Multinomial(sum(type_counts), type_counts / sum), drawn as conditional binomials so that each step is one
    vectorised call over all resamples (numpy's ``Generator.multinomial`` loops per row).
    """
    n_types = len(type_counts)
    out = np.empty((size, n_types), dtype=np.float64)
    remaining = np.full(size, int(type_counts.sum()), dtype=np.int64)
    units_left = int(type_counts.sum())
    for t in range(n_types - 1):
        k = int(type_counts[t])
        draw = (
            rng.binomial(remaining, min(k / units_left, 1.0)) if units_left > 0 else np.zeros_like(remaining)
        )
        out[:, t] = draw
        remaining -= draw
        units_left -= k
    out[:, n_types - 1] = remaining
    return out


def resample_totals(features: FloatArray, n_resamples: int, rng: np.random.Generator) -> FloatArray:
    """Column totals of ``features`` over ``n_resamples`` bootstrap resamples of its rows: shape (B, f)."""
    n_units, n_features = features.shape
    out = np.empty((n_resamples, n_features), dtype=np.float64)
    constant = np.all(features == features[0], axis=0)
    out[:, constant] = n_units * features[0, constant]  # every resample holds exactly n_units units
    varying = np.flatnonzero(~constant)
    if varying.size == 0:
        return out
    varying_features = features[:, varying]
    if varying.size == 1:
        uniq_1d, type_counts = np.unique(varying_features[:, 0], return_counts=True)
        types = uniq_1d[:, None]
    else:
        types, type_counts = np.unique(varying_features, axis=0, return_counts=True)
    n_types = len(type_counts)
    if n_types <= _COUNT_PATH_MAX_TYPES and n_types * _COUNT_PATH_MIN_UNITS_PER_TYPE <= n_units:
        out[:, varying] = multinomial_counts(rng, type_counts.astype(np.int64), n_resamples) @ types
        return out
    rows = max(1, _CHUNK_ELEMENTS // n_units)
    index_dtype = np.int32 if n_units < 2**31 else np.int64
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        idx = rng.integers(0, n_units, size=(stop - start, n_units), dtype=index_dtype)
        for j, column in enumerate(varying):
            out[start:stop, column] = np.take(varying_features[:, j], idx).sum(axis=1)
    return out


def _percentile_of_score(theta_b: FloatArray, theta_hat: float) -> float:
    """Share of resamples below the estimate, ties counted half (scipy's convention)."""
    below = np.count_nonzero(theta_b < theta_hat)
    at_or_below = np.count_nonzero(theta_b <= theta_hat)
    return (below + at_or_below) / (2 * len(theta_b))


def bca_probabilities(
    theta_b: FloatArray, theta_hat: float, jackknife: FloatArray, alpha: float
) -> tuple[float, float]:
    """BCa-adjusted quantile levels for a two-sided interval with ``alpha`` in each tail."""
    n_resamples = len(theta_b)
    share = _percentile_of_score(theta_b, theta_hat)
    # Keep z0 finite when the estimate lies outside every resample (only near-degenerate data).
    share = min(max(share, 0.5 / n_resamples), 1.0 - 0.5 / n_resamples)
    z0 = float(ndtri(share))
    u = jackknife.mean() - jackknife
    sum_sq = float(np.sum(u**2))
    accel = float(np.sum(u**3)) / (6.0 * sum_sq**1.5) if sum_sq > 0 else 0.0
    z_alpha = float(ndtri(alpha))
    levels: list[float] = []
    for z, fallback in ((z_alpha, 0.0), (-z_alpha, 1.0)):
        shifted = z0 + z
        denom = 1.0 - accel * shifted
        level = float(ndtr(z0 + shifted / denom)) if denom > 0 else fallback
        levels.append(level if np.isfinite(level) else fallback)
    return levels[0], levels[1]


def bootstrap_interval(
    features: FloatArray,
    statistic: Statistic,
    *,
    confidence: float,
    n_resamples: int,
    method: str,
    seed: int,
    label: str,
    n: int,
    n_clusters: int | None = None,
) -> Interval:
    """The shared engine: resample the rows of ``features``, apply ``statistic`` to the totals."""
    theta_hat = float(statistic(features.sum(axis=0)[None, :])[0])
    rng = np.random.default_rng(seed)
    theta_b = statistic(resample_totals(features, n_resamples, rng))
    settings: dict[str, Any] = {
        "n": n,
        "confidence": confidence,
        "method": f"{label}-{method}",
        "n_clusters": n_clusters,
        "n_resamples": n_resamples,
        "seed": seed,
    }
    if float(np.ptp(theta_b)) <= 1e-12 * max(1.0, abs(theta_hat)):
        return Interval(theta_hat, theta_hat, theta_hat, **settings)
    alpha = (1.0 - confidence) / 2.0
    if method == "bca":
        jackknife = statistic(features.sum(axis=0)[None, :] - features)
        levels = bca_probabilities(theta_b, theta_hat, jackknife, alpha)
    else:
        levels = (alpha, 1.0 - alpha)
    low, high = np.quantile(theta_b, levels)
    return Interval(theta_hat, float(low), float(high), **settings)


def _check_common(confidence: float, n_resamples: int, method: str, seed: int) -> tuple[float, int, str, int]:
    return (
        check_confidence(confidence),
        check_n_resamples(n_resamples),
        check_choice(method, "method", _METHODS),
        check_seed(seed),
    )


def cluster_codes(clusters: Any, n_items: int) -> tuple[IntArray, int]:
    """Integer cluster codes 0..G-1 for any hashable labels, and G."""
    labels = as_labels(clusters, "clusters")
    if len(labels) != n_items:
        raise ValueError(
            f"length mismatch: clusters has {len(labels)} labels for {n_items} items; give one cluster label "
            "per item (e.g. the prompt id for both judge orders)."
        )
    try:
        _, codes = np.unique(labels, return_inverse=True)
    except TypeError:  # mixed, unorderable labels: number them in order of appearance
        mapping: dict[object, int] = {}
        codes = np.array([mapping.setdefault(v, len(mapping)) for v in labels.tolist()])
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    return codes, int(codes.max()) + 1


def _cluster_features(values: FloatArray, clusters: Any, weighting: str) -> tuple[FloatArray, int]:
    codes, n_clusters = cluster_codes(clusters, len(values))
    sums = np.bincount(codes, weights=values, minlength=n_clusters)
    sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    if weighting == "items":
        return np.column_stack([sums, sizes]), n_clusters
    return np.column_stack([sums / sizes, np.ones(n_clusters)]), n_clusters


def bootstrap_mean_ci(
    values: Any,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    method: BootstrapMethod = "bca",
    seed: int = 0,
) -> Interval:
    """Bootstrap confidence interval for the mean of independent item scores.

    Binary (0/1) outcomes and scores with few distinct values take the exact count path (one binomial or a
    few binomial draws per resample); real-valued scores are resampled by index in bounded-memory chunks.

    Args:
        values: one score per item (numpy array, sequence or polars Series); 0/1 or real-valued.
        confidence: nominal two-sided coverage in (0, 1).
        n_resamples: bootstrap resamples (at least 100; 10,000 is cheap on the count path).
        method: ``"bca"`` (bias-corrected and accelerated; default, as in scipy) or ``"percentile"``.
        seed: seed of the numpy Generator; the same inputs and seed give the same interval.

    Returns:
        :class:`Interval` with method ``"bootstrap-bca"`` or ``"bootstrap-percentile"``.

    Raises:
        ValueError: empty input, NaN/infinite/null values, bad confidence, method or n_resamples.

    Coverage, for a proportion (simulated and computed exactly in the tests): at n = 400 with p in [0.1, 0.9]
    both methods cover 95% ± 1.5% on average over p, but pointwise the coverage swings by about ±2% with p,
    because the bootstrap distribution of a proportion lives on a 1/n lattice (Wilson swings less). At small
    ``n * p`` they collapse: 64% at n = 20, p = 0.05, where a third of the data sets are all-wrong and give
    [0, 0]; with all values equal the interval always has zero width. Use :func:`wilson_interval` for a
    single proportion; use this for real-valued scores and as the building block of the paired and
    clustered versions.
    """
    confidence, n_resamples, method_name, seed = _check_common(confidence, n_resamples, method, seed)
    x = as_float_array(values, "values")
    features = np.column_stack([x, np.ones_like(x)])
    return bootstrap_interval(
        features,
        _ratio,
        confidence=confidence,
        n_resamples=n_resamples,
        method=method_name,
        seed=seed,
        label="bootstrap",
        n=len(x),
    )


def paired_bootstrap_diff(
    candidate: Any,
    baseline: Any,
    *,
    clusters: Any = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    method: BootstrapMethod = "bca",
    seed: int = 0,
) -> Interval:
    """Bootstrap interval for ``mean(candidate) - mean(baseline)`` on the same items, resampling pairs.

    Resampling pairs (not each checkpoint separately) keeps the item-level correlation between the two
    checkpoints, which is what makes a paired comparison far tighter than two independent intervals. For
    binary outcomes the differences lie in {-1, 0, 1} and the exact count path applies.

    Args:
        candidate, baseline: per-item scores, aligned item by item (position i is the same item in both).
        clusters: optional cluster label per item (e.g. problem id when each problem has several samples);
            whole clusters of pairs are then resampled and the estimate weights every item equally.
        confidence, n_resamples, method, seed: as in :func:`bootstrap_mean_ci`.

    Returns:
        :class:`Interval` of the difference, method ``"paired-bootstrap-…"`` (or ``"paired-cluster-bootstrap-…"``).

    Raises:
        ValueError: empty or mismatched inputs, NaN values, bad settings.

    Coverage: 95% ± 1.5% in simulation for binary outcomes at n = 500 with 30% discordant items (about 94.5%:
    a bootstrap interval is a normal-theory interval in disguise and slightly short with ~150 informative
    items). At small n it under-covers: about 89% for 30 items with 20% discordant (~6 informative items).
    For 0/1 outcomes prefer :func:`~eval_assets.stats.paired_proportion_difference_interval`, which covers
    about 95% there and does not collapse to [0, 0] when no item is discordant.
    """
    confidence, n_resamples, method_name, seed = _check_common(confidence, n_resamples, method, seed)
    cand = as_float_array(candidate, "candidate")
    base = as_float_array(baseline, "baseline")
    n = check_same_length(candidate=cand, baseline=base)
    diff = cand - base
    if clusters is None:
        features = np.column_stack([diff, np.ones_like(diff)])
        n_clusters, label = None, "paired-bootstrap"
    else:
        features, n_clusters = _cluster_features(diff, clusters, "items")
        label = "paired-cluster-bootstrap"
    return bootstrap_interval(
        features,
        _ratio,
        confidence=confidence,
        n_resamples=n_resamples,
        method=method_name,
        seed=seed,
        label=label,
        n=n,
        n_clusters=n_clusters,
    )


def cluster_bootstrap_mean(
    values: Any,
    clusters: Any,
    *,
    weighting: Literal["items", "clusters"] = "items",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    method: BootstrapMethod = "bca",
    seed: int = 0,
) -> Interval:
    """Bootstrap interval for a mean of correlated items, resampling whole clusters.

    Items of one cluster (both judge orders of one prompt, several samples of one problem) are correlated;
    treating them as independent makes intervals too narrow. Resampling clusters keeps that correlation.

    Args:
        values: one score per item (e.g. 1 win, 0.5 tie, 0 loss per judge order).
        clusters: one cluster label per item (any hashable: prompt id, problem id).
        weighting: ``"items"`` (default): the estimate is the plain mean over items (clusters weigh by their
            size); ``"clusters"``: the mean of per-cluster means (every cluster weighs the same).
        confidence, n_resamples, method, seed: as in :func:`bootstrap_mean_ci`.

    Returns:
        :class:`Interval` with ``n`` items and ``n_clusters`` clusters, method ``"cluster-bootstrap-…"``.

    Raises:
        ValueError: empty input, NaN, clusters of the wrong length or with missing labels, bad settings.

    Coverage: 95% ± 1.5% in simulation for a win-rate over 200 prompts judged in both orders (about 94.3%
    percentile / 95.3% BCa at 30 prompts); with one cluster the interval has zero width. The item-level
    bootstrap on the same data covers only about 92% (see the tests): always pass the clusters.
    """
    confidence, n_resamples, method_name, seed = _check_common(confidence, n_resamples, method, seed)
    check_choice(weighting, "weighting", ("items", "clusters"))
    x = as_float_array(values, "values")
    features, n_clusters = _cluster_features(x, clusters, weighting)
    return bootstrap_interval(
        features,
        _ratio,
        confidence=confidence,
        n_resamples=n_resamples,
        method=method_name,
        seed=seed,
        label="cluster-bootstrap",
        n=len(x),
        n_clusters=n_clusters,
    )
