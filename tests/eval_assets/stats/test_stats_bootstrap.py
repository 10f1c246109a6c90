"""Bootstrap intervals agree with scipy.stats.bootstrap within Monte Carlo tolerance; the fast paths are exact."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from eval_assets import stats
from eval_assets.stats import _bootstrap

B = 10_000


def _mc_tolerance(
    values: np.ndarray, *, lattice: float = 0.0, n_resamples: int = B, sds: float = 5.0
) -> float:
    """Allowed gap between two independent bootstrap end points with ``n_resamples`` resamples each.

    An end point at the 2.5% quantile has Monte Carlo sd ≈ 2.7 σ_boot / √B (σ_boot the sd of the bootstrap
    distribution); the gap between two independent runs √2 times that. We allow ``sds`` such sds, plus one
    lattice step for discrete data (quantiles of a bootstrap distribution on a 1/n grid move in whole steps).
    """
    sigma_boot = values.std() / np.sqrt(len(values))
    return sds * np.sqrt(2) * 2.7 * sigma_boot / np.sqrt(n_resamples) + lattice


def _scipy_ci(
    data: tuple[np.ndarray, ...], method: str, seed: int, paired: bool = False, n_resamples: int = B
) -> tuple[float, float]:
    if paired:
        result = sps.bootstrap(
            data,
            lambda c, b, axis: c.mean(axis) - b.mean(axis),
            paired=True,
            method=method,
            n_resamples=n_resamples,
            rng=seed,
        )
    else:
        result = sps.bootstrap(data, np.mean, method=method, n_resamples=n_resamples, rng=seed)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("seed", range(8))
def test_binary_fast_path_matches_scipy(method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 400))
    values = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(float)
    ours = stats.bootstrap_mean_ci(values, method=method, n_resamples=B, seed=seed)
    low, high = _scipy_ci((values,), method, seed + 100)
    tol = _mc_tolerance(values, lattice=1.0 / n)
    assert ours.estimate == values.mean()
    assert abs(ours.low - low) <= tol and abs(ours.high - high) <= tol, (ours, low, high, tol)


@pytest.mark.parametrize("seed", range(6))
def test_real_valued_path_matches_scipy_on_skewed_data(seed: int) -> None:
    """Skewed data, many resamples: the tolerance is well below the gap between BCa and percentile, so
    matching scipy's BCa (not merely "some bootstrap interval") is what passes."""
    big_b = 40_000
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(20, 120))
    values = rng.lognormal(0.0, 1.25, size=n)
    tol = _mc_tolerance(values, n_resamples=big_b, sds=4.5)
    results = {}
    for method in ("percentile", "bca"):
        ours = stats.bootstrap_mean_ci(values, method=method, n_resamples=big_b, seed=seed)
        low, high = _scipy_ci((values,), method, seed + 100, n_resamples=big_b)
        assert abs(ours.estimate - values.mean()) < 1e-12
        assert abs(ours.low - low) <= tol and abs(ours.high - high) <= tol, (method, ours, low, high, tol)
        results[method] = ours
    assert results["bca"].high - results["percentile"].high > 2 * tol  # the test can tell the methods apart


def test_bca_levels_match_a_textbook_implementation() -> None:
    """Efron & Tibshirani (14.14)-(14.15) written out plainly, with a brute-force jackknife, on our resamples."""
    from scipy.special import ndtr, ndtri

    rng = np.random.default_rng(21)
    x = rng.gamma(0.7, size=45)
    theta_b = rng.choice(x, size=(4_000, len(x))).mean(axis=1)
    theta_hat = x.mean()
    jack = np.array([np.delete(x, i).mean() for i in range(len(x))])
    z0 = ndtri((np.sum(theta_b < theta_hat) + np.sum(theta_b <= theta_hat)) / (2 * len(theta_b)))
    d = jack.mean() - jack
    a = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    expected = [ndtr(z0 + (z0 + z) / (1 - a * (z0 + z))) for z in (ndtri(0.025), ndtri(0.975))]
    got = _bootstrap.bca_probabilities(theta_b, theta_hat, jack, 0.025)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize("seed", range(6))
def test_paired_difference_matches_scipy_paired_bootstrap(method: str, seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    n = int(rng.integers(80, 400))
    baseline = (rng.random(n) < 0.6).astype(float)
    flip = rng.random(n) < 0.15
    candidate = np.where(flip, 1.0 - baseline, baseline)
    ours = stats.paired_bootstrap_diff(candidate, baseline, method=method, n_resamples=B, seed=seed)
    low, high = _scipy_ci((candidate, baseline), method, seed + 100, paired=True)
    tol = _mc_tolerance(candidate - baseline, lattice=1.0 / n)
    assert ours.estimate == pytest.approx(candidate.mean() - baseline.mean(), abs=1e-15)
    assert abs(ours.low - low) <= tol and abs(ours.high - high) <= tol, (ours, low, high, tol)


def test_real_valued_paired_difference_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(0.5, 0.2, size=150)
    cand = base + rng.normal(0.03, 0.1, size=150)
    for method in ("percentile", "bca"):
        ours = stats.paired_bootstrap_diff(cand, base, method=method, n_resamples=B, seed=1)
        low, high = _scipy_ci((cand, base), method, 5, paired=True)
        tol = _mc_tolerance(cand - base)
        assert abs(ours.low - low) <= tol and abs(ours.high - high) <= tol


def test_bca_acceleration_uses_the_exact_jackknife() -> None:
    """The closed-form leave-one-out means equal brute-force jackknife means."""
    rng = np.random.default_rng(11)
    x = rng.exponential(size=37)
    features = np.column_stack([x, np.ones_like(x)])
    closed_form = _bootstrap._ratio(features.sum(axis=0)[None, :] - features)
    brute_force = np.array([np.delete(x, i).mean() for i in range(len(x))])
    np.testing.assert_allclose(closed_form, brute_force, rtol=1e-13)


def test_count_path_and_index_path_give_the_same_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forcing the index path (and tiny chunks) on binary data gives the same interval within MC error."""
    rng = np.random.default_rng(5)
    values = (rng.random(300) < 0.3).astype(float)
    fast = stats.bootstrap_mean_ci(values, method="percentile", n_resamples=B)
    monkeypatch.setattr(_bootstrap, "_COUNT_PATH_MAX_TYPES", 0)
    monkeypatch.setattr(_bootstrap, "_CHUNK_ELEMENTS", 1_000)  # ~3 resamples per chunk
    slow = stats.bootstrap_mean_ci(values, method="percentile", n_resamples=B)
    tol = _mc_tolerance(values, lattice=1.0 / 300)
    assert abs(fast.low - slow.low) <= tol and abs(fast.high - slow.high) <= tol


def test_multinomial_counts_have_multinomial_moments() -> None:
    rng = np.random.default_rng(0)
    type_counts = np.array([5, 0, 30, 65])
    draws = _bootstrap.multinomial_counts(rng, type_counts, 200_000)
    assert np.all(draws.sum(axis=1) == 100)
    p = type_counts / 100
    np.testing.assert_allclose(draws.mean(axis=0), 100 * p, atol=0.05)
    np.testing.assert_allclose(draws.var(axis=0), 100 * p * (1 - p), rtol=0.02, atol=1e-9)
    cov_02 = np.cov(draws[:, 0], draws[:, 2])[0, 1]
    assert cov_02 == pytest.approx(-100 * p[0] * p[2], rel=0.05)


def test_cluster_bootstrap_matches_a_naive_cluster_resampler() -> None:
    rng = np.random.default_rng(9)
    n_clusters = 60
    sizes = rng.integers(1, 6, size=n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    effects = rng.normal(0.0, 1.0, size=n_clusters)
    values = effects[clusters] + rng.normal(0.0, 0.5, size=len(clusters))
    ours = stats.cluster_bootstrap_mean(values, clusters, method="percentile", n_resamples=B)
    # naive reference: draw cluster ids, concatenate their items, take the mean
    sums = np.bincount(clusters, weights=values)
    draws = rng.integers(0, n_clusters, size=(B, n_clusters))
    naive = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    low, high = np.quantile(naive, [0.025, 0.975])
    sigma_boot = naive.std()
    tol = 6 * np.sqrt(2) * 2.7 * sigma_boot / np.sqrt(B)
    assert ours.estimate == pytest.approx(values.mean(), rel=1e-12)
    assert ours.n == len(values) and ours.n_clusters == n_clusters
    assert abs(ours.low - low) <= tol and abs(ours.high - high) <= tol


def test_cluster_bootstrap_with_singleton_clusters_is_the_plain_bootstrap() -> None:
    values = (np.random.default_rng(2).random(120) < 0.4).astype(float)
    plain = stats.bootstrap_mean_ci(values, seed=4)
    clustered = stats.cluster_bootstrap_mean(values, np.arange(120), seed=4)
    assert (clustered.estimate, clustered.low, clustered.high) == (plain.estimate, plain.low, plain.high)


def test_cluster_weighting_by_clusters_averages_cluster_means() -> None:
    values = [1.0, 1.0, 1.0, 0.0]
    clusters = ["a", "a", "a", "b"]
    assert stats.cluster_bootstrap_mean(values, clusters).estimate == 0.75
    assert stats.cluster_bootstrap_mean(values, clusters, weighting="clusters").estimate == 0.5


def test_clustered_paired_difference_resamples_clusters() -> None:
    rng = np.random.default_rng(4)
    problems = np.repeat(np.arange(80), 5)  # 5 samples per problem
    skill = rng.random(80)
    base = (rng.random(400) < skill[problems]).astype(float)
    cand = (rng.random(400) < np.clip(skill[problems] + 0.05, 0, 1)).astype(float)
    plain = stats.paired_bootstrap_diff(cand, base)
    clustered = stats.paired_bootstrap_diff(cand, base, clusters=problems)
    assert clustered.estimate == pytest.approx(plain.estimate)
    assert clustered.method == "paired-cluster-bootstrap-bca" and clustered.n_clusters == 80


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    values = np.random.default_rng(1).normal(size=200)
    assert stats.bootstrap_mean_ci(values, seed=3) == stats.bootstrap_mean_ci(values, seed=3)
    assert stats.bootstrap_mean_ci(values, seed=3).low != stats.bootstrap_mean_ci(values, seed=4).low


def test_interval_records_how_it_was_made() -> None:
    result = stats.bootstrap_mean_ci([0, 1, 1, 0, 1], n_resamples=2_000, seed=7, method="percentile")
    assert result.method == "bootstrap-percentile"
    assert (result.n, result.n_resamples, result.seed, result.confidence) == (5, 2_000, 7, 0.95)
    assert "95% bootstrap-percentile, n=5" in str(result)


@pytest.mark.parametrize("method", ["percentile", "bca"])
@pytest.mark.parametrize(
    ("values", "expected"),
    [([1] * 50, 1.0), ([0] * 50, 0.0), ([1], 1.0), ([0.37], 0.37), ([0.5] * 7, 0.5)],
    ids=["all-correct", "all-wrong", "one-item", "one-real-item", "ties-everywhere"],
)
def test_degenerate_data_give_a_zero_width_interval_at_the_estimate(
    method: str, values: list[float], expected: float
) -> None:
    """Stated behaviour: with no variation in the sample the bootstrap has nothing to resample."""
    result = stats.bootstrap_mean_ci(values, method=method)
    assert result.estimate == pytest.approx(expected)
    assert result.low == result.estimate == result.high
    assert stats.cluster_bootstrap_mean(values, list(range(len(values))), method=method).width == 0.0


def test_identical_checkpoints_give_a_zero_difference_interval() -> None:
    outcomes = [1, 0, 1, 1, 0] * 10
    result = stats.paired_bootstrap_diff(outcomes, outcomes)
    assert (result.estimate, result.low, result.high) == (0.0, 0.0, 0.0)


def test_single_cluster_gives_zero_width() -> None:
    result = stats.cluster_bootstrap_mean([1, 0, 1, 0.5], ["p"] * 4)
    assert result.low == result.high == result.estimate == 0.625


def test_near_degenerate_binary_data_stay_finite_and_ordered() -> None:
    for successes, n in [(1, 1000), (999, 1000), (1, 2), (1, 10)]:
        values = np.r_[np.ones(successes), np.zeros(n - successes)]
        for method in ("percentile", "bca"):
            result = stats.bootstrap_mean_ci(values, method=method)
            assert np.isfinite([result.low, result.high]).all()
            assert 0.0 <= result.low <= result.high <= 1.0


def test_large_real_valued_input_stays_within_bounded_memory() -> None:
    """1e7 index draws go through chunks of ~4e6; the result is still a sensible interval."""
    values = np.random.default_rng(0).normal(size=5_000)
    result = stats.bootstrap_mean_ci(values, n_resamples=2_000, method="percentile")
    se = values.std() / np.sqrt(len(values))
    assert result.width == pytest.approx(2 * 1.96 * se, rel=0.1)
