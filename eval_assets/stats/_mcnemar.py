"""McNemar's test for two checkpoints scored on the same items.

Only discordant items carry information: ``b`` items only the candidate gets right, ``c`` items only the
baseline gets right. Under the null hypothesis (equal accuracy) ``b ~ Binomial(b + c, 1/2)``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from scipy import stats

from ._types import McNemarResult
from ._validation import as_binary_array, check_choice, check_int, check_same_length

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")

#: Below this many discordant items the exact binomial test is used, at or above it the chi-square.
EXACT_BELOW = 25


def mcnemar_from_counts(
    b: int,
    c: int,
    *,
    n: int | None = None,
    exact: bool | None = None,
    alternative: Alternative = "two-sided",
) -> McNemarResult:
    """McNemar's test from the discordant counts.

    Args:
        b: items the candidate gets right and the baseline gets wrong.
        c: items the candidate gets wrong and the baseline gets right.
        n: total paired items (for the record and :attr:`McNemarResult.difference`); defaults to ``b + c``.
        exact: ``None`` (default) picks the exact binomial test when ``b + c < 25`` and the chi-square with
            continuity correction otherwise; ``True``/``False`` force one.
        alternative: ``"two-sided"`` (default); ``"greater"``: the candidate is better (``b > c``);
            ``"less"``: the candidate is worse (``b < c``) — the question a no-regression gate asks.

    The two-sided exact p-value is ``min(1, 2 * P(X <= min(b, c)))`` and the two-sided chi-square is
    ``max(|b - c| - 1, 0)**2 / (b + c)``, as in statsmodels (which does not clamp at 0 when ``b == c``; the
    clamp only matters there and gives the right answer, p = 1). One-sided versions use ``P(X >= b)`` /
    ``P(X <= b)`` exactly, or the signed continuity-corrected normal deviate.

    Raises:
        ValueError: negative or non-integer counts, ``n < b + c``, unknown ``alternative``.
    """
    b = check_int(b, "b", minimum=0)
    c = check_int(c, "c", minimum=0)
    check_choice(alternative, "alternative", _ALTERNATIVES)
    discordant = b + c
    n_total = discordant if n is None else check_int(n, "n", minimum=0)
    if n_total < discordant:
        raise ValueError(f"n ({n_total}) cannot be smaller than the discordant count b + c ({discordant}).")
    use_exact = discordant < EXACT_BELOW if exact is None else bool(exact)
    if discordant == 0:
        return McNemarResult(
            b, c, 0.0, 1.0, "exact-binomial" if use_exact else "chi2-continuity", n_total, alternative
        )
    if use_exact:
        if alternative == "two-sided":
            statistic = float(min(b, c))
            p_value = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), discordant, 0.5)))
        else:
            statistic = float(b)
            p_value = float(
                stats.binom.sf(b - 1, discordant, 0.5)
                if alternative == "greater"
                else stats.binom.cdf(b, discordant, 0.5)
            )
        return McNemarResult(b, c, statistic, p_value, "exact-binomial", n_total, alternative)
    corrected = max(abs(b - c) - 1, 0)
    statistic = corrected**2 / discordant
    if alternative == "two-sided":
        p_value = float(stats.chi2.sf(statistic, 1))
    else:
        z = math.copysign(corrected, b - c) / math.sqrt(discordant)
        p_value = float(stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z))
    return McNemarResult(b, c, float(statistic), p_value, "chi2-continuity", n_total, alternative)


def mcnemar(
    candidate_correct: Any,
    baseline_correct: Any,
    *,
    exact: bool | None = None,
    alternative: Alternative = "two-sided",
) -> McNemarResult:
    """McNemar's test from per-item 0/1 (or bool) correctness of two checkpoints on the same items.

    See :func:`mcnemar_from_counts` for the test itself; this counts ``b`` and ``c`` first.

    Raises:
        ValueError: empty, non-binary, NaN or length-mismatched inputs.
    """
    cand = as_binary_array(candidate_correct, "candidate_correct")
    base = as_binary_array(baseline_correct, "baseline_correct")
    n = check_same_length(candidate_correct=cand, baseline_correct=base)
    b = int((cand & ~base).sum())
    c = int((~cand & base).sum())
    return mcnemar_from_counts(b, c, n=n, exact=exact, alternative=alternative)
