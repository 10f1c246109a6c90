"""``error_rate``: a run whose items errored or could not be parsed beyond a bound neither passes nor fails a
checkpoint silently. Infrastructure errors (a sandbox that could not run a sample) are excluded from the score
and counted; unparsed answers are scored wrong and counted; their sum over the items attempted must stay at or
below ``max_rate``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.gate import GatePolicy, GateRule, Outcome, RuleVerdict, register_rule

NAME = "error_rate"
CHECK = "error_rate_within_limit"


class ErrorRateRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rate: float = Field(default=0.05, ge=0.0, le=1.0, description="errors + unparsed, over items attempted")
    count_unparsed: bool = Field(default=True, description="unparsed answers count as errors")
    suites: dict[str, float] = Field(default_factory=dict, description="per-suite max_rate")


def describe(section: ErrorRateRule, policy: GatePolicy, suite: str) -> str:
    limit = section.suites.get(suite, section.max_rate)
    counted = "infrastructure errors and unparsed answers" if section.count_unparsed else "infrastructure errors"
    return f"Blocks when {counted} exceed {limit:.1%} of the items attempted."


def evaluate(section: ErrorRateRule, scores: Mapping[str, Any], policy: GatePolicy, suite: str) -> RuleVerdict:
    limit = section.suites.get(suite, section.max_rate)
    errors = int(scores.get("errors") or 0)
    unparsed = int(scores.get("unparsed") or 0) if section.count_unparsed else 0
    attempted = int(scores.get("n_total") or (int(scores.get("n") or 0) + errors))
    bad = errors + unparsed
    rate = bad / attempted if attempted else 1.0
    outcome: Outcome
    detail = f"{errors} infrastructure errors and {unparsed} unparsed answers in {attempted} items ({rate:.1%})"
    if attempted == 0:
        outcome, blocking, reason = "fail", True, "no item was scored: the run produced nothing to decide on"
    elif rate > limit:
        outcome, blocking, reason = "fail", True, f"{detail}, above the {limit:.1%} limit: fix the run, then re-run"
    else:
        outcome, blocking, reason = "pass", False, f"{detail}, within the {limit:.1%} limit"
    return RuleVerdict(
        rule=NAME, suite=suite, outcome=outcome, blocking=blocking, observed=rate, low=rate, high=rate,
        threshold=limit, n=attempted, reason=reason,
    )  # fmt: skip


RULE = register_rule(
    GateRule(name=NAME, check_name=CHECK, target="scores", section=ErrorRateRule, evaluate=evaluate, describe=describe)
)
