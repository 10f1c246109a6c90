"""``error_rate``: a run whose items errored or could not be parsed beyond a bound neither passes nor fails a
checkpoint silently. Infrastructure errors (a sandbox that could not run a sample) are excluded from the score
and counted: their share of the items attempted must stay at or below ``max_rate``. Unparsed answers are scored
wrong and counted: a share above ``max_unparsed_rate`` means a broken template, stop sequence or parser rather
than a weak model, and blocks too. The check does not stop the comparison in its run (the numbers stay
visible); ``promotion`` refuses its failure like any other rule's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.gate import GatePolicy, GateRule, Outcome, RuleVerdict, register_rule

NAME = "error_rate"
CHECK = "error_rate_within_limit"


class SuiteLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    max_unparsed_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class ErrorRateRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rate: float = Field(
        default=0.05, ge=0.0, le=1.0, description="infrastructure errors / items attempted"
    )
    max_unparsed_rate: float = Field(
        default=0.5, ge=0.0, le=1.0, description="unparsed answers / items scored"
    )
    suites: dict[str, SuiteLimits] = Field(default_factory=dict, description="per-suite limits")

    def limits(self, suite: str) -> tuple[float, float]:
        own = self.suites.get(suite)
        errors = own.max_rate if own and own.max_rate is not None else self.max_rate
        unparsed = (
            own.max_unparsed_rate if own and own.max_unparsed_rate is not None else self.max_unparsed_rate
        )
        return errors, unparsed


def describe(section: ErrorRateRule, policy: GatePolicy, suite: str) -> str:
    errors, unparsed = section.limits(suite)
    return (
        f"Blocks promotion when infrastructure errors exceed {errors:.1%} of the items attempted, or unparsed "
        f"answers exceed {unparsed:.1%} of the items scored."
    )


def evaluate(
    section: ErrorRateRule, scores: Mapping[str, Any], policy: GatePolicy, suite: str
) -> RuleVerdict:
    max_errors, max_unparsed = section.limits(suite)
    errors = int(scores.get("errors") or 0)
    unparsed = int(scores.get("unparsed") or 0)
    scored = int(scores.get("n") or 0)
    attempted = int(scores.get("n_total") or (scored + errors))
    error_rate = errors / attempted if attempted else 1.0
    unparsed_rate = unparsed / scored if scored else 0.0
    outcome: Outcome = "pass"
    detail = (
        f"{errors} infrastructure errors in {attempted} items attempted ({error_rate:.1%}, limit {max_errors:.1%}); "
        f"{unparsed} unparsed answers in {scored} scored ({unparsed_rate:.1%}, limit {max_unparsed:.1%})"
    )
    if attempted == 0 or scored == 0:
        outcome, reason = "fail", f"no item was scored: the run produced nothing to decide on ({detail})"
    elif error_rate > max_errors:
        outcome, reason = (
            "fail",
            f"too many infrastructure errors: {detail}; fix the infrastructure and re-run",
        )
    elif unparsed_rate > max_unparsed:
        outcome, reason = (
            "fail",
            f"too many unparsed answers (a broken template, stop sequence or parser?): {detail}",
        )
    else:
        reason = f"within limits: {detail}"
    return RuleVerdict(
        rule=NAME, suite=suite, outcome=outcome, blocking=outcome == "fail", observed=error_rate, low=error_rate,
        high=error_rate, threshold=max_errors, n=attempted, reason=reason,
    )  # fmt: skip


RULE = register_rule(
    GateRule(
        name=NAME,
        check_name=CHECK,
        target="scores",
        section=ErrorRateRule,
        evaluate=evaluate,
        describe=describe,
        blocks_downstream=False,
    )
)
