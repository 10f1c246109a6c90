"""Operating characteristics of the regression gate: group-sequential (eval_assets.sequential) vs fixed size.

Synthetic paired 0/1 data (production accuracy 0.55, 85% item agreement, true differences 0, -1 (the margin),
-2 and -5 points) through :func:`eval_assets.sequential.simulate`, which decides every look with the vectorized
twin of ``sequential_decision`` and replays a few runs per cell through ``sequential_decision`` itself. Suites
of 200, 500, 1000, 2000 and 5000 items; the sample grows 200 -> 500 -> 1000 -> 2000 capped at
min(2000, suite size). Beside each sequential design: the fixed-size gate on the same maximum number of items,
and today's fixed gate on the 200 smoke items. ``analytic`` is the normal-approximation P(fail) of the
sequential design (``operating_characteristics``).

Targets (exit 1 if one is missed):

* no regression (0): blocked (fail) <= 2.5% at every suite size;
* at the margin (-1 point): false block <= alpha (0.025) + 2 Monte Carlo standard errors, every suite size;
* 5-point regression: blocked >= 99% where the design reaches 2000 items (suites of 2000+); for smaller suites
  (where no gate with 2.5% false-block reaches 99%: the fixed-size ceiling is printed), blocked within 3 points
  of the fixed-size gate on the same maximum number of items;
* the simulated sequential P(fail) within 0.02 of the analytic one (the simulation and the integration agree).

Run: ``.venv/bin/python benchmarks/bench_gate_simulation.py [--runs 50000] [--margin-runs 200000] [--seed 0]
[--spending obrien_fleming|pocock]``.
"""

from __future__ import annotations

import argparse
import sys
import time

from eval_assets.sequential import (
    DEFAULT_STAGES,
    SPENDING_FUNCTIONS,
    SequentialDesign,
    gate_power,
    operating_characteristics,
    simulate,
)

SUITES = (200, 500, 1000, 2000, 5000)
DIFFERENCES = (0.0, -0.01, -0.02, -0.05)
AGREEMENT = 0.85
MARGIN = 0.01
ALPHA = 0.025
CAP = 2000
SMOKE = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50_000, help="runs per cell (default 50,000)")
    parser.add_argument("--margin-runs", type=int, default=200_000, help="runs per cell at the margin")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spending", choices=SPENDING_FUNCTIONS, default="obrien_fleming")
    args = parser.parse_args()

    start = time.perf_counter()
    base = SequentialDesign(stages=tuple(s for s in DEFAULT_STAGES if s <= CAP), spending=args.spending)
    failures: list[str] = []
    print(
        f"agreement {AGREEMENT:.0%} (discordance {1 - AGREEMENT:.0%}), production accuracy 0.55, margin "
        f"{MARGIN:.0%}, one-sided alpha {ALPHA} per decision, {base.spending} spending; "
        f"{args.runs:,} runs per cell ({args.margin_runs:,} at the margin)\n"
    )
    header = (
        f"{'suite':>5} {'looks':<19} {'true':>5} | {'seq fail':>8} {'pass':>6} {'inconc':>6} {'mean n':>7} "
        f"{'analytic':>8} {'blk*':>6} | {'fixed fail':>10} {'pass':>6} {'inconc':>6} {'n':>5} | "
        f"{'today@200':>9}"
    )
    print(header)
    print("-" * len(header))
    for suite in SUITES:
        design = base.for_suite(suite)
        fixed = SequentialDesign.fixed(design.max_items)
        today = SequentialDesign.fixed(SMOKE)
        for k, delta in enumerate(DIFFERENCES):
            runs = args.margin_runs if delta == -MARGIN else args.runs
            seed = args.seed + 1000 * suite + k
            seq = simulate(design, delta, AGREEMENT, suite, runs, seed, MARGIN, "warn")
            blk = simulate(
                design, delta, AGREEMENT, suite, runs, seed, MARGIN, "block"
            )  # same seed, same runs
            fix = simulate(fixed, delta, AGREEMENT, suite, runs, seed + 1, MARGIN, "warn")
            now = simulate(today, delta, AGREEMENT, suite, runs, seed + 2, MARGIN, "warn")
            oc = operating_characteristics(design, 1 - AGREEMENT, delta, MARGIN)
            looks = "/".join(str(s) for s in design.stages)
            print(
                f"{suite:>5} {looks:<19} {100 * delta:>+5.0f} | {seq.fail:>8.2%} {seq.pass_:>6.2%} "
                f"{seq.inconclusive:>6.1%} {seq.mean_items:>7.0f} {oc.fail:>8.2%} {blk.blocked:>6.1%} | "
                f"{fix.fail:>10.2%} {fix.pass_:>6.2%} {fix.inconclusive:>6.1%} {fix.mean_items:>5.0f} | "
                f"{now.fail:>9.2%}"
            )
            se = seq.mcse(seq.fail)
            if delta == 0.0 and seq.fail > 0.025:
                failures.append(f"suite {suite}: no regression blocked {seq.fail:.2%} > 2.5%")
            if delta == -MARGIN and seq.fail > ALPHA + 2 * se:
                failures.append(
                    f"suite {suite}: false block at the margin {seq.fail:.3%} > alpha {ALPHA} + 2 MCSE ({2 * se:.3%})"
                )
            if delta == -0.05:
                if design.max_items >= 2000 and seq.fail < 0.99:
                    failures.append(f"suite {suite}: 5-point regression blocked {seq.fail:.2%} < 99%")
                if seq.fail < fix.fail - 0.03:
                    failures.append(
                        f"suite {suite}: 5-point regression blocked {seq.fail:.2%}, more than 3 points below the "
                        f"fixed-size gate on {fixed.max_items} items ({fix.fail:.2%})"
                    )
            if abs(seq.fail - oc.fail) > 0.02:
                failures.append(
                    f"suite {suite}, true {delta:+.2f}: simulated {seq.fail:.3f} vs analytic {oc.fail:.3f}"
                )
        print()
    print(
        "blk*: blocked when the final inconclusive blocks (policy `block`, critical suites): fail + inconclusive"
    )
    print(
        "fixed: the fixed-size gate on the design's maximum number of items; today@200: fixed gate, 200 items"
    )
    ceiling = {
        n: gate_power(min(n, CAP), 1 - AGREEMENT, -0.05, MARGIN, alpha=ALPHA)
        for n in SUITES
        if min(n, CAP) < 2000
    }
    print(
        "5-point regression, fixed-size ceiling (normal approximation) for suites below 2000 items: "
        + ", ".join(f"{n}: {p:.1%}" for n, p in ceiling.items())
    )
    print(f"\nwall time {time.perf_counter() - start:.1f} s")
    if failures:
        print("\nTARGETS MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
