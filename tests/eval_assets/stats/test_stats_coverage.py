"""Do the 95% intervals cover the truth 95% of the time? Seeded simulations, plus exact coverage where exact is
possible (a proportion's interval depends only on the success count, so coverage is a finite sum).

Claims made here, and in the docstrings they back:

* Proportion, Wilson: 95 ± 1.5% in simulation (n = 400, p drawn from [0.1, 0.9]); exactly, pointwise
  within 95 ± 1.5% for n >= 200 and 0.1 <= p <= 0.9. It dips near the edges: 92.5% at n = 20, p = 0.05.
* Proportion, binary bootstrap (percentile and BCa): 95 ± 1.5% in simulation on the same design. Pointwise its
  coverage oscillates with p by about ±2% (the bootstrap distribution lives on a 1/n lattice), and at small
  n·p it collapses: 64% at n = 20, p = 0.05 (a third of such data sets are all-wrong and give [0, 0]).
* Clopper-Pearson: never below 95% (checked exactly on a grid).
* Paired difference (binary outcomes, n = 500, 30% discordant): 95 ± 1.5%. At n = 30 (20% discordant) it
  under-covers: about 89%.
* Paired difference, Newcombe's hybrid score interval (0/1 outcomes): 95 ± 1.5% in simulation at n = 200 with
  20% and 30% discordant items. At n = 10, 20, 30, computed exactly over a grid of cell probabilities: average
  95.4-95.5%; with at most half the items discordant, average 96-97% and minimum >= 92.9% (n = 10), >= 94%
  (n = 20, 30); overall minimum 87.7% (n = 10), 90.9% (n = 20), 93.8% (n = 30), at points where nearly every
  item is discordant. On the bootstrap's small design (30 items, 20% discordant) it covers 95.5%, not 89%.
  Wald on the same grid: average 88-93%, minima 46-84%.
* Clustered win-rate (200 prompts, both judge orders, ties): cluster bootstrap and clustered Wilson 95 ± 1.5%;
  the item-level bootstrap on the same data under-covers (it ignores the correlation of the two orders).

Each simulation uses a fixed seed; intervals use 2,000 resamples. Monte Carlo sd of a coverage estimate from
2,000 data sets is 0.49%, from 3,000 0.40%.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import gammaln

from eval_assets import stats
from eval_assets.stats import Interval

LOW, HIGH = 0.935, 0.965
RESAMPLES = 2_000


def _binary(successes: int, n: int) -> np.ndarray:
    return np.r_[np.ones(successes), np.zeros(n - successes)]


def _interval_table(make: Callable[[int, int], Interval], n: int) -> np.ndarray:
    """(low, high) for every possible success count 0..n."""
    return np.array([[iv.low, iv.high] for iv in (make(s, n) for s in range(n + 1))])


def _exact_coverage(table: np.ndarray, n: int, p: float) -> float:
    pmf = sps.binom.pmf(np.arange(n + 1), n, p)
    return float(pmf @ ((table[:, 0] <= p) & (p <= table[:, 1])))


def _bootstrap_maker(method: str) -> Callable[[int, int], Interval]:
    def make(successes: int, n: int) -> Interval:
        return stats.bootstrap_mean_ci(
            _binary(successes, n), method=method, n_resamples=RESAMPLES, seed=successes
        )

    return make


# --- a single proportion -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["wilson", "percentile", "bca"])
def test_proportion_coverage_by_simulation(method: str) -> None:
    n, n_sets = 400, 3_000
    rng = np.random.default_rng(100)
    truths = rng.uniform(0.1, 0.9, size=n_sets)
    successes = rng.binomial(n, truths)
    covered = 0
    for i, (p, s) in enumerate(zip(truths, successes, strict=True)):
        if method == "wilson":
            interval = stats.wilson_interval(int(s), n)
        else:
            interval = stats.bootstrap_mean_ci(
                _binary(int(s), n), method=method, n_resamples=RESAMPLES, seed=i
            )
        covered += interval.contains(p)
    assert LOW <= covered / n_sets <= HIGH, covered / n_sets


def test_wilson_exact_pointwise_coverage_and_its_edges() -> None:
    for n in (200, 400, 1000):
        table = _interval_table(lambda s, m: stats.wilson_interval(s, m), n)
        coverage = [_exact_coverage(table, n, p) for p in np.linspace(0.1, 0.9, 161)]
        assert min(coverage) >= LOW and max(coverage) <= HIGH, (n, min(coverage), max(coverage))
    small = _interval_table(lambda s, m: stats.wilson_interval(s, m), 20)
    assert _exact_coverage(small, 20, 0.05) == pytest.approx(0.925, abs=0.002)  # the known dip near p = 0


def test_clopper_pearson_never_under_covers() -> None:
    for n in (1, 5, 20, 100):
        table = _interval_table(lambda s, m: stats.clopper_pearson_interval(s, m), n)
        coverage = [_exact_coverage(table, n, p) for p in np.linspace(0.001, 0.999, 300)]
        assert min(coverage) >= 0.95 - 1e-9, (n, min(coverage))


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_binary_bootstrap_exact_coverage_oscillates_around_nominal(method: str) -> None:
    """n = 400: averaged over p it is nominal; pointwise it swings by about ±2% (lattice effect)."""
    n = 400
    table = _interval_table(_bootstrap_maker(method), n)
    coverage = np.array([_exact_coverage(table, n, p) for p in np.linspace(25 / n, 1 - 25 / n, 201)])
    assert abs(coverage.mean() - 0.95) <= 0.005
    assert coverage.min() >= 0.925 and coverage.max() <= 0.975


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_binary_bootstrap_under_covers_at_small_n_times_p(method: str) -> None:
    """Stated behaviour: n = 20, p = 0.05 — the bootstrap collapses, Wilson does not."""
    n, p = 20, 0.05
    bootstrap = _exact_coverage(_interval_table(_bootstrap_maker(method), n), n, p)
    wilson = _exact_coverage(_interval_table(lambda s, m: stats.wilson_interval(s, m), n), n, p)
    assert bootstrap < 0.70 < 0.92 < wilson
    assert sps.binom.pmf(0, n, p) == pytest.approx(0.358, abs=1e-3)  # all wrong: zero-width interval at 0


# --- paired difference ---------------------------------------------------------------------------------------


def _paired_coverage(n: int, p10: float, p01: float, method: str, n_sets: int, seed: int) -> float:
    """Candidate and baseline outcomes with P(only candidate right) = p10, P(only baseline right) = p01."""
    rng = np.random.default_rng(seed)
    truth = p10 - p01
    covered = 0
    for i in range(n_sets):
        u = rng.random(n)
        concordant_right = rng.random(n) < 0.6
        candidate = np.where(u < p10, 1.0, np.where(u < p10 + p01, 0.0, concordant_right))
        baseline = np.where(u < p10, 0.0, np.where(u < p10 + p01, 1.0, concordant_right))
        interval = stats.paired_bootstrap_diff(
            candidate, baseline, method=method, n_resamples=RESAMPLES, seed=i
        )
        covered += interval.contains(truth)
    return covered / n_sets


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_difference_coverage(method: str) -> None:
    coverage = _paired_coverage(500, 0.17, 0.13, method, n_sets=3_000, seed=200)
    assert LOW <= coverage <= HIGH, coverage


def test_paired_difference_under_covers_at_small_n() -> None:
    """Stated behaviour: 30 items with 20% discordant (about 6 informative items) — about 89% (BCa)."""
    coverage = _paired_coverage(30, 0.12, 0.08, "bca", n_sets=2_000, seed=201)
    assert 0.85 <= coverage < LOW, coverage


# --- paired difference, Newcombe hybrid score ----------------------------------------------------------------
# The interval depends only on the table (a, b, c, d): simulate tables (one vectorised multinomial draw), or
# enumerate every table of n items and sum the multinomial probabilities of those whose interval covers.


def _newcombe_table(tables: np.ndarray, method: str = "newcombe") -> np.ndarray:
    """(low, high) for each row (a, b, c, d) of ``tables``."""
    make = stats.paired_proportion_difference_interval_from_counts
    return np.array([[iv.low, iv.high] for iv in (make(*map(int, t), method=method) for t in tables)])  # type: ignore[arg-type]


def _newcombe_simulated_coverage(n: int, p10: float, p01: float, n_sets: int, seed: int) -> float:
    """Same design as :func:`_paired_coverage`: concordant items are both right with probability 0.6."""
    rng = np.random.default_rng(seed)
    concordant = 1.0 - p10 - p01
    tables = rng.multinomial(n, [0.6 * concordant, p10, p01, 0.4 * concordant], size=n_sets)
    distinct, which = np.unique(tables, axis=0, return_inverse=True)
    limits = _newcombe_table(distinct)[which.ravel()]
    truth = p10 - p01
    return float(np.mean((limits[:, 0] <= truth) & (truth <= limits[:, 1])))


def _all_paired_tables(n: int) -> np.ndarray:
    a, b, c = np.meshgrid(*(np.arange(n + 1),) * 3, indexing="ij")
    keep = a + b + c <= n
    return np.column_stack([a[keep], b[keep], c[keep], n - a[keep] - b[keep] - c[keep]])


@functools.cache
def _all_paired_limits(n: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    tables = _all_paired_tables(n)
    return tables, _newcombe_table(tables, method)


def _exact_paired_coverage(n: int, probabilities: np.ndarray, method: str = "newcombe") -> np.ndarray:
    """Exact coverage at each row (p11, p10, p01, p00) of ``probabilities`` (all > 0)."""
    tables, limits = _all_paired_limits(n, method)
    log_pmf = gammaln(n + 1) - gammaln(tables + 1).sum(axis=1)[:, None] + tables @ np.log(probabilities).T
    truth = probabilities[:, 1] - probabilities[:, 2]
    covers = (limits[:, [0]] <= truth) & (truth <= limits[:, [1]])
    return np.asarray((np.exp(log_pmf) * covers).sum(axis=0))


def _probability_grid() -> np.ndarray:
    """(p11, p10, p01, p00) on a 0.04 grid, every cell at least 0.01: 2,600 points."""
    grid = np.arange(0.02, 1.0, 0.04)
    return np.array(
        [
            (p11, p10, p01, 1 - p11 - p10 - p01)
            for p11 in grid
            for p10 in grid
            for p01 in grid
            if p11 + p10 + p01 <= 0.99
        ]
    )


@pytest.mark.parametrize(("p10", "p01"), [(0.12, 0.08), (0.17, 0.13)])
def test_newcombe_paired_difference_coverage(p10: float, p01: float) -> None:
    coverage = _newcombe_simulated_coverage(200, p10, p01, n_sets=4_000, seed=400)
    assert LOW <= coverage <= HIGH, coverage


@pytest.mark.parametrize(
    ("n", "overall_min", "moderate_min"), [(10, 0.87, 0.925), (20, 0.90, 0.94), (30, 0.93, 0.94)]
)
def test_newcombe_paired_difference_exact_coverage_at_small_n(
    n: int, overall_min: float, moderate_min: float
) -> None:
    """Stated behaviour at 10-30 items: nominal on average, mildly conservative unless most items are discordant."""
    grid = _probability_grid()
    coverage = _exact_paired_coverage(n, grid)
    moderate = (
        grid[:, 1] + grid[:, 2] <= 0.5
    )  # at most half the items discordant: the usual case for checkpoints
    assert 0.95 <= coverage.mean() <= 0.96, coverage.mean()
    assert coverage.min() >= overall_min, coverage.min()
    assert coverage[moderate].min() >= moderate_min and coverage[moderate].mean() >= 0.955
    worst = grid[coverage.argmin()]
    assert worst[1] + worst[2] >= 0.8, worst  # the dips are where nearly every item is discordant
    wald = _exact_paired_coverage(n, grid, method="wald")
    assert wald.mean() < 0.935 and wald.min() < 0.85, (wald.mean(), wald.min())


def test_newcombe_covers_where_the_bootstrap_under_covers() -> None:
    """The small-n design of test_paired_difference_under_covers_at_small_n: 30 items, 20% discordant."""
    exact = _exact_paired_coverage(30, np.array([[0.48, 0.12, 0.08, 0.32]]))[0]
    assert exact == pytest.approx(0.9555, abs=0.001) and exact >= 0.95
    few_discordant = _exact_paired_coverage(10, np.array([[0.05, 0.02, 0.02, 0.91], [0.3, 0.05, 0.05, 0.6]]))
    assert np.all(few_discordant >= 0.99)  # conservative when almost every item is concordant


# --- clustered win-rate --------------------------------------------------------------------------------------


def _win_rate_data(rng: np.random.Generator, n_prompts: int) -> np.ndarray:
    """Both judge orders per prompt: a per-prompt win probability (strongly varying across prompts, so the
    two orders are correlated), a small position bias that cancels across orders, 10% ties scored 0.5.
    The true win-rate is 0.5."""
    quality = 0.1 + 0.8 * rng.beta(0.5, 0.5, size=n_prompts)
    p_win = np.column_stack([quality + 0.05, quality - 0.05]).ravel()
    wins = (rng.random(2 * n_prompts) < p_win).astype(float)
    return np.where(rng.random(2 * n_prompts) < 0.1, 0.5, wins)


def _win_rate_coverage(kind: str, n_prompts: int, n_sets: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_prompts), 2)
    covered = 0
    for i in range(n_sets):
        values = _win_rate_data(rng, n_prompts)
        if kind == "wilson":
            interval = stats.clustered_wilson_interval(values, clusters)
        elif kind == "items":
            interval = stats.bootstrap_mean_ci(values, method="percentile", n_resamples=RESAMPLES, seed=i)
        else:
            interval = stats.cluster_bootstrap_mean(
                values, clusters, method=kind, n_resamples=RESAMPLES, seed=i
            )
        covered += interval.contains(0.5)
    return covered / n_sets


@pytest.mark.parametrize("kind", ["percentile", "bca", "wilson"])
def test_clustered_win_rate_coverage(kind: str) -> None:
    coverage = _win_rate_coverage(kind, n_prompts=200, n_sets=2_000, seed=300)
    assert LOW <= coverage <= HIGH, coverage


def test_item_level_bootstrap_under_covers_a_clustered_win_rate() -> None:
    """Stated behaviour: ignoring that both orders of a prompt are correlated gives too-narrow intervals."""
    coverage = _win_rate_coverage("items", n_prompts=200, n_sets=2_000, seed=300)
    assert coverage < 0.935, coverage


# --- pass@1 over several samples per problem --------------------------------------------------------------


def _mean_rate_coverage(n_problems: int, samples: int, a: float, b: float, n_sets: int, seed: int) -> float:
    """Problems of varying difficulty (pass probability ~ Beta(a, b)), ``samples`` draws each; the true pass@1
    is the Beta mean."""
    rng = np.random.default_rng(seed)
    truth = a / (a + b)
    sizes = np.full(n_problems, samples)
    covered = 0
    for _ in range(n_sets):
        rates = rng.binomial(samples, rng.beta(a, b, size=n_problems)) / samples
        covered += stats.mean_rate_wilson_interval(rates, sizes).contains(truth)
    return covered / n_sets


@pytest.mark.parametrize(
    ("n_problems", "samples", "a", "b"),
    [(164, 5, 0.5, 0.5), (164, 5, 0.3, 3.0), (50, 5, 0.2, 2.0), (20, 2, 0.5, 4.0), (164, 5, 0.1, 5.0)],
)
def test_mean_rate_wilson_covers_pass_at_1(n_problems: int, samples: int, a: float, b: float) -> None:
    coverage = _mean_rate_coverage(n_problems, samples, a, b, n_sets=1_500, seed=410)
    assert 0.93 <= coverage <= 0.975, coverage
