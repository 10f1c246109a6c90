"""Wilson and Clopper-Pearson agree with statsmodels' proportion_confint; clustered Wilson behaves sensibly."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from eval_assets import stats


def _random_cases(seed: int, count: int) -> list[tuple[int, int, float]]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        n = int(rng.integers(1, 2_000))
        successes = int(rng.binomial(n, rng.uniform(0, 1)))
        confidence = float(rng.choice([0.8, 0.9, 0.95, 0.99, 0.999]))
        cases.append((successes, n, confidence))
    # the edges: 0/n, n/n, 1 trial
    return [*cases, (0, 1, 0.95), (1, 1, 0.95), (0, 50, 0.95), (50, 50, 0.9), (1, 2, 0.99)]


@pytest.mark.parametrize(("ours", "sm_method"), [("wilson", "wilson"), ("beta", "beta")])
def test_matches_statsmodels_proportion_confint(ours: str, sm_method: str) -> None:
    for successes, n, confidence in _random_cases(seed=len(ours), count=300):
        got = stats.proportion_interval(successes, n, confidence, method=ours)
        low, high = proportion_confint(successes, n, alpha=1 - confidence, method=sm_method)
        low, high = float(np.nan_to_num(low, nan=0.0)), float(np.nan_to_num(high, nan=1.0))
        assert got.low == pytest.approx(max(low, 0.0), abs=1e-12), (successes, n, confidence)
        assert got.high == pytest.approx(min(high, 1.0), abs=1e-12), (successes, n, confidence)
        assert got.estimate == successes / n and got.n == n and got.confidence == confidence


def test_clopper_pearson_alias_and_wrappers_agree() -> None:
    assert stats.proportion_interval(7, 40, method="clopper-pearson") == stats.clopper_pearson_interval(7, 40)
    assert stats.proportion_interval(7, 40) == stats.wilson_interval(7, 40)


@pytest.mark.parametrize("n", [1, 5, 20, 1000])
def test_all_correct_and_all_wrong_keep_informative_intervals(n: int) -> None:
    """Unlike the bootstrap, 0/n and n/n give an interval of positive width touching the boundary."""
    for interval in (stats.wilson_interval, stats.clopper_pearson_interval):
        wrong, right = interval(0, n), interval(n, n)
        assert wrong.low == 0.0 and 0.0 < wrong.high < 1.0
        assert right.high == 1.0 and 0.0 < right.low < 1.0
        assert wrong.high == pytest.approx(1.0 - right.low, abs=1e-12)
    # rule of three style sanity: Wilson upper bound for 0/n is z²/(n+z²)
    z2 = 1.959963984540054**2
    assert stats.wilson_interval(0, n).high == pytest.approx(z2 / (n + z2), rel=1e-12)


def test_fractional_successes_are_allowed_for_wilson_only() -> None:
    assert stats.wilson_interval(10.5, 20).estimate == 0.525
    with pytest.raises(ValueError, match="integer"):
        stats.clopper_pearson_interval(10.5, 20)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method='wilson'"):
        stats.proportion_interval(10.5, 20, method="beta")
    with pytest.raises(ValueError, match="cannot exceed n"):
        stats.wilson_interval(21, 20)
    with pytest.raises(ValueError, match=">= 0"):
        stats.wilson_interval(-1, 20)


def test_clopper_pearson_contains_wilson_for_typical_counts() -> None:
    for successes, n in [(3, 10), (50, 100), (990, 1000)]:
        wilson, cp = stats.wilson_interval(successes, n), stats.clopper_pearson_interval(successes, n)
        assert cp.low <= wilson.low and wilson.high <= cp.high


def test_clustered_wilson_equals_plain_wilson_for_independent_binary_items_up_to_g_over_g_minus_1() -> None:
    rng = np.random.default_rng(0)
    values = (rng.random(500) < 0.3).astype(float)
    clustered = stats.clustered_wilson_interval(values, np.arange(500))
    plain = stats.wilson_interval(int(values.sum()), 500)
    # n_eff = n - 1 for singleton clusters (the G/(G-1) small-sample factor)
    assert clustered.width == pytest.approx(plain.width, rel=2e-3)
    assert clustered.n == 500 and clustered.n_clusters == 500 and clustered.method == "wilson-clustered"


def test_clustered_wilson_widens_with_within_cluster_correlation() -> None:
    rng = np.random.default_rng(1)
    prompt_wins = (rng.random(200) < 0.6).astype(float)
    both_orders_agree = np.repeat(
        prompt_wins, 2
    )  # perfectly correlated orders: 200 independent units, not 400
    clusters = np.repeat(np.arange(200), 2)
    clustered = stats.clustered_wilson_interval(both_orders_agree, clusters)
    assert clustered.width == pytest.approx(stats.wilson_interval(prompt_wins.sum(), 200).width, rel=2e-2)
    assert clustered.width > stats.wilson_interval(both_orders_agree.sum(), 400).width * 1.3


def test_clustered_wilson_edges() -> None:
    all_wins = stats.clustered_wilson_interval([1.0] * 6, ["a", "a", "b", "b", "c", "c"])
    assert all_wins.high == 1.0 and all_wins.low == pytest.approx(
        stats.wilson_interval(3, 3).low
    )  # n_eff = G
    one_cluster = stats.clustered_wilson_interval([1.0, 0.0, 0.5], ["p", "p", "p"])
    assert one_cluster.estimate == 0.5 and one_cluster.width == pytest.approx(
        stats.wilson_interval(0.5, 1).width
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.clustered_wilson_interval([1.0, 2.0], ["a", "b"])


def test_mean_rate_wilson_is_wilson_for_one_sample_per_item() -> None:
    rates = np.array([1.0] * 37 + [0.0] * 63)
    ours = stats.mean_rate_wilson_interval(rates, np.ones(100))
    low, high = proportion_confint(37, 100, alpha=0.05, method="wilson")
    # the variance carries the n/(n-1) small-sample factor: Wilson's interval on 99 effective trials
    assert (ours.low, ours.high) == (pytest.approx(low, rel=0.01), pytest.approx(high, rel=0.01))
    assert ours.high - ours.low > high - low


def test_mean_rate_wilson_equals_clustered_wilson_over_samples_for_equal_sizes() -> None:
    rng = np.random.default_rng(5)
    passed = rng.random((40, 4)) < rng.beta(0.5, 1.5, size=(40, 1))
    ours = stats.mean_rate_wilson_interval(passed.mean(axis=1), np.full(40, 4))
    clustered = stats.clustered_wilson_interval(passed.ravel().astype(float), np.repeat(np.arange(40), 4))
    assert (ours.estimate, ours.low, ours.high) == pytest.approx(
        (clustered.estimate, clustered.low, clustered.high)
    )


def test_mean_rate_wilson_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        stats.mean_rate_wilson_interval([0.5, 0.5], [2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.mean_rate_wilson_interval([1.5], [2])
    with pytest.raises(ValueError, match="sizes"):
        stats.mean_rate_wilson_interval([0.5], [0])
