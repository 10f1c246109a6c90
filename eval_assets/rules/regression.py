"""``no_regression_vs_production``: the paired CI of (candidate − production) on shared items against a margin.

* **fail** (blocks) when the CI's upper bound is below −margin: a regression beyond the margin is shown;
* **pass** when its lower bound is at or above −margin;
* **inconclusive** otherwise: the policy says whether that warns or blocks (``critical`` suites block), and
  the reason states the gate's own power against the margin and the items it would need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from scipy import stats as scipy_stats

from eval_assets.gate import GatePolicy, GateRule, Outcome, RuleVerdict, register_rule
from eval_assets.kinds import get_kind

NAME = "no_regression_vs_production"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegressionRule(_Strict):
    margin: float = Field(default=0.01, ge=0.0, lt=1.0)
    inconclusive: Literal["warn", "block"] = "warn"
    critical: bool = Field(default=False, description="inconclusive on the full suite blocks")

    @property
    def blocks_when_inconclusive(self) -> bool:
        return self.critical or self.inconclusive == "block"


class RegressionPolicy(RegressionRule):
    suites: dict[str, RegressionRule] = {}

    def for_suite(self, suite: str) -> RegressionRule:
        default = RegressionRule(margin=self.margin, inconclusive=self.inconclusive, critical=self.critical)
        return self.suites.get(suite, default)


CI_USAGE = (
    "Fail when the upper bound of the {conf:.0%} {method} CI of (candidate - production) is below "
    "-{margin:.3f} (a regression beyond the margin is shown); pass when its lower bound is at or above "
    "-{margin:.3f}; otherwise inconclusive ({inconclusive})."
)


def describe(section: RegressionPolicy, policy: GatePolicy, suite: str) -> str:
    """How the rule uses the CI for ``suite``, in words, for the check's description and metadata."""
    rule = section.for_suite(suite)
    method = "Newcombe paired-score" if policy.ci_method == "newcombe" else "paired percentile-bootstrap"
    inconclusive = "block" if rule.blocks_when_inconclusive else "warn"
    return CI_USAGE.format(
        conf=policy.confidence, method=method, margin=rule.margin, inconclusive=inconclusive
    )


def power_note(n: int, discordant: int, margin: float, confidence: float, power: float) -> str:
    """The gate's own power against the margin at ``n`` items, and the items it would need (normal
    approximation of the paired difference; discordance floored at 2/n so near-identical checkpoints do not
    claim unlimited resolution from a handful of items)."""
    if n <= 0 or margin <= 0:
        return "no power: no shared items or a zero margin"
    psi = min(1.0, max(discordant / n, 2.0 / n))
    z = float(scipy_stats.norm.isf((1 - confidence) / 2))
    se = math.sqrt(psi / n)
    pass_power = float(scipy_stats.norm.cdf(margin / se - z))
    block_power = float(scipy_stats.norm.cdf(margin / se - z))  # a regression of 2x the margin, symmetric
    needed = math.ceil(psi * ((z + float(scipy_stats.norm.isf(1 - power))) / margin) ** 2)
    return (
        f"at {n} items and {psi:.1%} discordance the gate shows 'no regression beyond {margin:.1%}' for an unchanged "
        f"candidate with probability {pass_power:.0%}, and blocks a true {2 * margin:.1%} regression with probability "
        f"{block_power:.0%}; {power:.0%} power needs about {needed} items"
    )


def _power_note(comparison: Mapping[str, Any], margin: float, policy: GatePolicy) -> str:
    discordant = int(comparison["improvements"]) + int(comparison["regressions"])
    return power_note(int(comparison["n"]), discordant, margin, policy.confidence, policy.power)


def evaluate(
    section: RegressionPolicy, comparison: Mapping[str, Any], policy: GatePolicy, suite: str
) -> RuleVerdict:
    rule = section.for_suite(suite)
    threshold = -rule.margin
    evidence = {
        "production": comparison.get("production"),
        "production_model_hash": comparison.get("production_model_hash"),
    }

    def verdict(outcome: Outcome, blocking: bool, reason: str) -> RuleVerdict:
        return RuleVerdict(
            rule=NAME, suite=suite, outcome=outcome, blocking=blocking, observed=float(comparison["difference"]),
            low=float(comparison["low"]), high=float(comparison["high"]), threshold=threshold,
            n=int(comparison["n"]), reason=reason, evidence=evidence,
        )  # fmt: skip

    mcnemar = comparison.get("mcnemar_p")
    interval = (
        f"difference {comparison['difference']:+.3f} "
        f"({comparison['confidence']:.0%} {comparison['method']} CI [{comparison['low']:+.3f}, "
        f"{comparison['high']:+.3f}], n={comparison['n']}, "
        f"{comparison['regressions']} items lost / {comparison['improvements']} gained"
        + ("" if mcnemar is None or math.isnan(mcnemar) else f", McNemar p={mcnemar:.3g}")
        + ")"
    )
    if comparison.get("production") is None:
        return verdict(
            "no_production",
            False,
            "no production checkpoint yet; set one with `evalgate promote --baseline NAME`",
        )
    if comparison.get("is_production"):
        return verdict("is_production", False, "this checkpoint is production")
    looks = comparison.get("looks")
    if looks:
        interval += f"; looks (items: outcome) {looks}; {comparison.get('design')}"
    if comparison["high"] < threshold:
        return verdict("fail", True, f"regression beyond the {rule.margin:.1%} margin: {interval}")
    if comparison["low"] >= threshold:
        return verdict("pass", False, f"no regression beyond {rule.margin:.1%}: {interval}")
    blocks = rule.blocks_when_inconclusive
    if comparison.get("sequential_reason"):
        return verdict("inconclusive", blocks, str(comparison["sequential_reason"]))
    note = _power_note(comparison, rule.margin, policy)
    too_small = f"too few items to decide at a {rule.margin:.1%} margin: {interval}; {note}"
    return verdict("inconclusive", blocks, too_small)


RULE = register_rule(
    GateRule(
        name=NAME,
        check_name=NAME,
        target="comparison",
        section=RegressionPolicy,
        evaluate=evaluate,
        describe=describe,
        compares_to_production=True,
        applies_to=lambda kind: not get_kind(kind).head_to_head,  # a head-to-head score already compares
    )
)
