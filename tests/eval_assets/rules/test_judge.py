"""``judge_win_rate``: counts only with a validated judge, decides on the win-rate and its CI, states n and the
diagnostics; and the rule set of a pairwise suite (no regression rule, no comparison asset)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eval_assets.defs.promotion import expected_checks
from eval_assets.gate import load_gate_policy, registered_rules
from eval_assets.rules.judge import JudgeWinRateRule, evaluate, n_needed

POLICY = load_gate_policy()
SECTION = POLICY.section("judge_win_rate")


def scores(
    score: float, low: float, high: float, *, wins: int, ties: int, losses: int, **details: Any
) -> dict[str, Any]:
    base = {"production": "prod", "production_model_hash": "sha256:p", "opponent": "prod", "judge_id": "anthropic:x",
            "judge_kappa": 0.82, "judge_validation": "kappa 0.820 on hhh_alignment (117 pairs)", "wins": wins,
            "ties": ties, "losses": losses, "errors": 0, "position_consistency": 0.7,
            "first_position_preference": 0.55, "longer_answer_preference": 0.6, "length_controlled_win_rate": 0.52,
            "cost_usd": 1.25, "self_preference_risk": False, "independence": "judge family claude differs"}  # fmt: skip
    return {"checkpoint": "cand", "score": score, "ci_low": low, "ci_high": high, "n": wins + ties + losses,
            "ci_method": "percentile bootstrap", "details": json.dumps(base | details)}  # fmt: skip


def test_a_validated_judge_at_parity_passes_with_its_numbers() -> None:
    v = evaluate(SECTION, scores(0.56, 0.47, 0.65, wins=50, ties=12, losses=38), POLICY, "s")
    assert (v.outcome, v.blocking) == ("pass", False)
    assert (
        "win-rate 0.560" in v.reason
        and "n=100 prompts" in v.reason
        and "position consistency 70%" in v.reason
    )
    assert v.evidence["kappa"] == 0.82 and v.evidence["production"] == "prod"


def test_below_parity_fails() -> None:
    v = evaluate(SECTION, scores(0.40, 0.33, 0.47, wins=30, ties=20, losses=50), POLICY, "s")
    assert (v.outcome, v.blocking) == ("fail", True)


def test_parity_with_a_wide_ci_blocks_and_states_the_n_needed() -> None:
    v = evaluate(SECTION, scores(0.52, 0.38, 0.66, wins=10, ties=6, losses=9), POLICY, "s")
    assert (v.outcome, v.blocking) == ("inconclusive", True)
    assert v.evidence["n_needed"] and v.evidence["n_needed"] > 25
    assert f"about {v.evidence['n_needed']} prompts would decide" in v.reason


@pytest.mark.parametrize("kappa", [None, 0.31, 0.7])
def test_an_unvalidated_judge_never_decides(kappa: float | None) -> None:
    row = scores(0.9, 0.8, 0.95, wins=90, ties=0, losses=10, judge_kappa=kappa)
    warn = evaluate(SECTION, row, POLICY, "s")
    assert (warn.outcome, warn.blocking) == ("inconclusive", False)
    assert (
        "judge not validated (kappa = " + ("none on record" if kappa is None else f"{kappa:.3f}")
        in warn.reason
    )
    block = evaluate(JudgeWinRateRule(unvalidated="block"), row, POLICY, "s")
    assert (block.outcome, block.blocking) == ("inconclusive", True)
    losing = evaluate(
        SECTION, scores(0.1, 0.05, 0.2, wins=5, ties=0, losses=45, judge_kappa=kappa), POLICY, "s"
    )
    assert (
        losing.outcome == "inconclusive" and not losing.blocking
    )  # an unvalidated judge cannot fail it either


def test_judged_against_references_while_a_production_exists_is_not_a_comparison_with_production() -> None:
    v = evaluate(SECTION, scores(0.8, 0.7, 0.9, wins=8, ties=0, losses=2, opponent="reference"), POLICY, "s")
    assert v.outcome == "inconclusive" and "not production prod" in v.reason


def test_no_production_and_production_itself() -> None:
    assert (
        evaluate(
            SECTION, scores(0.5, 0.4, 0.6, wins=1, ties=0, losses=1, production=None), POLICY, "s"
        ).outcome
        == "no_production"
    )
    row = scores(0.5, 0.4, 0.6, wins=1, ties=0, losses=1) | {"checkpoint": "prod"}
    assert evaluate(SECTION, row, POLICY, "s").outcome == "is_production"


def test_self_preference_warns_or_blocks_per_policy() -> None:
    row = scores(0.6, 0.5, 0.7, wins=60, ties=0, losses=40, self_preference_risk=True,
                 independence="self-preference risk: judge family smollm is that of candidate cand")  # fmt: skip
    assert evaluate(SECTION, row, POLICY, "s").outcome == "pass"
    assert "self-preference risk" in evaluate(SECTION, row, POLICY, "s").reason
    assert evaluate(JudgeWinRateRule(self_preference="block"), row, POLICY, "s").blocking


def test_n_needed_shrinks_as_the_estimate_moves_away_from_the_floor() -> None:
    assert n_needed(0.45, 0.4, 0.45, 0.95) is None
    assert n_needed(0.60, 0.4, 0.45, 0.95) < n_needed(0.50, 0.4, 0.45, 0.95)  # type: ignore[operator]


def test_pairwise_suites_get_the_judge_rule_and_no_regression_rule() -> None:
    import dagster as dg

    keys = {dg.AssetKey(["scores", s]): "v" for s in ("chat", "arc")} | {
        dg.AssetKey(["comparison", "arc"]): "v"
    }
    checks = expected_checks({"chat": "pairwise", "arc": "likelihood"}, keys, registered_rules())
    by_suite = {(c.suite, c.rule.name) for c in checks}
    assert ("chat", "judge_win_rate") in by_suite and ("chat", "error_rate") in by_suite
    assert ("chat", "no_regression_vs_production") not in by_suite
    assert ("arc", "no_regression_vs_production") in by_suite and ("arc", "judge_win_rate") not in by_suite
