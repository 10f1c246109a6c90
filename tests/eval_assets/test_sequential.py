"""Group-sequential regression gate: boundaries against published tables and an independent Monte Carlo, the
decision against the gate's own interval, error rates by simulation, and the power functions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from eval_assets import sequential as sq
from eval_assets import stats


def _equal(k: int) -> list[float]:
    return [(i + 1) / k for i in range(k)]


# ------------------------------------------------------------------------------------------- boundaries


def test_lan_demets_obrien_fleming_matches_published_boundaries() -> None:
    # Lan-DeMets O'Brien-Fleming-type spending, equally spaced looks, one-sided 0.025 (= two-sided 0.05):
    # K = 4: 4.333, 2.963, 2.359, 2.014 and K = 2: 2.963, 1.969 (DeMets & Lan, Stat Med 1994; 13:1341;
    # gsDesign's sfLDOF gives the same).
    assert sq.spending_boundaries(_equal(4), 0.025, "obrien_fleming") == pytest.approx(
        (4.333, 2.963, 2.359, 2.014), abs=1.5e-3
    )
    assert sq.spending_boundaries(_equal(2), 0.025, "obrien_fleming") == pytest.approx(
        (2.963, 1.969), abs=1.5e-3
    )


@pytest.mark.parametrize(
    ("k", "pocock", "obrien_fleming"),
    # Jennison & Turnbull (2000), Table 2.1: constants for two-sided tests at alpha = 0.05, equal group sizes.
    [(2, 2.178, 1.977), (3, 2.289, 2.004), (4, 2.361, 2.024), (5, 2.413, 2.040)],
)
def test_integration_reproduces_the_classical_pocock_and_obrien_fleming_constants(
    k: int, pocock: float, obrien_fleming: float
) -> None:
    t = _equal(k)

    def two_sided(shape: list[float]) -> float:
        def size(c: float) -> float:
            bounds = [c * s for s in shape]
            low, high = sq.exit_probabilities([-b for b in bounds], bounds, t)
            return sum(low) + sum(high) - 0.05

        return float(optimize.brentq(size, 1.0, 5.0, xtol=1e-9))

    assert two_sided([1.0] * k) == pytest.approx(pocock, abs=1.5e-3)
    assert two_sided([math.sqrt(k / (i + 1)) for i in range(k)]) == pytest.approx(obrien_fleming, abs=1.5e-3)


def _brownian_paths(t: list[float], drift: float, paths: int, seed: int) -> np.ndarray:
    """Z_k = S(t_k) / sqrt(t_k) for a Brownian motion with drift, simulated independently of the module."""
    rng = np.random.default_rng(seed)
    steps = np.diff([0.0, *t])
    increments = rng.standard_normal((paths, len(t))) * np.sqrt(steps) + drift * steps
    return np.cumsum(increments, axis=1) / np.sqrt(t)


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
def test_boundaries_spend_the_planned_alpha_in_an_independent_monte_carlo(spending: sq.Spending) -> None:
    t = [0.1, 0.25, 0.5, 1.0]
    alpha = 0.025
    bounds = np.array(sq.spending_boundaries(t, alpha, spending))
    z = _brownian_paths(t, 0.0, 1_000_000, seed=11)
    crossed = np.maximum.accumulate(z >= bounds, axis=1)
    for k, tk in enumerate(t):
        spent = sq.alpha_spent(spending, alpha, tk)
        share = float(crossed[:, k].mean())
        se = math.sqrt(max(spent * (1 - spent), 1e-6) / z.shape[0])
        assert abs(share - spent) < 4 * se + 1e-5, (k, share, spent)
    assert float(crossed[:, -1].mean()) == pytest.approx(alpha, abs=4 * math.sqrt(alpha / z.shape[0]))


def test_exit_probabilities_with_two_boundaries_and_drift_match_monte_carlo() -> None:
    t = [0.1, 0.25, 0.5, 1.0]
    design = sq.SequentialDesign(stages=(200, 500, 1000, 2000))
    b = design.boundaries()
    lower, upper = [-z for z in b.z_block], list(b.z_pass)
    for drift in (-3.0, -0.5, 1.5):
        below, above = sq.exit_probabilities(lower, upper, t, drift)
        z = _brownian_paths(t, drift, 400_000, seed=int(10 * drift) + 50)
        alive = np.ones(z.shape[0], dtype=bool)
        for k in range(len(t)):
            lo, hi = alive & (z[:, k] <= lower[k]), alive & (z[:, k] >= upper[k])
            for got, want in ((float(lo.mean()), below[k]), (float(hi.mean()), above[k])):
                assert abs(got - want) < 4 * math.sqrt(max(want, 1e-6) / z.shape[0]) + 1e-5, (drift, k)
            alive &= ~(lo | hi)


def test_boundary_shapes_and_exact_spending() -> None:
    t = [0.1, 0.25, 0.5, 1.0]
    obf = sq.spending_boundaries(t, 0.025, "obrien_fleming")
    pocock = sq.spending_boundaries(t, 0.025, "pocock")
    assert all(a > b for a, b in itertools.pairwise(obf))  # strict early, near fixed-size at the end
    assert 1.96 < obf[-1] < 1.975 and pocock[-1] > 2.2  # Pocock pays at the last look
    assert max(pocock) - min(pocock) < 0.5
    for bounds in (obf, pocock):
        _, above = sq.exit_probabilities([-math.inf] * 4, list(bounds), t)
        assert sum(above) == pytest.approx(0.025, abs=1e-7)
    # one look: the fixed-size one-sided boundary
    assert sq.spending_boundaries([1.0], 0.025) == pytest.approx((sps.norm.isf(0.025),), abs=1e-12)


def test_design_validation_and_for_suite() -> None:
    design = sq.SequentialDesign()
    assert design.stages == sq.DEFAULT_STAGES
    assert design.for_suite(700).stages == (200, 500, 700)
    assert design.for_suite(2000).stages == design.for_suite(5000).stages == (200, 500, 1000, 2000)
    assert design.for_suite(150).stages == (150,)
    assert sq.default_design(1000).stages == (200, 500, 1000)
    with pytest.raises(ValueError, match="strictly increasing"):
        sq.SequentialDesign(stages=(200, 200))
    with pytest.raises(ValueError, match="alpha_block"):
        sq.SequentialDesign(alpha_block=0.6)
    with pytest.raises(ValueError, match="spending"):
        sq.SequentialDesign(spending="haybittle")  # type: ignore[arg-type]
    b = design.boundaries()
    assert (
        b.spent_block[-1] == 0.025 and b.alpha_block[-1] < 0.025
    )  # the last look's nominal level is < alpha


# --------------------------------------------------------------------------------------------- decision


def _random_tables(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    probs = rng.dirichlet([1.0, 0.3, 0.3, 1.0], size=count)
    tables = np.array([rng.multinomial(n, p) for p in probs])
    tables[: count // 10, 1:3] = 0  # some with no discordant items
    tables[: count // 10, 0] = n - tables[: count // 10, 3]
    return tables


@pytest.mark.parametrize(
    "design",
    [
        sq.SequentialDesign(),
        sq.SequentialDesign(stages=(100, 300, 600), alpha_block=0.05, alpha_pass=0.01, spending="pocock"),
    ],
)
def test_vectorized_twin_agrees_with_sequential_decision(design: sq.SequentialDesign) -> None:
    rng = np.random.default_rng(3)
    b = design.boundaries()
    for look, n in enumerate(design.stages, start=1):
        tables = _random_tables(rng, n, 300)
        # margins near the estimate make knife-edge cases likely
        margins = np.clip(-(tables[:, 1] - tables[:, 2]) / n + rng.normal(0, 0.02, len(tables)), 0.0, 0.5)
        for (a, bb, c, d), m in zip(tables.tolist(), margins.tolist(), strict=True):
            verdict = sq.sequential_decision_from_counts(design, look, a, bb, c, d, m)
            twin = int(sq.decide_counts(design, look, [a], [bb], [c], [d], m)[0])
            assert twin == {"fail": -1, "pass": 1}.get(verdict.outcome, 0), (look, a, bb, c, d, m)
            z_low, z_high = sq._effective_z(b.alpha_pass[look - 1]), sq._effective_z(b.alpha_block[look - 1])
            low, high = sq.newcombe_limits([a], [bb], [c], [d], z_low, z_high)
            assert float(low[0]) == pytest.approx(verdict.low, abs=1e-12)
            assert float(high[0]) == pytest.approx(verdict.high, abs=1e-12)


def test_one_look_is_todays_fixed_gate() -> None:
    design = sq.SequentialDesign.fixed(200)
    rng = np.random.default_rng(5)
    seen = set()
    for a, b, c, d in _random_tables(rng, 200, 400).tolist():
        iv = stats.paired_proportion_difference_interval_from_counts(a, b, c, d, confidence=0.95)
        m = 0.02
        expected = "fail" if iv.high < -m else "pass" if iv.low >= -m else "inconclusive"
        verdict = sq.sequential_decision_from_counts(design, 1, a, b, c, d, m)
        assert verdict.outcome == expected
        assert verdict.confidence == pytest.approx(0.95, abs=1e-12)
        assert (verdict.low, verdict.high) == pytest.approx((iv.low, iv.high), abs=1e-12)
        seen.add(expected)
    assert seen == {"fail", "pass", "inconclusive"}


def test_final_look_never_continues_and_earlier_looks_never_end_inconclusive() -> None:
    design = sq.SequentialDesign()
    rng = np.random.default_rng(7)
    for look, n in enumerate(design.stages, start=1):
        outcomes = set()
        for a, b, c, d in _random_tables(rng, n, 200).tolist():
            verdict = sq.sequential_decision_from_counts(design, look, a, b, c, d, 0.01)
            outcomes.add(verdict.outcome)
            if look == design.looks:
                assert verdict.outcome != "continue" and verdict.next_n is None
            else:
                assert verdict.outcome != "inconclusive"
                assert (verdict.next_n == design.stages[look]) == (verdict.outcome == "continue")
        assert ("inconclusive" in outcomes) == (look == design.looks)


def test_verdict_from_item_arrays_blocking_and_reason() -> None:
    design = sq.SequentialDesign(stages=(200, 500))
    rng = np.random.default_rng(1)
    prod = rng.random(500) < 0.55
    cand = prod.copy()
    flip = rng.random(500) < 0.15
    cand[flip] = ~cand[flip]
    # counts give a difference near 0: undecided at a 1-point margin
    first = sq.sequential_decision(design, 1, cand[:200].astype(int), prod[:200].astype(int), 0.01)
    assert first.outcome == "continue" and first.blocking and first.next_n == 500
    warn = sq.sequential_decision(design, 2, cand, prod, 0.01)
    block = sq.sequential_decision(design, 2, cand, prod, 0.01, policy="block")
    assert warn.outcome == block.outcome == "inconclusive"
    assert not warn.blocking and block.blocking
    # the reason states the gate's own power against the margin and the items it would need
    assert "power to pass a candidate with no true difference" in warn.reason
    assert f"{warn.items_to_pass_at_zero:,} items would give 80% power" in warn.reason
    assert warn.items_to_pass_at_zero == sq.items_needed(
        warn.discordance, 0.0, 0.01, alpha=0.025, power=0.8, decision="pass"
    )
    assert "McNemar" not in warn.reason and "newcombe-paired-score" in warn.reason
    # a clear regression fails at once
    worse = prod.copy()
    worse[np.flatnonzero(prod)[:100]] = False
    fail = sq.sequential_decision(design, 1, worse[:200], prod[:200], 0.01)
    assert fail.outcome == "fail" and fail.blocking and fail.high < -0.01
    with pytest.raises(ValueError, match="plans 500 shared items"):
        sq.sequential_decision(design, 2, cand[:400], prod[:400], 0.01)
    with pytest.raises(ValueError, match="look must be"):
        sq.sequential_decision(design, 3, cand, prod, 0.01)
    with pytest.raises(ValueError, match="0/1"):
        sq.sequential_decision(design, 1, np.full(200, 0.5), prod[:200], 0.01)


# ---------------------------------------------------------------------------------- error rates (simulated)


@pytest.mark.parametrize("agreement", [0.85, 0.94])
def test_false_block_and_false_pass_at_the_margin_stay_at_alpha(agreement: float) -> None:
    design = sq.SequentialDesign()
    result = sq.simulate(design, -0.01, agreement, runs=100_000, seed=21)
    tolerance = 3 * result.mcse(0.025)
    assert result.fail <= 0.025 + tolerance
    assert result.pass_ <= 0.025 + tolerance
    assert result.fail > 0.018  # and not wildly conservative: the design uses its alpha
    assert result.inconclusive == pytest.approx(1 - result.fail - result.pass_)


def test_five_point_regression_is_blocked_and_no_regression_is_not() -> None:
    design = sq.SequentialDesign()
    regression = sq.simulate(design, -0.05, 0.85, runs=20_000, seed=2)
    assert regression.fail >= 0.99
    assert regression.mean_items < 0.8 * design.max_items  # it stops early
    fixed_today = sq.simulate(sq.SequentialDesign.fixed(200), -0.05, 0.85, runs=20_000, seed=3)
    assert fixed_today.fail < 0.4  # what the brief says today's gate does
    none = sq.simulate(design, 0.0, 0.85, runs=20_000, seed=4)
    assert none.fail <= 0.005
    strict = sq.simulate(design, 0.0, 0.85, runs=20_000, seed=4, policy_inconclusive="block")
    assert strict.fail == none.fail and strict.blocked == pytest.approx(none.fail + none.inconclusive)


def test_simulation_replays_runs_through_sequential_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    real = sq.decide_counts

    def flipped(*args: object, **kwargs: object) -> np.ndarray:
        return -real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sq, "decide_counts", flipped)
    with pytest.raises(AssertionError, match="sequential_decision"):
        sq.simulate(sq.SequentialDesign.fixed(200), -0.08, 0.85, runs=200, seed=0, verify=200)


def test_simulation_matches_the_analytic_operating_characteristics() -> None:
    design = sq.SequentialDesign()
    for delta in (0.0, -0.02, -0.05):
        oc = sq.operating_characteristics(design, 0.15, delta, 0.01)
        sim = sq.simulate(design, delta, 0.85, runs=20_000, seed=8)
        assert sim.fail == pytest.approx(oc.fail, abs=4 * sim.mcse(oc.fail) + 0.005)
        assert sim.pass_ == pytest.approx(oc.pass_, abs=4 * sim.mcse(oc.pass_) + 0.005)
        assert sim.mean_items == pytest.approx(oc.expected_items, rel=0.02)


# ------------------------------------------------------------------------------------------------- power


def test_gate_power_is_monotone_and_alpha_at_the_margin() -> None:
    ns = [50, 100, 200, 500, 1000, 2000, 5000]
    powers = [sq.gate_power(n, 0.15, -0.05, 0.01) for n in ns]
    assert all(a < b for a, b in itertools.pairwise(powers))
    assert sq.gate_power(200, 0.15, -0.01, 0.01) == pytest.approx(0.025, abs=1e-12)
    assert sq.gate_power(200, 0.15, -0.01, 0.01, decision="pass") == pytest.approx(0.025, abs=1e-12)
    better = [sq.gate_power(n, 0.15, 0.0, 0.01) for n in ns]
    assert all(a > b for a, b in itertools.pairwise(better))  # blocking a good candidate: rarer
    with pytest.raises(ValueError, match="cannot exceed discordance"):
        sq.gate_power(200, 0.03, -0.05, 0.01)


@pytest.mark.parametrize(
    ("n", "agreement", "delta", "decision"),
    [
        (200, 0.85, -0.05, "fail"),
        (500, 0.85, -0.03, "fail"),
        (1000, 0.9, 0.01, "pass"),
        (2000, 0.85, 0.0, "pass"),
    ],
)
def test_gate_power_matches_a_direct_simulation(
    n: int, agreement: float, delta: float, decision: str
) -> None:
    result = sq.simulate(sq.SequentialDesign.fixed(n), delta, agreement, runs=20_000, seed=n)
    simulated = result.fail if decision == "fail" else result.pass_
    predicted = sq.gate_power(n, 1 - agreement, delta, 0.01, decision=decision)  # type: ignore[arg-type]
    assert simulated == pytest.approx(predicted, abs=4 * result.mcse(predicted) + 0.015)


def test_items_needed_is_the_smallest_n_reaching_the_power() -> None:
    for psi, delta, decision in [
        (0.15, -0.05, "fail"),
        (0.15, 0.0, "pass"),
        (0.3, -0.04, "fail"),
        (0.06, 0.01, "pass"),
    ]:
        n = sq.items_needed(psi, delta, 0.01, power=0.8, decision=decision)  # type: ignore[arg-type]
        assert sq.gate_power(n, psi, delta, 0.01, decision=decision) >= 0.8  # type: ignore[arg-type]
        assert sq.gate_power(n - 1, psi, delta, 0.01, decision=decision) < 0.8  # type: ignore[arg-type]
        closed = (
            (sps.norm.isf(0.025) + sps.norm.ppf(0.8)) * math.sqrt(psi - delta**2) / abs(delta + 0.01)
        ) ** 2
        assert abs(n - closed) <= 1
    with pytest.raises(ValueError, match="only fail"):
        sq.items_needed(0.15, 0.0, 0.01)  # no regression: nothing to block


def test_resolution_and_operating_characteristics_of_one_look() -> None:
    r = sq.gate_resolution(2000, 0.15)
    # at -m - r the gate blocks with (at least) 80% power, at -m + r it passes with at least 80%
    assert sq.gate_power(2000, 0.15, -0.01 - r, 0.01) >= 0.8
    assert sq.gate_power(2000, 0.15, -0.01 + r, 0.01, decision="pass") >= 0.8
    fixed = sq.SequentialDesign.fixed(500)
    oc = sq.operating_characteristics(fixed, 0.15, -0.04, 0.01)
    assert oc.fail == pytest.approx(sq.gate_power(500, 0.15, -0.04, 0.01), abs=1e-9)
    assert oc.pass_ == pytest.approx(sq.gate_power(500, 0.15, -0.04, 0.01, decision="pass"), abs=1e-9)
    seq = sq.operating_characteristics(sq.SequentialDesign(), 0.15, -0.01, 0.01)
    assert seq.fail == pytest.approx(0.025, abs=1e-6) and seq.pass_ == pytest.approx(0.025, abs=1e-6)
