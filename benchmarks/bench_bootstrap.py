"""Benchmark: 10,000 bootstrap resamples of 100,000 binary items, target at most 0.5 s.

Times :func:`eval_assets.stats.bootstrap_mean_ci` (whole call: input checks, resampling, interval) on 0/1
outcomes, where it resamples success counts with one binomial draw per resample, against naive numpy index
resampling (``values[rng.integers(0, n, (rows, n))].mean(axis=1)``) in the same run. Naive resampling of
100,000 x 10,000 draws 1e9 indices; it runs in chunks of 50 resamples (about 80 MB at a time). With ``--quick``
it times 1,000 naive resamples and extrapolates linearly to 10,000, and says so.

Run: ``python benchmarks/bench_bootstrap.py [--quick]``. Exits 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import numpy as np

from eval_assets.stats import BootstrapMethod, Interval, bootstrap_mean_ci

N_ITEMS = 100_000
N_RESAMPLES = 10_000
TARGET_S = 0.5
NAIVE_CHUNK = 50


def _best_of(repeats: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _naive_bootstrap_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, NAIVE_CHUNK):
        stop = min(n_resamples, start + NAIVE_CHUNK)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time 1,000 naive resamples and extrapolate")
    args = parser.parse_args(argv)

    values = (np.random.default_rng(0).random(N_ITEMS) < 0.73).astype(np.float64)
    print(f"{N_RESAMPLES:,} resamples of {N_ITEMS:,} binary items (mean {values.mean():.4f})")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")

    timings: dict[str, float] = {}
    intervals: dict[str, Interval] = {}
    methods: tuple[BootstrapMethod, ...] = ("percentile", "bca")
    for method in methods:

        def run(m: BootstrapMethod = method) -> Interval:
            return bootstrap_mean_ci(values, n_resamples=N_RESAMPLES, method=m)

        intervals[method] = run()  # warm-up, and the interval to print
        timings[method] = _best_of(5, run)
        print(
            f"  bootstrap_mean_ci(method={method!r}): {timings[method] * 1e3:8.2f} ms  -> {intervals[method]}"
        )

    naive_resamples = 1_000 if args.quick else N_RESAMPLES
    start = time.perf_counter()
    naive_means = _naive_bootstrap_means(values, naive_resamples, seed=1)
    naive_s = (time.perf_counter() - start) * (N_RESAMPLES / naive_resamples)
    low, high = np.quantile(naive_means, [0.025, 0.975])
    how = f"extrapolated from {naive_resamples:,} resamples" if args.quick else "measured, in chunks of 50"
    print(f"  naive numpy index resampling:      {naive_s * 1e3:8.0f} ms  ({how}) -> [{low:.4g}, {high:.4g}]")

    fast_s = max(timings.values())
    print(
        f"speed-up vs naive: {naive_s / timings['percentile']:,.0f}x (percentile), {naive_s / timings['bca']:,.0f}x (BCa)"
    )
    ok = fast_s <= TARGET_S
    print(
        f"target {TARGET_S * 1e3:.0f} ms: {'met' if ok else 'MISSED'} (slowest method {fast_s * 1e3:.2f} ms)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
