"""Power, sample size and minimum detectable effect for a paired difference in accuracy (McNemar's test).

Two checkpoints are scored on the same ``n`` items. Write ``p10`` for the share of items only the candidate
gets right, ``p01`` for the share only the baseline gets right. The quantities a user specifies are

* ``effect`` ``δ = p10 - p01``: the accuracy difference candidate - baseline;
* ``discordance`` ``ψ = p10 + p01``: the share of items on which the two checkpoints disagree.

``ψ`` matters as much as ``δ``: the same 2-point difference is easy to detect between near-identical
checkpoints (ψ = 0.05) and hard between unrelated ones (ψ = 0.4). Estimate it from an earlier comparison of
similar checkpoints (``(b + c) / n`` of a :class:`~eval_assets.stats.McNemarResult`); ``|δ| <= ψ <= 1`` always.

**Approximation.** Connor's (1987) unconditional normal approximation to the power of McNemar's test: the
statistic ``(b - c) / sqrt(b + c)`` is compared with ``z_{1-α/2}``; per item the difference has variance
``ψ`` under the null and ``ψ - δ²`` under the alternative, so

    power = Φ((|δ|√n - z·√ψ) / √(ψ - δ²))  (+ the far tail, for a two-sided test)
    n     = (z_{1-α/2}·√ψ + z_{power}·√(ψ - δ²))² / δ²

This is exactly statsmodels' :func:`statsmodels.stats.power.normal_power_het` with ``std_null=√ψ`` and
``std_alternative=√(ψ - δ²)`` (and ``normal_sample_size_one_tail`` for ``n``); the tests check that, check it
against the exact power of the test as :func:`~eval_assets.stats.mcnemar` runs it (within a few points of
power for n in the hundreds; the continuity correction makes the real test slightly more conservative), and
against statsmodels' ``NormalIndPower``/``TTestPower`` where the paired t-test corresponds (``δ² ≪ ψ``).
"""

from __future__ import annotations

import math
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
    if isinstance(effect, bool) or not isinstance(effect, (int, float)) or math.isnan(effect):
        raise ValueError(f"effect must be a number (accuracy difference, e.g. 0.02); got {effect!r}.")
    d = abs(float(effect))
    if d == 0.0:
        raise ValueError("effect is 0: no sample size can detect a zero difference; give the smallest that matters.")
    if d > psi:
        raise ValueError(
            f"|effect| ({d:g}) cannot exceed discordance ({psi:g}): the accuracy difference is at most the "
            "share of items on which the checkpoints disagree."
        )
    return d


def _power(n: float, d: float, psi: float, z: float, two_sided: bool) -> float:
    sd_null = math.sqrt(psi)
    sd_alt = math.sqrt(max(psi - d * d, 0.0))
    if sd_alt == 0.0:  # psi == |effect| == 1: every item favours the candidate
        return 1.0 if d * math.sqrt(n) > z * sd_null else 0.0
    upper = float(stats.norm.sf((z * sd_null - d * math.sqrt(n)) / sd_alt))
    lower = float(stats.norm.cdf((-z * sd_null - d * math.sqrt(n)) / sd_alt)) if two_sided else 0.0
    return upper + lower


def paired_power(
    n: int, effect: float, discordance: float, *, alpha: float = 0.05, alternative: Sidedness = "two-sided"
) -> float:
    """Power of McNemar's test on ``n`` paired items for a true accuracy difference ``effect``.

    Connor's (1987) normal approximation (see the module docstring). For ``alternative="one-sided"`` the
    effect is taken to lie in the tested direction.

    Raises:
        ValueError: ``n < 1``, ``effect == 0``, ``|effect| > discordance``, alpha or discordance out of range.
    """
    n = check_int(n, "n", minimum=1)
    psi, _, z = _check_design(discordance, alpha, alternative)
    d = _check_effect(effect, psi)
    return _power(n, d, psi, z, alternative == "two-sided")


def paired_sample_size(
    effect: float,
    discordance: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sidedness = "two-sided",
) -> int:
    """Number of paired items needed to detect an accuracy difference ``effect`` with the given power.

    Connor's (1987) formula ``n = (z_{1-α/2}·√ψ + z_{power}·√(ψ - δ²))² / δ²``, rounded up (``z_{1-α}`` for a
    one-sided test). Example: δ = 0.02 with ψ = 0.10 at α = 0.05 and 80% power needs 1,960 items.

    Raises:
        ValueError: ``effect == 0``, ``|effect| > discordance``, alpha, power or discordance out of range.
    """
    psi, alpha, z = _check_design(discordance, alpha, alternative)
    power = check_probability(power, "power")
    d = _check_effect(effect, psi)
    z_power = float(stats.norm.ppf(power))
    raw = (z * math.sqrt(psi) + z_power * math.sqrt(max(psi - d * d, 0.0))) ** 2 / d**2
    n = max(1, math.ceil(raw - 1e-9))
    while _power(n, d, psi, z, alternative == "two-sided") < power:  # guards rounding only
        n += 1
    return n


def minimum_detectable_effect(
    n: int,
    discordance: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Sidedness = "two-sided",
) -> float:
    """Smallest accuracy difference |δ| that ``n`` paired items detect with the given power.

    Solves Connor's power equation for ``δ`` in ``(0, ψ]``. Returns ``math.inf`` when even the largest
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
    if _power(n, psi, psi, z, two_sided) < power:
        return math.inf
    lo = psi * 1e-12
    root = optimize.brentq(lambda d: _power(n, d, psi, z, two_sided) - power, lo, psi, xtol=1e-12, rtol=1e-12)
    return float(root)
