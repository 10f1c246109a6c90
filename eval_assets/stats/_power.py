"""Power, sample size and minimum detectable effect for a paired difference in accuracy (McNemar's test).

Two checkpoints are scored on the same ``n`` items. Write ``p10`` for the share of items only the candidate
gets right, ``p01`` for the share only the baseline gets right. The quantities a user specifies are

* ``effect`` ``δ = p10 - p01``: the accuracy difference candidate - baseline;
* ``discordance`` ``ψ = p10 + p01``: the share of items on which the two checkpoints disagree.

``ψ`` matters as much as ``δ``: the same 2-point difference is easy to detect between near-identical
checkpoints (ψ = 0.05) and hard between unrelated ones (ψ = 0.4). Estimate it from an earlier comparison of
similar checkpoints (``(b + c) / n`` of a :class:`~eval_assets.stats.McNemarResult`); ``|δ| <= ψ <= 1`` always.

**Approximation.** Connor's (1987) unconditional normal approximation to the power of McNemar's test: the
statistic ``(b - c) / sqrt(b + c)`` is compared with ``z = z_{1-α/2}``; per item the difference has variance
``ψ`` under the null and ``ψ - δ²`` under the alternative. Because :func:`~eval_assets.stats.mcnemar` applies a
continuity correction (it rejects when ``|b - c| - 1 > z·sqrt(b + c)``), the default here includes it too,
which shifts the boundary by ``1/√n``:

    power = Φ((|δ|√n - z·√ψ - 1/√n) / √(ψ - δ²))  (+ the far tail, for a two-sided test)
    n     = (A + √(A² + 4|δ|))² / (4δ²),  A = z·√ψ + z_{power}·√(ψ - δ²)

With ``continuity_correction=False`` this is Connor's formula exactly, ``n = A² / δ²``, which equals
statsmodels' :func:`statsmodels.stats.power.normal_power_het` (``std_null=√ψ``, ``std_alternative=√(ψ - δ²)``)
and ``normal_sample_size_one_tail``; the tests check that identity, and check both versions against the exact
rejection probability of the test as ``mcnemar`` runs it. With the correction (default) the approximation is
within 1.5 points of power of the exact value once 50 or more discordant items are expected (``n·ψ``), within
one point from about 90; with fewer (where ``mcnemar`` switches to the exact binomial test) it is conservative:
at ~20 expected discordant items it says 80% where the exact power is about 85%, so sample sizes err on the
large side. Without the correction it overstates power by 2-3 points at 80%. Where ``δ² ≪ ψ`` both reduce to
the one-sample z-test on ``d ∈ {-1, 0, 1}`` (statsmodels' ``NormalIndPower(ratio=0)``) and to the paired
t-test (``TTestPower``), also checked.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

from scipy import optimize, stats

from ._validation import check_choice, check_int, check_probability

Sidedness = Literal["two-sided", "one-sided"]


def _check_design(discordance: float, alpha: float, alternative: str) -> tuple[float, float, float]:
    psi = check_probability(discordance, "discordance", open_high=False)
    alpha = check_probability(alpha, "alpha")
    check_choice(alternative, "alternative", ("two-sided", "one-sided"))
    z = float(stats.norm.isf(alpha / 2.0 if alternative == "two-sided" else alpha))
    return psi, alpha, z


def _check_effect(effect: float, psi: float) -> float:
    if isinstance(effect, bool) or not isinstance(effect, numbers.Real) or math.isnan(effect):
        raise ValueError(f"effect must be a number (accuracy difference, e.g. 0.02); got {effect!r}.")
    d = abs(float(effect))
    if d == 0.0:
        raise ValueError(
            "effect is 0: no sample size can detect a zero difference; give the smallest that matters."
        )
    if d > psi:
        raise ValueError(
            f"|effect| ({d:g}) cannot exceed discordance ({psi:g}): the accuracy difference is at most the "
            "share of items on which the checkpoints disagree."
        )
    return d


def _power(n: float, d: float, psi: float, z: float, two_sided: bool, correction: bool) -> float:
    sd_null = math.sqrt(psi)
    sd_alt = math.sqrt(max(psi - d * d, 0.0))
    shift = 1.0 / math.sqrt(n) if correction else 0.0
    if sd_alt == 0.0:  # psi == |effect| == 1: every item favours the candidate
        return 1.0 if d * math.sqrt(n) > z * sd_null + shift else 0.0
    upper = float(stats.norm.sf((z * sd_null + shift - d * math.sqrt(n)) / sd_alt))
    lower = float(stats.norm.cdf((-z * sd_null - shift - d * math.sqrt(n)) / sd_alt)) if two_sided else 0.0
    return upper + lower


def paired_power(
    n: int,
    effect: float,
    discordance: float,
    *,
    alpha: float = 0.05,
    alternative: Sidedness = "two-sided",
    continuity_correction: bool = True,
) -> float:
    """Power of McNemar's test on ``n`` paired items for a true accuracy difference ``effect``.

    Connor's (1987) normal approximation, by default with the continuity correction that :func:`mcnemar`
    applies (see the module docstring). For ``alternative="one-sided"`` the effect is taken to lie in the
    tested direction.

    Raises:
        ValueError: ``n < 1``, ``effect == 0``, ``|effect| > discordance``, alpha or discordance out of range.
    """
    n = check_int(n, "n", minimum=1)
    psi, _, z = _check_design(discordance, alpha, alternative)
    d = _check_effect(effect, psi)
    return _power(n, d, psi, z, alternative == "two-sided", continuity_correction)


def paired_sample_size(
    effect: float,
    discordance: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sidedness = "two-sided",
    continuity_correction: bool = True,
) -> int:
    """Number of paired items needed to detect an accuracy difference ``effect`` with the given power.

    ``n = (A + √(A² + 4|δ|))² / (4δ²)`` with ``A = z_{1-α/2}·√ψ + z_{power}·√(ψ - δ²)`` (``z_{1-α}`` for a
    one-sided test), without the continuity correction Connor's ``A² / δ²``; returned as the smallest ``n``
    for which :func:`paired_power` reaches ``power`` (for a two-sided test the far tail can make that one less
    than the rounded-up formula). Example: δ = 0.02
    with ψ = 0.10 at α = 0.05 and 80% power needs 2,059 items (1,960 without the correction).

    Raises:
        ValueError: ``effect == 0``, ``|effect| > discordance``, alpha, power or discordance out of range.
    """
    psi, alpha, z = _check_design(discordance, alpha, alternative)
    power = check_probability(power, "power")
    d = _check_effect(effect, psi)
    z_power = float(stats.norm.ppf(power))
    a = z * math.sqrt(psi) + z_power * math.sqrt(max(psi - d * d, 0.0))
    c = 4.0 * d if continuity_correction else 0.0
    raw = (a + math.sqrt(a * a + c)) ** 2 / (4.0 * d * d) if a > 0 else 1.0
    n = max(1, math.ceil(raw - 1e-9))

    def enough(m: int) -> bool:
        return _power(m, d, psi, z, alternative == "two-sided", continuity_correction) >= power

    # The closed form ignores the far tail of a two-sided test (as statsmodels does); step to the smallest n
    # that reaches the power according to paired_power, so the two functions agree exactly.
    while n > 1 and enough(n - 1):
        n -= 1
    while not enough(n):
        n += 1
    return n


def minimum_detectable_effect(
    n: int,
    discordance: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sidedness = "two-sided",
    continuity_correction: bool = True,
) -> float:
    """Smallest accuracy difference |δ| that ``n`` paired items detect with the given power.

    Solves the power equation of :func:`paired_power` for ``δ`` in ``(0, ψ]``. Returns ``math.inf`` when even the largest
    possible difference (``δ = ψ``: every disagreement favours one checkpoint) is not detectable — the gate's
    cue to say "too few items to decide".

    Raises:
        ValueError: ``n < 1``, alpha/power/discordance out of range, ``power <= alpha``.
    """
    n = check_int(n, "n", minimum=1)
    psi, alpha, z = _check_design(discordance, alpha, alternative)
    power = check_probability(power, "power")
    if power <= alpha:
        raise ValueError(f"power ({power}) must exceed alpha ({alpha}); a test has power alpha at no effect.")
    two_sided = alternative == "two-sided"
    if _power(n, psi, psi, z, two_sided, continuity_correction) < power:
        return math.inf

    def gap(d: float) -> float:
        return _power(n, d, psi, z, two_sided, continuity_correction) - power

    root = optimize.brentq(gap, psi * 1e-12, psi, xtol=1e-14, rtol=1e-12)
    return float(root)
