"""Gate rules as pure functions over comparisons, and the versioned policy that parametrizes them.

``no_regression_vs_production`` reads the paired-bootstrap CI of (candidate − production) on shared items:

* **fail** (blocks promotion) when the CI's upper bound is below −margin: the data show a regression
  larger than the margin;
* **pass** when the CI's lower bound is at or above −margin: any regression is within the margin;
* **inconclusive** otherwise: the suite is too small to decide at this margin; the policy says whether that
  warns or blocks, and the verdict says what the sample can detect.

The CI is Newcombe's paired score interval by default (``ci_method`` in the policy), or a paired percentile
bootstrap.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.hashing import hash_value
from eval_assets.yaml_models import parse_yaml_model

Outcome = Literal["pass", "fail", "inconclusive", "no_production", "is_production"]


class GatePolicyError(ValueError):
    """The gate policy file is malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegressionRule(_Strict):
    margin: float = Field(ge=0.0, lt=1.0)
    inconclusive: Literal["warn", "block"] = "warn"


class RegressionPolicy(RegressionRule):
    suites: dict[str, RegressionRule] = {}

    def for_suite(self, suite: str) -> RegressionRule:
        return self.suites.get(suite, RegressionRule(margin=self.margin, inconclusive=self.inconclusive))


class GatePolicy(_Strict):
    version: int = Field(ge=1)
    confidence: float = Field(gt=0.5, lt=1.0)
    ci_method: Literal["newcombe", "bootstrap"] = "newcombe"
    bootstrap_resamples: int = Field(ge=1000)
    seed: int = 0
    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    no_regression_vs_production: RegressionPolicy

    @property
    def code_version(self) -> str:
        return hash_value(self.model_dump(mode="json"))[:16]


def load_gate_policy(path: Path | None = None) -> GatePolicy:
    """The gate policy: ``path``, or the packaged ``eval_assets/policy/gate.yaml``."""
    source = path or Path(str(resources.files("eval_assets.policy").joinpath("gate.yaml")))
    text = source.read_text(encoding="utf-8")
    return parse_yaml_model(GatePolicy, text, source=str(source), what="gate policy", error=GatePolicyError)


@dataclass(frozen=True)
class Comparison:
    """A candidate against production on the items both have scores for."""

    suite: str
    candidate: str
    production: str | None
    n: int
    candidate_accuracy: float
    production_accuracy: float
    difference: float
    low: float
    high: float
    confidence: float
    method: str
    improvements: int  # candidate right, production wrong
    regressions: int  # candidate wrong, production right
    mcnemar_p: float
    mcnemar_method: str
    minimum_detectable_effect: float
    is_production: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RuleVerdict:
    rule: str
    suite: str
    outcome: Outcome
    blocking: bool
    observed: float
    low: float
    high: float
    threshold: float
    n: int
    reason: str

    @property
    def passed(self) -> bool:
        return not self.blocking

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CI_USAGE = (
    "Fail when the upper bound of the {conf:.0%} {method} CI of (candidate - production) is below "
    "-{margin:.3f} (a regression beyond the margin is shown); pass when its lower bound is at or above "
    "-{margin:.3f}; otherwise inconclusive ({inconclusive})."
)


def describe_ci_usage(policy: GatePolicy, suite: str) -> str:
    """How ``no_regression_vs_production`` uses the CI for ``suite``, in words, for the check's metadata."""
    rule = policy.no_regression_vs_production.for_suite(suite)
    method = "Newcombe paired-score" if policy.ci_method == "newcombe" else "paired percentile-bootstrap"
    return CI_USAGE.format(conf=policy.confidence, method=method, margin=rule.margin, inconclusive=rule.inconclusive)


def no_regression_vs_production(comparison: Comparison, policy: GatePolicy) -> RuleVerdict:
    rule = policy.no_regression_vs_production.for_suite(comparison.suite)
    threshold = -rule.margin

    def verdict(outcome: Outcome, blocking: bool, reason: str) -> RuleVerdict:
        return RuleVerdict(
            rule="no_regression_vs_production", suite=comparison.suite, outcome=outcome, blocking=blocking,
            observed=comparison.difference, low=comparison.low, high=comparison.high, threshold=threshold,
            n=comparison.n, reason=reason,
        )  # fmt: skip

    interval = (
        f"difference {comparison.difference:+.3f} "
        f"({comparison.confidence:.0%} CI [{comparison.low:+.3f}, {comparison.high:+.3f}], n={comparison.n}, "
        f"{comparison.regressions} items lost / {comparison.improvements} gained"
        + ("" if math.isnan(comparison.mcnemar_p) else f", McNemar p={comparison.mcnemar_p:.3g}")
        + ")"
    )
    if comparison.production is None:
        return verdict("no_production", False, "no production checkpoint yet; set one with `evalgate promote --baseline NAME`")
    if comparison.is_production:
        return verdict("is_production", False, "this checkpoint is production")
    if comparison.high < threshold:
        return verdict("fail", True, f"regression beyond the {rule.margin:.1%} margin: {interval}")
    if comparison.low >= threshold:
        return verdict("pass", False, f"no regression beyond {rule.margin:.1%}: {interval}")
    mde = comparison.minimum_detectable_effect
    if math.isnan(mde):
        resolution = ""
    elif mde < 1.0:
        resolution = f"; {comparison.n} items can detect a difference of {mde:.1%} at {policy.power:.0%} power"
    else:
        resolution = f"; {comparison.n} items cannot detect any difference at {policy.power:.0%} power"
    too_small = f"too few items to decide at a {rule.margin:.1%} margin: {interval}{resolution}"
    return verdict("inconclusive", rule.inconclusive == "block", too_small)


@dataclass(frozen=True)
class CheckStatus:
    """What the event log says about one blocking check of a checkpoint, as re-read by ``promotion``."""

    suite: str
    check: str
    found: bool
    passed: bool
    blocking_failure: bool  # failed with ERROR severity
    current: bool  # evaluated against the latest materialization of its asset
    reason: str
    outcome: str = ""  # the rule's outcome (pass, fail, inconclusive, ...), from the check's metadata


PromotionOutcome = Literal["promoted", "blocked", "awaiting_baseline", "already_production"]


@dataclass(frozen=True)
class PromotionDecision:
    outcome: PromotionOutcome
    reason: str
    checks: tuple[CheckStatus, ...]

    @property
    def moves_pointer(self) -> bool:
        return self.outcome == "promoted"


def decide_promotion(checkpoint: str, production: str | None, checks: list[CheckStatus]) -> PromotionDecision:
    """Promote only when every blocking check was found, is current, and did not fail with ERROR severity."""
    problems = []
    for status in checks:
        if not status.found:
            problems.append(f"{status.suite}: check {status.check} has no result for this checkpoint")
        elif not status.current:
            problems.append(f"{status.suite}: check {status.check} ran against an older materialization")
        elif status.blocking_failure:
            problems.append(f"{status.suite}: {status.reason}")
    if production is None:
        return PromotionDecision(
            "awaiting_baseline",
            "no production checkpoint yet; set the first one with `evalgate promote --baseline NAME`",
            tuple(checks),
        )
    if production == checkpoint:
        return PromotionDecision("already_production", f"{checkpoint} is production", tuple(checks))
    if problems:
        return PromotionDecision("blocked", "; ".join(problems), tuple(checks))
    warnings = [f"{s.suite}: {s.reason}" for s in checks if s.outcome == "inconclusive"]
    reason = "every blocking check passed" + (f" (warnings: {'; '.join(warnings)})" if warnings else "")
    return PromotionDecision("promoted", reason, tuple(checks))
