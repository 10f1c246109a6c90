"""``judge_win_rate`` (blocking, pairwise suites only): the candidate's win-rate against production, judged in both
orders by the LLM judge, must be at least ``min_win_rate`` (50%) with the CI's lower bound at or above
``min_ci_low`` (45%), and the judge must be trusted: its Cohen's kappa against human labels must exceed
``min_kappa`` (0.7). An unvalidated judge neither passes nor fails a checkpoint: the verdict is "judge not
validated (kappa = ...)", and ``unvalidated`` says whether that warns or blocks. A judge of the candidate's model
family is a self-preference risk; ``self_preference`` says whether that warns or blocks.

* **pass**: validated judge, win-rate >= min_win_rate and CI low >= min_ci_low;
* **fail** (blocks): validated judge, win-rate below min_win_rate;
* **inconclusive** (blocks): win-rate at or above min_win_rate but the CI reaches below min_ci_low: the reason
  states the n needed to decide;
* **inconclusive** (the policy's ``unvalidated``): the judge is not validated, or the opponent was the reference
  answers while a production exists (production has no answers on the suite).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from scipy import stats as scipy_stats

from eval_assets.gate import GatePolicy, GateRule, Outcome, RuleVerdict, register_rule
from eval_assets.human_eval import MIN_HUMAN_LABELS, trusted_kappa
from eval_assets.kinds import get_kind

NAME = "judge_win_rate"
CHECK = "judge_win_rate_at_least_parity"


class JudgeWinRateRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_win_rate: float = Field(
        default=0.5, ge=0.0, le=1.0, description="win-rate (ties as half) at least this"
    )
    min_ci_low: float = Field(default=0.45, ge=0.0, le=1.0, description="the CI's lower bound at least this")
    min_kappa: float = Field(
        default=0.7, ge=-1.0, le=1.0, description="the judge counts only when kappa exceeds this"
    )
    min_human_labels: int = Field(
        default=MIN_HUMAN_LABELS,
        ge=1,
        description="in-house labels (people's consensus items on this suite) "
        "needed before their kappa counts; the judge is then trusted on the lower of the two",
    )
    unvalidated: Literal["warn", "block"] = Field(
        default="warn", description="an unvalidated judge: warn or block"
    )
    self_preference: Literal["warn", "block"] = Field(
        default="warn", description="a judge of the candidate's family: warn (flag it) or block"
    )


def describe(section: JudgeWinRateRule, policy: GatePolicy, suite: str) -> str:
    return (
        f"Pass when the judge (validated: Cohen's kappa > {section.min_kappa} against human labels, the reference "
        f"set's and, from {section.min_human_labels} labelled items, the team's own) gives the "
        f"candidate a win-rate of at least {section.min_win_rate:.0%} against production (both orders, ties as "
        f"half) with the {policy.confidence:.0%} CI's lower bound at or above {section.min_ci_low:.0%}; an "
        f"unvalidated judge: {section.unvalidated}."
    )


def n_needed(estimate: float, sd: float, floor: float, confidence: float) -> int | None:
    """Prompts needed for the CI's lower bound to clear ``floor`` at this estimate and per-prompt spread (normal
    approximation); ``None`` when the estimate itself is at or below the floor."""
    if estimate <= floor or sd <= 0:
        return None
    z = float(scipy_stats.norm.isf((1 - confidence) / 2))
    return math.ceil((z * sd / (estimate - floor)) ** 2)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _details(scores: Mapping[str, Any]) -> dict[str, Any]:
    raw = scores.get("details") or "{}"
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def evaluate(
    section: JudgeWinRateRule, scores: Mapping[str, Any], policy: GatePolicy, suite: str
) -> RuleVerdict:
    details = _details(scores)
    n = int(scores.get("n") or 0)
    estimate, low, high = (_number(scores.get(key)) for key in ("score", "ci_low", "ci_high"))
    kappa, trust = trusted_kappa(
        details.get("judge_kappa"),
        details.get("human_kappa"),
        int(details.get("human_labelled") or 0),
        section.min_human_labels,
    )
    ties = int(details.get("ties") or 0)
    # per-prompt spread of outcomes in {0, 0.5, 1}: from the counts
    wins, losses = int(details.get("wins") or 0), int(details.get("losses") or 0)
    values = [1.0] * wins + [0.5] * ties + [0.0] * losses
    mean = sum(values) / len(values) if values else math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    needed = n_needed(estimate, sd, section.min_ci_low, policy.confidence) if n else None
    diagnostics = {
        key: details.get(key)
        for key in ("position_consistency", "first_position_preference", "longer_answer_preference",
                    "length_controlled_win_rate", "wins", "ties", "losses", "errors", "cost_usd")
    }  # fmt: skip
    evidence = {
        "production": details.get("production"), "production_model_hash": details.get("production_model_hash"),
        "opponent": details.get("opponent"), "judge": details.get("judge_id"), "kappa": kappa,
        "reference_kappa": details.get("judge_kappa"), "human_kappa": details.get("human_kappa"),
        "human_labelled": details.get("human_labelled"), "trust": trust,
        "judge_validation": details.get("judge_validation"), "n_needed": needed,
        "self_preference": details.get("independence"), "diagnostics": json.dumps(diagnostics, sort_keys=True),
    }  # fmt: skip

    def fmt(value: Any, spec: str = ".3f") -> str:
        return (
            "n/a"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else format(value, spec)
        )

    numbers = (
        f"win-rate {fmt(estimate)} ({policy.confidence:.0%} CI [{fmt(low)}, {fmt(high)}], {scores.get('ci_method')}, "
        f"n={n} prompts: {wins} won, {ties} tied, {losses} lost, {diagnostics['errors'] or 0} errors) against "
        f"{details.get('opponent')} by judge {details.get('judge_id')}; position consistency "
        f"{fmt(details.get('position_consistency'), '.0%')}, first-position preference "
        f"{fmt(details.get('first_position_preference'), '.0%')}, longer-answer preference "
        f"{fmt(details.get('longer_answer_preference'), '.0%')}, length-controlled win-rate "
        f"{fmt(details.get('length_controlled_win_rate'))}; cost ${fmt(details.get('cost_usd'), '.4f')}"
    )

    def verdict(outcome: Outcome, blocking: bool, reason: str) -> RuleVerdict:
        return RuleVerdict(
            rule=NAME, suite=suite, outcome=outcome, blocking=blocking, observed=estimate, low=low, high=high,
            threshold=section.min_win_rate, n=n, reason=reason, evidence=evidence,
        )  # fmt: skip

    production = details.get("production")
    if production is None:
        return verdict("no_production", False, f"no production checkpoint yet; {numbers}")
    if scores.get("checkpoint") == production:
        return verdict("is_production", False, f"this checkpoint is production; {numbers}")
    if n == 0:
        return verdict(
            "inconclusive",
            True,
            f"no verdict: nothing to compare against ({details.get('judge_validation')}); {numbers}",
        )
    unvalidated = section.unvalidated == "block"
    if details.get("opponent") != production:
        return verdict("inconclusive", unvalidated, f"judged against the reference answers, not production "
                       f"{production} (it has no answers on {suite}: evaluate it); {numbers}")  # fmt: skip
    if kappa is None or not kappa > section.min_kappa:
        shown = "none on record" if kappa is None else f"{kappa:.3f}"
        return verdict("inconclusive", unvalidated, f"judge not validated (kappa = {shown}, needs > "
                       f"{section.min_kappa}; {details.get('judge_validation')}; {trust}): its verdict does not "
                       f"count; {numbers}")  # fmt: skip
    if details.get("self_preference_risk") and section.self_preference == "block":
        return verdict("inconclusive", True, f"{details.get('independence')}; {numbers}")
    risk = f"; {details.get('independence')}" if details.get("self_preference_risk") else ""
    if estimate < section.min_win_rate:
        return verdict("fail", True, f"win-rate below {section.min_win_rate:.0%}: {numbers}{risk}")
    if low < section.min_ci_low:
        more = f"about {needed} prompts would decide" if needed else "more prompts are needed"
        return verdict(
            "inconclusive", True, f"CI lower bound below {section.min_ci_low:.0%} ({more}): {numbers}{risk}"
        )
    return verdict("pass", False, f"at least parity with production: {numbers}{risk}")


RULE = register_rule(
    GateRule(
        name=NAME,
        check_name=CHECK,
        target="scores",
        section=JudgeWinRateRule,
        evaluate=evaluate,
        describe=describe,
        applies_to=lambda kind: get_kind(kind).head_to_head,
        compares_to_production=True,
    )
)
