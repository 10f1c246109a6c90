"""Inter-rater agreement: Cohen's kappa (two raters) and Fleiss' kappa (more than two), with intervals.

Kappa is undefined when chance agreement is 1 (every rating uses one and the same label); that raises a
``ValueError`` rather than returning NaN, so a gate cannot silently compare NaN with a threshold. Raw agreement
is always reported next to kappa: at perfect agreement kappa's interval collapses to a point, the Wilson
interval of the agreement does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats

from ._bootstrap import multinomial_counts, resample_totals
from ._proportions import wilson_bounds
from ._types import KappaResult
from ._validation import (
    FloatArray,
    IntArray,
    as_labels,
    check_choice,
    check_confidence,
    check_n_resamples,
    check_same_length,
    check_seed,
)

KappaMethod = Literal["wald", "bootstrap"]


def _check_label_values(array: Any, name: str) -> list[object]:
    return list(as_labels(array, name).tolist())


def _sorted_labels(observed: set[object]) -> tuple[object, ...]:
    try:
        return tuple(sorted(observed))  # type: ignore[type-var]
    except TypeError:
        return tuple(sorted(observed, key=repr))


def _codes(values: list[object], index: dict[object, int], name: str) -> IntArray:
    unknown = sorted({repr(v) for v in values if v not in index})
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ValueError(
            f"{name} has labels outside the declared set: {shown}. Add them to labels= or fix the "
            "ratings (a typo or a parse failure upstream is the usual cause)."
        )
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))


def _undefined(what: str, labels: Sequence[object]) -> ValueError:
    return ValueError(
        f"{what} is undefined: every rating uses the single label {labels!r}, so chance agreement is 1. "
        "Report raw agreement instead, or add items on which other labels occur."
    )


def _kappa_of_tables(tables: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cohen's kappa, observed and expected agreement of a stack of (k, k) tables (NaN where undefined)."""
    n = tables.sum(axis=(1, 2))
    observed = np.trace(tables, axis1=1, axis2=2) / n
    expected = np.einsum("bi,bi->b", tables.sum(axis=2), tables.sum(axis=1)) / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1.0 - expected)
    kappa[expected >= 1.0 - 1e-15] = np.nan
    return kappa, observed, expected


def _cohen_std(table: FloatArray, kappa: float) -> float:
    """Large-sample standard error of kappa (Fleiss, Cohen & Everitt 1969), as in statsmodels."""
    nobs = table.sum()
    probs = table / nobs
    row = table.sum(axis=1) / nobs
    col = table.sum(axis=0) / nobs
    expected = float(np.sum(row * col))
    term_a = float(np.sum(np.diag(probs) * (1.0 - (row + col) * (1.0 - kappa)) ** 2))
    off = probs * (col[:, None] + row[None, :]) ** 2
    np.fill_diagonal(off, 0.0)
    term_b = (1.0 - kappa) ** 2 * float(off.sum())
    term_c = (kappa - expected * (1.0 - kappa)) ** 2
    variance = (term_a + term_b - term_c) / (1.0 - expected) ** 2 / nobs
    return math.sqrt(max(variance, 0.0))


def cohens_kappa(
    rater_a: Any,
    rater_b: Any,
    labels: Sequence[object] | None = None,
    *,
    confidence: float = 0.95,
    method: KappaMethod = "wald",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> KappaResult:
    """Cohen's kappa between two raters (binary or multi-class labels), with raw agreement and intervals.

    Args:
        rater_a, rater_b: one label per item from each rater (e.g. human and judge verdicts), aligned.
        labels: the declared label set; a label outside it raises. ``None``: the labels observed.
        confidence: nominal coverage of both intervals.
        method: ``"wald"`` (default): ``kappa ± z * se`` with the large-sample standard error of Fleiss, Cohen
            & Everitt (1969), identical to statsmodels' ``cohens_kappa``; ``"bootstrap"``: percentile
            bootstrap over items (exact count path over the table cells; better at small n and kappa near 1).
        n_resamples, seed: bootstrap settings (``method="bootstrap"`` only).

    Returns:
        :class:`KappaResult`; the kappa interval is clipped to [-1, 1], the raw agreement has a Wilson interval.

    Raises:
        ValueError: empty or mismatched inputs, missing labels, labels outside ``labels``, a single label
            used throughout (kappa undefined), bad settings.
    """
    confidence = check_confidence(confidence)
    check_choice(method, "method", ("wald", "bootstrap"))
    values_a = _check_label_values(rater_a, "rater_a")
    values_b = _check_label_values(rater_b, "rater_b")
    n = check_same_length(rater_a=values_a, rater_b=values_b)
    if labels is None:
        label_set = _sorted_labels(set(values_a) | set(values_b))
    else:
        label_set = tuple(labels)
        if len(set(label_set)) != len(label_set):
            raise ValueError(f"labels has duplicates: {label_set!r}.")
    index = {label: i for i, label in enumerate(label_set)}
    codes_a = _codes(values_a, index, "rater_a")
    codes_b = _codes(values_b, index, "rater_b")
    k = len(label_set)
    table = np.bincount(codes_a * k + codes_b, minlength=k * k).reshape(k, k).astype(np.float64)
    kappa_arr, observed_arr, expected_arr = _kappa_of_tables(table[None])
    kappa = float(kappa_arr[0])
    if math.isnan(kappa):
        raise _undefined("Cohen's kappa", [label_set[int(codes_a[0])]])
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    if method == "wald":
        half = z * _cohen_std(table, kappa)
        low, high, method_name = kappa - half, kappa + half, "wald"
    else:
        n_resamples = check_n_resamples(n_resamples)
        rng = np.random.default_rng(check_seed(seed))
        cells = np.flatnonzero(table.ravel())
        counts = multinomial_counts(rng, table.ravel()[cells].astype(np.int64), n_resamples)
        tables = np.zeros((n_resamples, k * k))
        tables[:, cells] = counts
        kappas = _kappa_of_tables(tables.reshape(n_resamples, k, k))[0]
        alpha = (1.0 - confidence) / 2.0
        low, high = (float(q) for q in np.nanquantile(kappas, [alpha, 1.0 - alpha]))
        method_name = "bootstrap-percentile"
    agreement = float(observed_arr[0])
    agree_low, agree_high = wilson_bounds(agreement, n, z)
    return KappaResult(
        kappa=kappa,
        low=max(-1.0, low),
        high=min(1.0, high),
        agreement=agreement,
        expected_agreement=float(expected_arr[0]),
        agreement_low=agree_low,
        agreement_high=agree_high,
        n=n,
        n_raters=2,
        confidence=confidence,
        method=method_name,
        labels=label_set,
    )


def ratings_to_table(
    ratings: Any, labels: Sequence[object] | None = None
) -> tuple[IntArray, tuple[object, ...]]:
    """Turn a (subjects x raters) array of labels into the (subjects x categories) count table of Fleiss' kappa.

    Returns:
        The count table and the label order of its columns.

    Raises:
        ValueError: not 2-D, missing ratings, labels outside ``labels``.
    """
    array = np.asarray(ratings)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"ratings must be a non-empty 2-D array (subjects x raters); got shape {array.shape}."
        )
    flat = _check_label_values(array.ravel(), "ratings")
    label_set = _sorted_labels(set(flat)) if labels is None else tuple(labels)
    index = {label: i for i, label in enumerate(label_set)}
    codes = _codes(flat, index, "ratings").reshape(array.shape)
    k = len(label_set)
    rows = np.repeat(np.arange(array.shape[0]), array.shape[1])
    table = np.bincount(rows * k + codes.ravel(), minlength=array.shape[0] * k).reshape(array.shape[0], k)
    return table.astype(np.int64), label_set


def _fleiss_from_totals(totals: FloatArray, n_raters: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Fleiss' kappa, mean observed and expected agreement from totals of ``[P_i, n_i1..n_ik, 1]``."""
    subjects = totals[:, -1]
    observed = totals[:, 0] / subjects
    shares = totals[:, 1:-1] / (subjects * n_raters)[:, None]
    expected = np.sum(shares**2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1.0 - expected)
    kappa[expected >= 1.0 - 1e-15] = np.nan
    return kappa, observed, expected


def fleiss_kappa(
    table: Any,
    *,
    labels: Sequence[object] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> KappaResult:
    """Fleiss' kappa for a fixed number of raters per subject (Fleiss 1971), with bootstrap intervals.

    Args:
        table: (subjects x categories) counts: ``table[i, j]`` raters put subject ``i`` in category ``j``;
            every row sums to the same number of raters (at least 2). Build it with :func:`ratings_to_table`.
        labels: optional names of the columns, stored in the result.
        confidence: nominal coverage.
        n_resamples, seed: percentile bootstrap over subjects, for kappa and for the mean agreement.

    Returns:
        :class:`KappaResult` (kappa equals statsmodels' ``fleiss_kappa(table, method="fleiss")``).

    Raises:
        ValueError: not a 2-D table of non-negative integers, unequal rater counts per subject, fewer than two
            raters, all ratings in one category (kappa undefined), bad settings.
    """
    confidence = check_confidence(confidence)
    n_resamples = check_n_resamples(n_resamples)
    seed = check_seed(seed)
    counts = np.asarray(table, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(
            f"table must be a non-empty 2-D array (subjects x categories); got shape {counts.shape}."
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError("table must hold non-negative integer counts (raters per subject and category).")
    per_subject = counts.sum(axis=1)
    n_raters = int(per_subject[0])
    if np.any(per_subject != n_raters):
        raise ValueError(
            "every subject must be rated by the same number of raters for Fleiss' kappa; row sums range from "
            f"{int(per_subject.min())} to {int(per_subject.max())}. Drop incompletely rated subjects."
        )
    if n_raters < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 raters per subject; got {n_raters}.")
    label_set = tuple(labels) if labels is not None else tuple(range(counts.shape[1]))
    if len(label_set) != counts.shape[1]:
        raise ValueError(f"labels has {len(label_set)} names for {counts.shape[1]} table columns.")
    agreement_i = (np.sum(counts**2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    features = np.column_stack([agreement_i, counts, np.ones(len(counts))])
    kappa_arr, observed_arr, expected_arr = _fleiss_from_totals(features.sum(axis=0)[None], n_raters)
    kappa = float(kappa_arr[0])
    if math.isnan(kappa):
        raise _undefined("Fleiss' kappa", [label_set[int(np.argmax(counts.sum(axis=0)))]])
    totals = resample_totals(features, n_resamples, np.random.default_rng(seed))
    kappas, observed_b, _ = _fleiss_from_totals(totals, n_raters)
    alpha = (1.0 - confidence) / 2.0
    low, high = (float(q) for q in np.nanquantile(kappas, [alpha, 1.0 - alpha]))
    agree_low, agree_high = (float(q) for q in np.quantile(observed_b, [alpha, 1.0 - alpha]))
    return KappaResult(
        kappa=kappa,
        low=max(-1.0, low),
        high=min(1.0, high),
        agreement=float(observed_arr[0]),
        expected_agreement=float(expected_arr[0]),
        agreement_low=agree_low,
        agreement_high=agree_high,
        n=len(counts),
        n_raters=n_raters,
        confidence=confidence,
        method="bootstrap-percentile",
        labels=label_set,
    )
