"""The gate asks for more items instead of shrugging: the planned looks of one suite's comparison, and the
loop that evaluates the next stage until the group-sequential rule decides or the plan is used up. Pure: the
caller supplies ``scores_at(n)``, the paired per-item scores of both checkpoints on the first ``n`` items of the
prefix-stable selection (the prediction cache makes earlier stages free)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from eval_assets.gate import GatePolicy
from eval_assets.sequential import SequentialDesign, SequentialVerdict, sequential_decision

ScoresAt = Callable[[int], tuple[np.ndarray, np.ndarray]]


def gate_design(policy: GatePolicy, first_n: int, available: int, *, grow: bool) -> SequentialDesign:
    """The looks for a comparison that starts at ``first_n`` shared items of a suite with ``available`` items:
    ``first_n`` alone (the fixed-size gate) without growth; otherwise ``first_n``, the policy's stages above it,
    and a final look at ``min(max_items, available)``. Fixed before any data are seen, as alpha spending
    requires. Each bound's one-sided alpha is ``(1 - confidence) / 2``."""
    alpha = (1.0 - policy.confidence) / 2.0
    cap = min(policy.sequential.max_items, available)
    if not grow or first_n >= cap:
        return SequentialDesign.fixed(first_n, alpha_block=alpha, alpha_pass=alpha)
    stages = (first_n, *(s for s in policy.sequential.stages if first_n < s < cap), cap)
    return SequentialDesign(
        stages=stages, alpha_block=alpha, alpha_pass=alpha, spending=policy.sequential.spending
    )


@dataclass(frozen=True)
class GrowthResult:
    verdict: SequentialVerdict  # the deciding look (or the final one)
    looks: tuple[SequentialVerdict, ...]  # every look taken, in order
    cand: np.ndarray  # the paired per-item scores of the deciding look
    prod: np.ndarray


def decide_sequentially(
    design: SequentialDesign,
    scores_at: ScoresAt,
    *,
    margin: float,
    inconclusive: str,
    power: float,
    progress: Callable[[str], None] = lambda _line: None,
) -> GrowthResult:
    """Look at each planned stage in turn, stopping at the first that decides (fail or pass)."""
    looks: list[SequentialVerdict] = []
    policy = "block" if inconclusive == "block" else "warn"
    for look, n in enumerate(design.stages, start=1):
        cand, prod = scores_at(n)
        verdict = sequential_decision(design, look, cand, prod, margin, policy=policy, power=power)  # type: ignore[arg-type]
        looks.append(verdict)
        progress(f"look {look}/{design.looks} at {n} items: {verdict.outcome}")
        if verdict.outcome != "continue":
            break
    return GrowthResult(verdict=looks[-1], looks=tuple(looks), cand=cand, prod=prod)
