import math
from dataclasses import replace
from pathlib import Path

import pytest

from eval_assets.gate import (
    CheckStatus,
    Comparison,
    GatePolicyError,
    decide_promotion,
    load_gate_policy,
    no_regression_vs_production,
)

POLICY = load_gate_policy()

BASE = Comparison(
    suite="arc_easy", candidate="cand", production="prod", n=200, candidate_accuracy=0.5,
    production_accuracy=0.5, difference=0.0, low=-0.005, high=0.005, confidence=0.95,
    method="bootstrap-percentile", improvements=1, regressions=1, mcnemar_p=1.0,
    mcnemar_method="exact-binomial", minimum_detectable_effect=0.05,
)  # fmt: skip


def test_policy_is_versioned_data() -> None:
    assert POLICY.version >= 1
    assert POLICY.no_regression_vs_production.margin == pytest.approx(0.01)
    assert len(POLICY.code_version) == 16


def test_malformed_policy_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "gate.yaml"
    bad.write_text("version: 1\nconfidence: 0.95\nbootstrap_resamples: 10000\nno_regression_vs_production: {margin: 0.01, extra: 1}\n")
    with pytest.raises(GatePolicyError, match="extra"):
        load_gate_policy(bad)


@pytest.mark.parametrize(
    ("low", "high", "outcome", "blocking"),
    [
        (-0.26, -0.105, "fail", True),  # whole CI below -margin: regression shown
        (-0.0099, 0.02, "pass", False),  # lower bound within the margin
        (-0.01, 0.02, "pass", False),  # exactly at the margin passes
        (-0.05, 0.03, "inconclusive", False),  # straddles -margin: warn by default
        (-0.05, -0.0101, "fail", True),
    ],
)
def test_no_regression_arithmetic(low: float, high: float, outcome: str, blocking: bool) -> None:
    verdict = no_regression_vs_production(replace(BASE, low=low, high=high, difference=(low + high) / 2), POLICY)
    assert verdict.outcome == outcome
    assert verdict.blocking is blocking
    assert verdict.threshold == pytest.approx(-0.01)
    assert verdict.n == 200


def test_inconclusive_can_be_configured_to_block() -> None:
    strict = POLICY.model_copy(
        update={
            "no_regression_vs_production": POLICY.no_regression_vs_production.model_copy(
                update={"inconclusive": "block"}
            )
        }
    )
    verdict = no_regression_vs_production(replace(BASE, low=-0.05, high=0.03), strict)
    assert verdict.outcome == "inconclusive" and verdict.blocking


def test_too_small_says_what_the_sample_can_detect() -> None:
    verdict = no_regression_vs_production(replace(BASE, n=16, low=-0.5, high=0.19, minimum_detectable_effect=0.54), POLICY)
    assert "too few items" in verdict.reason and "54.0%" in verdict.reason
    verdict = no_regression_vs_production(replace(BASE, n=8, low=-0.5, high=0.5, minimum_detectable_effect=math.inf), POLICY)
    assert "cannot detect any difference" in verdict.reason


def test_baseline_and_production_cases_never_block() -> None:
    assert no_regression_vs_production(replace(BASE, production=None), POLICY).outcome == "no_production"
    assert no_regression_vs_production(replace(BASE, is_production=True), POLICY).outcome == "is_production"


def _status(suite: str, **kw: bool) -> CheckStatus:
    fields = {"found": True, "passed": True, "blocking_failure": False, "current": True} | kw
    return CheckStatus(suite=suite, check="no_regression_vs_production", reason="r", **fields)


def test_promotion_requires_every_check_found_current_and_passing() -> None:
    ok = [_status("a"), _status("b")]
    assert decide_promotion("cand", "prod", ok).outcome == "promoted"
    warned = decide_promotion("cand", "prod", [_status("a"), CheckStatus("b", "c", True, True, False, True, "too few", "inconclusive")])
    assert warned.outcome == "promoted" and "warnings: b: too few" in warned.reason
    blocked = decide_promotion("cand", "prod", [_status("a"), _status("b", passed=False, blocking_failure=True)])
    assert blocked.outcome == "blocked" and "b:" in blocked.reason
    assert decide_promotion("cand", "prod", [_status("a", found=False)]).outcome == "blocked"
    assert decide_promotion("cand", "prod", [_status("a", current=False)]).outcome == "blocked"
    assert decide_promotion("cand", None, ok).outcome == "awaiting_baseline"
    assert decide_promotion("prod", "prod", ok).outcome == "already_production"
