"""Confidence interval for the difference of two proportions measured on the same items (paired 0/1 outcomes).

The paired 2x2 table of a candidate against a baseline on ``n`` shared items::

                      baseline right   baseline wrong
    candidate right         a                b
    candidate wrong         c                d

The difference in accuracy (candidate - baseline) is ``(b - c) / n``. Only the discordant items ``b`` and ``c``
move the estimate, so with none of them a bootstrap (or Wald) interval has zero width at 0, which would
"prove" that the two checkpoints are equivalent from, say, 0/8 against 0/8. Newcombe's hybrid score interval
(1998, method 10) keeps the uncertainty of each marginal accuracy and stays informative there.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from scipy import stats

from ._proportions import wilson_bounds
from ._types import Interval
from ._validation import as_binary_array, check_choice, check_confidence, check_int, check_same_length

PairedProportionMethod = Literal["newcombe", "wald"]
_METHODS = ("newcombe", "wald")
_LABELS = {"newcombe": "newcombe-paired-score", "wald": "wald-paired"}


def _phi(a: int, b: int, c: int, d: int) -> float:
    """Newcombe's (1998) estimate of the correlation between the two marginal proportions.

    The phi coefficient ``(ad - bc) / sqrt(efgh)`` of the table (``e, f, g, h`` its row and column totals), with
    a positive numerator shrunk by ``n / 2`` and floored at 0; 0 when a row or column total is 0 (phi undefined).
    """
    n = a + b + c + d
    margins = (a + b) * (c + d) * (a + c) * (b + d)  # Python ints: no overflow
    if margins == 0:
        return 0.0
    numerator = float(a * d - b * c)
    if numerator > n / 2:
        numerator -= n / 2
    elif numerator > 0:
        numerator = 0.0
    return numerator / math.sqrt(margins)


def _newcombe_limits(a: int, b: int, c: int, d: int, z: float) -> tuple[float, float]:
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_bounds(p1, n, z)
    l2, u2 = wilson_bounds(p2, n, z)
    phi = _phi(a, b, c, d)
    theta = p1 - p2
    # The lower limit of p1 - p2 pairs p1's lower margin with p2's upper one, and vice versa.
    down1, up1, down2, up2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    delta = math.sqrt(max(down1**2 - 2.0 * phi * down1 * up2 + up2**2, 0.0))
    epsilon = math.sqrt(max(up1**2 - 2.0 * phi * up1 * down2 + down2**2, 0.0))
    return max(-1.0, theta - delta), min(1.0, theta + epsilon)


def _wald_limits(b: int, c: int, n: int, z: float) -> tuple[float, float]:
    theta = (b - c) / n
    half = z * math.sqrt(max((b + c) - (b - c) ** 2 / n, 0.0)) / n
    return max(-1.0, theta - half), min(1.0, theta + half)


def paired_proportion_difference_interval_from_counts(
    a: int,
    b: int,
    c: int,
    d: int,
    *,
    confidence: float = 0.95,
    method: PairedProportionMethod = "newcombe",
) -> Interval:
    """Interval for the accuracy difference candidate - baseline from the paired 2x2 counts.

    Args:
        a: items both checkpoints get right.
        b: items only the candidate gets right.
        c: items only the baseline gets right.
        d: items both get wrong.
        confidence: nominal two-sided coverage.
        method: ``"newcombe"`` (default): Newcombe's hybrid score interval (Stat Med 1998; 17:2635, method 10).
            The Wilson intervals ``[l1, u1]`` of the candidate's accuracy ``p1 = (a + b) / n`` and ``[l2, u2]`` of
            the baseline's ``p2 = (a + c) / n`` are combined, allowing for their correlation ``phi``:
            ``low = p1 - p2 - sqrt((p1 - l1)**2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)**2)`` and
            ``high = p1 - p2 + sqrt((u1 - p1)**2 - 2 phi (u1 - p1)(p2 - l2) + (p2 - l2)**2)``, where
            ``phi = C / sqrt((a+b)(c+d)(a+c)(b+d))`` with ``C = ad - bc - n/2`` if ``ad - bc > n/2``, ``0`` if
            ``0 <= ad - bc <= n/2`` and ``ad - bc`` if negative; ``phi = 0`` when a row or column total is 0.
            ``"wald"``: ``(b - c)/n ± z sqrt(b + c - (b - c)**2/n) / n``, clipped to [-1, 1]; like the bootstrap
            it has zero width when ``b + c = 0`` and under-covers at small ``n`` (for comparison only).

    Returns:
        :class:`Interval` with ``estimate = (b - c) / n``, ``n = a + b + c + d`` and method
        ``"newcombe-paired-score"`` or ``"wald-paired"``.

    Raises:
        ValueError: negative or non-integer counts, all counts 0, unknown ``method``, confidence outside (0, 1).

    With no discordant items the Newcombe interval is symmetric about 0 with half-width about the Wilson margin of
    the common accuracy (0/8 against 0/8: [-0.324, 0.324]); it is never zero-width. Swapping candidate and
    baseline negates it.

    Coverage (see the tests): 95 ± 1.5% in simulation at n = 200 with 20% or 30% discordant items. At 10-30
    items, computed exactly over a grid of cell probabilities, it averages 95.4-95.5%; where at most half of
    the items are discordant it is mildly conservative (average 96-97%, minimum 92.9% at n = 10 and 94% at
    n = 20-30), and with few discordant items it is close to 100%. The worst points (88% at n = 10, 91% at
    n = 20) have nearly every item discordant. Wald on the same grid averages 88-93%, with minima down to 46%.
    """
    a = check_int(a, "a", minimum=0)
    b = check_int(b, "b", minimum=0)
    c = check_int(c, "c", minimum=0)
    d = check_int(d, "d", minimum=0)
    confidence = check_confidence(confidence)
    check_choice(method, "method", _METHODS)
    n = a + b + c + d
    if n == 0:
        raise ValueError("a + b + c + d is 0: there are no paired items to compare. Check the upstream join.")
    z = float(stats.norm.isf((1.0 - confidence) / 2.0))
    low, high = _newcombe_limits(a, b, c, d, z) if method == "newcombe" else _wald_limits(b, c, n, z)
    return Interval((b - c) / n, low, high, n, confidence, _LABELS[method])


def paired_proportion_difference_interval(
    candidate_correct: Any,
    baseline_correct: Any,
    *,
    confidence: float = 0.95,
    method: PairedProportionMethod = "newcombe",
) -> Interval:
    """Interval for ``mean(candidate_correct) - mean(baseline_correct)`` from 0/1 outcomes on the same items.

    Counts the paired 2x2 table and calls :func:`paired_proportion_difference_interval_from_counts` (see there
    for the method, its formula and its coverage). Prefer it to :func:`paired_bootstrap_diff` for 0/1 outcomes:
    it stays informative when there are few or no discordant items.

    Args:
        candidate_correct, baseline_correct: per-item 0/1 (or bool) correctness, aligned item by item.
        confidence, method: as in :func:`paired_proportion_difference_interval_from_counts`.

    Raises:
        ValueError: empty, non-binary, NaN/null or length-mismatched inputs; bad ``confidence`` or ``method``.
    """
    cand = as_binary_array(candidate_correct, "candidate_correct")
    base = as_binary_array(baseline_correct, "baseline_correct")
    check_same_length(candidate_correct=cand, baseline_correct=base)
    a = int((cand & base).sum())
    b = int((cand & ~base).sum())
    c = int((~cand & base).sum())
    d = int((~cand & ~base).sum())
    return paired_proportion_difference_interval_from_counts(a, b, c, d, confidence=confidence, method=method)
