"""Paired power and sample size: identical to statsmodels' heteroscedastic normal power, close to the exact
power of McNemar's test as we run it, and consistent with NormalIndPower/TTestPower where those correspond."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import (
    NormalIndPower,
    TTestPower,
    normal_power_het,
    normal_sample_size_one_tail,
)

from eval_assets import stats
from eval_assets.stats._mcnemar import EXACT_BELOW


def _random_designs(seed: int, count: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    designs = []
    for _ in range(count):
        psi = float(rng.uniform(0.02, 0.6))
        effect = float(rng.uniform(0.05, 0.9) * psi)
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        designs.append((effect, psi, alpha))
    return designs


@pytest.mark.parametrize(("ours", "theirs"), [("two-sided", "two-sided"), ("one-sided", "larger")])
def test_power_equals_statsmodels_normal_power_het(ours: str, theirs: str) -> None:
    for effect, psi, alpha in _random_designs(1, 200):
        n = int(np.random.default_rng(int(psi * 1e6)).integers(10, 5_000))
        got = stats.paired_power(n, effect, psi, alpha=alpha, alternative=ours, continuity_correction=False)
        ref = normal_power_het(
            effect,
            n,
            alpha,
            std_null=math.sqrt(psi),
            std_alternative=math.sqrt(psi - effect**2),
            alternative=theirs,
        )
        assert got == pytest.approx(float(ref), rel=1e-10, abs=1e-14)
        assert (
            stats.paired_power(n, -effect, psi, alpha=alpha, alternative=ours, continuity_correction=False)
            == got
        )
        corrected = stats.paired_power(n, effect, psi, alpha=alpha, alternative=ours)
        assert corrected <= got  # the correction only ever makes the test more conservative


@pytest.mark.parametrize("alternative", ["two-sided", "one-sided"])
def test_sample_size_equals_statsmodels_one_tail_formula(alternative: str) -> None:
    for effect, psi, alpha in _random_designs(2, 200):
        power = 0.8 if effect < psi / 2 else 0.9
        got = stats.paired_sample_size(
            effect, psi, alpha=alpha, power=power, alternative=alternative, continuity_correction=False
        )
        tail_alpha = alpha / 2 if alternative == "two-sided" else alpha
        ref = normal_sample_size_one_tail(
            effect, power, tail_alpha, std_null=math.sqrt(psi), std_alternative=math.sqrt(psi - effect**2)
        )
        formula = max(1, math.ceil(float(ref) - 1e-9))
        if alternative == "one-sided":
            assert got == formula, (effect, psi, alpha, got, ref)
        else:  # smallest n with enough two-sided power: the far tail can save one item
            assert formula - 1 <= got <= formula, (effect, psi, alpha, got, ref)
        corrected = stats.paired_sample_size(effect, psi, alpha=alpha, power=power, alternative=alternative)
        assert corrected >= got
        assert stats.paired_power(corrected, effect, psi, alpha=alpha, alternative=alternative) >= power
        if corrected > 1:
            assert (
                stats.paired_power(corrected - 1, effect, psi, alpha=alpha, alternative=alternative) < power
            )


def test_close_to_normal_and_t_test_power_when_the_effect_is_small_relative_to_discordance() -> None:
    """With δ² ≪ ψ both variances are ψ, and McNemar's z is the one-sample z-test on d ∈ {-1, 0, 1}
    (NormalIndPower with ratio=0) or, with the variance estimated, the paired t-test (TTestPower)."""
    for effect, psi in [(0.01, 0.2), (0.02, 0.3), (0.005, 0.1)]:
        ours = stats.paired_sample_size(effect, psi, continuity_correction=False)
        normal = NormalIndPower().solve_power(
            effect_size=effect / math.sqrt(psi), alpha=0.05, power=0.8, ratio=0
        )
        t_test = TTestPower().solve_power(effect_size=effect / math.sqrt(psi), alpha=0.05, power=0.8)
        assert ours == pytest.approx(normal, rel=0.01)
        assert ours == pytest.approx(t_test, rel=0.01)


def _exact_mcnemar_power(n: int, p10: float, p01: float, alpha: float) -> float:
    """P(reject) of the test as mcnemar() runs it: exact below 25 discordant items, corrected chi2 above."""
    psi = p10 + p01
    total = 0.0
    for discordant in range(1, n + 1):
        weight = sps.binom.pmf(discordant, n, psi)
        if weight < 1e-15:
            continue
        b = np.arange(discordant + 1)
        c = discordant - b
        if discordant < EXACT_BELOW:
            p_value = np.minimum(1.0, 2 * sps.binom.cdf(np.minimum(b, c), discordant, 0.5))
        else:
            p_value = sps.chi2.sf(np.maximum(np.abs(b - c) - 1, 0) ** 2 / discordant, 1)
        total += weight * float(sps.binom.pmf(b, discordant, p10 / psi) @ (p_value <= alpha))
    return total


def test_exact_power_helper_uses_the_same_p_values_as_mcnemar() -> None:
    for b, c in [(3, 10), (12, 12), (40, 20), (0, 30)]:
        d = b + c
        expected = stats.mcnemar_from_counts(b, c).p_value
        if d < EXACT_BELOW:
            helper = min(1.0, 2 * sps.binom.cdf(min(b, c), d, 0.5))
        else:
            helper = sps.chi2.sf(max(abs(b - c) - 1, 0) ** 2 / d, 1)
        assert helper == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("n", "psi"), [(300, 0.3), (600, 0.2), (1_500, 0.1), (4_000, 0.02)])
def test_corrected_approximation_matches_the_exact_power_of_the_test(n: int, psi: float) -> None:
    """With >= 50 expected discordant items the continuity-corrected approximation is within a point of the
    exact rejection probability; the uncorrected one overstates it."""
    mde = stats.minimum_detectable_effect(n, psi)
    for effect in (0.5 * mde, mde, 1.3 * mde):
        exact = _exact_mcnemar_power(n, (psi + effect) / 2, (psi - effect) / 2, 0.05)
        assert stats.paired_power(n, effect, psi) == pytest.approx(exact, abs=0.01), (n, psi, effect, exact)
    exact_at_mde = _exact_mcnemar_power(n, (psi + mde) / 2, (psi - mde) / 2, 0.05)
    uncorrected = stats.paired_power(n, mde, psi, continuity_correction=False)
    assert 0.01 < uncorrected - exact_at_mde < 0.04


@pytest.mark.parametrize(("n", "psi"), [(100, 0.2), (200, 0.1)])
def test_corrected_approximation_is_conservative_when_few_items_disagree(n: int, psi: float) -> None:
    """~20 expected discordant items: mcnemar() mostly runs the exact test, which has a little more power than
    the corrected normal approximation says (80% said, ~85% true), so sample sizes err on the safe side."""
    mde = stats.minimum_detectable_effect(n, psi)
    for effect in (0.5 * mde, mde, 1.3 * mde):
        exact = _exact_mcnemar_power(n, (psi + effect) / 2, (psi - effect) / 2, 0.05)
        approx = stats.paired_power(n, effect, psi)
        assert exact - 0.05 <= approx <= exact + 0.005, (n, psi, effect, approx, exact)


def test_minimum_detectable_effect_round_trips_with_power_and_sample_size() -> None:
    for n, psi in [(100, 0.2), (500, 0.1), (2_000, 0.05), (10_000, 0.3)]:
        for alternative in ("two-sided", "one-sided"):
            mde = stats.minimum_detectable_effect(n, psi, alternative=alternative)
            assert 0 < mde <= psi
            assert stats.paired_power(n, mde, psi, alternative=alternative) == pytest.approx(0.8, abs=1e-9)
            assert stats.paired_sample_size(mde, psi, alternative=alternative) in (n, n + 1)


def test_minimum_detectable_effect_shrinks_with_n_and_is_infinite_when_hopeless() -> None:
    mdes = [stats.minimum_detectable_effect(n, 0.1) for n in (50, 200, 800, 3_200)]
    assert mdes[0] > mdes[1] > mdes[2] > mdes[3]
    assert mdes[1] / mdes[3] == pytest.approx(4.0, rel=0.1)  # ~1/sqrt(n)
    assert (
        stats.minimum_detectable_effect(10, 0.1) == math.inf
    )  # ~1 discordant item: "too few items to decide"
    assert stats.minimum_detectable_effect(5, 1.0) == math.inf


def test_documented_example_and_edges() -> None:
    assert stats.paired_sample_size(0.02, 0.10) == 2_059
    assert stats.paired_sample_size(0.02, 0.10, continuity_correction=False) == 1_960
    # every item favours the candidate: mcnemar() needs 6 such items (exact p = 2 / 2**6 < 0.05), and says so
    assert stats.paired_sample_size(1.0, 1.0) == 6
    assert stats.mcnemar_from_counts(6, 0).p_value < 0.05 < stats.mcnemar_from_counts(5, 0).p_value
    assert stats.paired_power(5, 1.0, 1.0) == 0.0 and stats.paired_power(6, 1.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="zero difference"):
        stats.paired_sample_size(0.0, 0.1)
    with pytest.raises(ValueError, match="cannot exceed discordance"):
        stats.paired_sample_size(0.2, 0.1)
    with pytest.raises(ValueError, match="discordance"):
        stats.paired_sample_size(0.02, 0.0)
    with pytest.raises(ValueError, match="power"):
        stats.paired_sample_size(0.02, 0.1, power=1.0)
    with pytest.raises(ValueError, match="must exceed alpha"):
        stats.minimum_detectable_effect(100, 0.1, power=0.05)
    with pytest.raises(ValueError, match="alternative"):
        stats.paired_power(100, 0.02, 0.1, alternative="greater")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n must be at least 1"):
        stats.paired_power(0, 0.02, 0.1)
