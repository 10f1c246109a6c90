"""Planned growth of an inconclusive comparison: the looks, and the loop that stops at the first decision."""

import numpy as np
import pytest

from eval_assets.gate import load_gate_policy
from eval_assets.growth import decide_sequentially, gate_design

POLICY = load_gate_policy()


def test_without_growth_the_design_is_the_fixed_gate() -> None:
    design = gate_design(POLICY, 200, 570, grow=False)
    assert design.stages == (200,) and design.alpha_block == pytest.approx(0.025)


@pytest.mark.parametrize(
    ("first", "available", "stages"),
    [
        (200, 570, (200, 500, 570)),
        (16, 14042, (16, 200, 500, 1000, 2000)),
        (200, 200, (200,)),
        (8, 1319, (8, 200, 500, 1000, 1319)),
    ],
)
def test_growth_plans_the_policy_stages_capped_at_the_suite(
    first: int, available: int, stages: tuple[int, ...]
) -> None:
    assert gate_design(POLICY, first, available, grow=True).stages == stages


def _paired(n: int, difference: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prod = rng.random(n) < 0.6
    flip_down = rng.random(n) < max(0.0, -difference) + 0.05
    flip_up = rng.random(n) < 0.05
    cand = np.where(prod & flip_down, False, np.where(~prod & flip_up, True, prod))
    return cand.astype(float), prod.astype(float)


def test_a_clear_regression_stops_at_the_first_look_that_shows_it() -> None:
    cand, prod = _paired(2000, -0.10, seed=1)
    seen: list[int] = []

    def scores_at(n: int) -> tuple[np.ndarray, np.ndarray]:
        seen.append(n)
        return cand[:n], prod[:n]

    design = gate_design(POLICY, 200, 2000, grow=True)
    result = decide_sequentially(design, scores_at, margin=0.01, inconclusive="warn", power=0.8)
    assert result.verdict.outcome == "fail"
    assert seen == [look.n for look in result.looks] and len(seen) < design.looks, "stopped early"
    assert all(look.outcome == "continue" for look in result.looks[:-1])


def test_an_undecided_comparison_uses_every_look_then_follows_the_policy() -> None:
    cand, prod = _paired(570, -0.01, seed=3)  # near the margin: this draw decides at no look

    def scores_at(n: int) -> tuple[np.ndarray, np.ndarray]:
        return cand[:n], prod[:n]

    design = gate_design(POLICY, 200, 570, grow=True)
    result = decide_sequentially(design, scores_at, margin=0.01, inconclusive="block", power=0.8)
    assert result.verdict.outcome == "inconclusive" and result.verdict.blocking
    assert [look.n for look in result.looks] == [200, 500, 570]
    assert "final look" in result.verdict.reason
