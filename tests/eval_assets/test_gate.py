"""The gate, pure: policy as versioned data with rule sections, the built-in rules' arithmetic, and the
promotion decision against every way of fooling it (wrong production, stale evidence, no checks, overrides)."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eval_assets.gate import (
    CheckStatus,
    Comparison,
    GatePolicyError,
    OverrideStatus,
    ProductionRef,
    check_policy_version,
    decide_promotion,
    load_gate_policy,
    registered_rules,
)
from eval_assets.rules import error_rate, regression

POLICY = load_gate_policy()
RULE = registered_rules()["no_regression_vs_production"]
SECTION = POLICY.section("no_regression_vs_production")
PROD = ProductionRef("prod", "sha256:" + "a" * 64)

BASE = Comparison(
    suite="arc_easy", candidate="cand", production="prod", n=200, candidate_accuracy=0.5,
    production_accuracy=0.5, difference=0.0, low=-0.005, high=0.005, confidence=0.95,
    method="newcombe-paired", improvements=15, regressions=15, mcnemar_p=1.0,
    mcnemar_method="exact-binomial", minimum_detectable_effect=0.05, production_model_hash=PROD.model_hash,
)  # fmt: skip


def _verdict(comparison: Comparison, section: Any = SECTION) -> Any:
    return regression.evaluate(section, comparison.as_dict(), POLICY, comparison.suite)


def test_policy_is_versioned_data_with_a_section_per_rule() -> None:
    assert POLICY.version >= 1
    assert SECTION.margin == pytest.approx(0.01)
    assert set(POLICY.rules) == set(registered_rules()) >= {"no_regression_vs_production", "error_rate"}
    assert len(POLICY.policy_hash) == 16


def test_a_changed_threshold_changes_the_policy_hash(tmp_path: Path) -> None:
    source = Path(__file__).parents[2] / "eval_assets" / "policy" / "gate.yaml"
    edited = tmp_path / "gate.yaml"
    edited.write_text(source.read_text().replace("margin: 0.01", "margin: 0.02"))
    other = load_gate_policy(edited)
    assert other.version == POLICY.version and other.policy_hash != POLICY.policy_hash


def test_a_policy_changed_without_a_new_version_is_refused() -> None:
    check_policy_version(POLICY, {POLICY.version: {POLICY.policy_hash}, 99: {"other"}})
    with pytest.raises(GatePolicyError, match="changed without a new version"):
        check_policy_version(POLICY, {POLICY.version: {POLICY.policy_hash, "0123456789abcdef"}})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("no_regression_vs_production: {margin: 0.01, extra: 1}\n", "extra"),
        ("no_such_rule: {}\n", "no_such_rule"),
        ("error_rate: {max_rate: 2}\n", "max_rate"),
    ],
)
def test_malformed_policy_is_refused_with_the_field(tmp_path: Path, text: str, field: str) -> None:
    bad = tmp_path / "gate.yaml"
    bad.write_text("version: 1\nconfidence: 0.95\nbootstrap_resamples: 10000\n" + text)
    with pytest.raises(GatePolicyError, match=field) as info:
        load_gate_policy(bad)
    assert str(bad) in str(info.value)


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
    verdict = _verdict(replace(BASE, low=low, high=high, difference=(low + high) / 2))
    assert verdict.outcome == outcome
    assert verdict.blocking is blocking
    assert verdict.threshold == pytest.approx(-0.01)
    assert verdict.n == 200
    assert verdict.evidence == {"production": "prod", "production_model_hash": PROD.model_hash}


@pytest.mark.parametrize("update", [{"inconclusive": "block"}, {"critical": True}])
def test_inconclusive_blocks_when_configured_or_critical(update: dict[str, Any]) -> None:
    strict = SECTION.model_copy(
        update={"suites": {"arc_easy": SECTION.for_suite("arc_easy").model_copy(update=update)}}
    )
    verdict = _verdict(replace(BASE, low=-0.05, high=0.03), strict)
    assert verdict.outcome == "inconclusive" and verdict.blocking


def test_inconclusive_states_the_gates_power_against_the_margin() -> None:
    verdict = _verdict(replace(BASE, low=-0.05, high=0.03))
    assert "the gate shows 'no regression beyond 1.0%'" in verdict.reason
    assert "power needs about" in verdict.reason
    needed = int(verdict.reason.rsplit("about ", 1)[1].split()[0])
    # at 15% discordance and a 1-point margin, 80% power needs psi * ((1.96 + 0.84) / 0.01)^2 ≈ 11,800 items
    assert 11_000 < needed < 12_500


def test_power_note_is_the_gates_own_power() -> None:
    """The quoted probability matches a simulation of the fixed-n rule on paired data."""
    import numpy as np

    from eval_assets import stats

    n, psi, margin = 2000, 0.15, 0.01
    note = regression.power_note(n, int(psi * n), margin, 0.95, 0.8)
    quoted = float(note.split("with probability ")[1].split("%")[0]) / 100
    rng = np.random.default_rng(0)
    passes = 0
    runs = 400
    for _ in range(runs):
        discordant = rng.random(n) < psi
        gain = rng.random(n) < 0.5
        prod = rng.random(n) < 0.6
        cand = np.where(discordant, np.where(gain, True, False), prod)
        prod = np.where(discordant, ~cand, prod)
        interval = stats.paired_proportion_difference_interval(
            cand.astype(float), prod.astype(float), confidence=0.95
        )
        passes += interval.low >= -margin
    assert abs(passes / runs - quoted) < 0.08


def test_baseline_and_production_cases_never_block() -> None:
    assert _verdict(replace(BASE, production=None)).outcome == "no_production"
    own = _verdict(replace(BASE, is_production=True, candidate="prod"))
    assert own.outcome == "is_production" and not own.blocking


@pytest.mark.parametrize(
    ("scores", "outcome"),
    [
        ({"n": 100, "errors": 0, "unparsed": 50, "n_total": 100}, "pass"),
        ({"n": 95, "errors": 5, "unparsed": 0, "n_total": 100}, "pass"),
        ({"n": 94, "errors": 6, "unparsed": 0, "n_total": 100}, "fail"),
        ({"n": 100, "errors": 0, "unparsed": 51, "n_total": 100}, "fail"),
        ({"n": 0, "errors": 0, "unparsed": 0, "n_total": 0}, "fail"),
        ({"n": 0, "errors": 10, "unparsed": 0, "n_total": 10}, "fail"),
    ],
)
def test_error_rate_blocks_a_broken_run(scores: dict[str, int], outcome: str) -> None:
    verdict = error_rate.evaluate(POLICY.section("error_rate"), scores, POLICY, "humaneval")
    assert verdict.outcome == outcome and verdict.blocking is (outcome == "fail")


# -- promotion ---------------------------------------------------------------------------------------------


def _status(**update: Any) -> CheckStatus:
    ok = CheckStatus(
        suite="arc_easy", check="no_regression_vs_production", rule="no_regression_vs_production", found=True,
        blocking_failure=False, current=True, reason="no regression", outcome="pass", code_version="v1",
        expected_code_version="v1", policy_hash=POLICY.policy_hash, production="prod",
        production_model_hash=PROD.model_hash, compares_to_production=True,
    )  # fmt: skip
    return replace(ok, **update)


def _decide(checks: list[CheckStatus], **kwargs: Any) -> Any:
    return decide_promotion(
        "cand", kwargs.pop("production", PROD), checks, policy_hash=POLICY.policy_hash, **kwargs
    )


def test_complete_current_passing_evidence_promotes() -> None:
    assert _decide([_status()]).outcome == "promoted"
    assert _decide([_status(outcome="inconclusive", reason="too few")]).reason.startswith(
        "every blocking check passed"
    )


def test_no_checks_at_all_never_promotes() -> None:
    decision = _decide([])
    assert decision.outcome == "blocked" and "nothing to decide on" in decision.reason


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            {"production": None, "production_model_hash": None, "outcome": "no_production"},
            "compared against no production",
        ),
        ({"production": "old-prod"}, "compared against old-prod"),
        ({"production_model_hash": "sha256:" + "b" * 64}, "production is now prod"),
        ({"code_version": "v0"}, "code version v0"),
        ({"policy_hash": "0000000000000000"}, "decided under policy"),
        ({"current": False}, "older materialization"),
        ({"found": False}, "no completed result"),
    ],
)
def test_stale_or_mismatched_evidence_is_refused(update: dict[str, Any], message: str) -> None:
    decision = _decide([_status(), _status(suite="mmlu", **update)])
    assert decision.outcome == "blocked"
    assert message in decision.reason and "mmlu" in decision.reason


def test_stale_evidence_cannot_be_overridden() -> None:
    override = OverrideStatus("o.yaml", "o.yaml sha256:x", frozenset({"no_regression_vs_production"}), ())
    decision = _decide([_status(production="old-prod")], override=override)
    assert decision.outcome == "blocked"


def test_a_failed_rule_blocks_unless_a_valid_override_names_it() -> None:
    failed = _status(blocking_failure=True, outcome="fail", reason="regression beyond the margin")
    assert _decide([failed]).outcome == "blocked"
    valid = OverrideStatus(
        "o.yaml", "o.yaml sha256:x commit c", frozenset({"no_regression_vs_production"}), ()
    )
    decision = _decide([failed], override=valid)
    assert decision.outcome == "promoted" and decision.authority_kind == "override"
    assert decision.override == "o.yaml sha256:x commit c"
    other_rule = replace(valid, rules=frozenset({"error_rate"}))
    assert "does not cover" in _decide([failed], override=other_rule).reason
    expired = replace(valid, problems=("it expired on 2026-01-01",))
    refused = _decide([failed], override=expired)
    assert refused.outcome == "blocked" and "expired" in refused.reason


def test_moving_back_to_an_earlier_production_needs_a_rollback_override() -> None:
    decision = _decide([_status()], was_production=True)
    assert decision.outcome == "blocked" and "rollback" in decision.reason
    rollback = OverrideStatus("o.yaml", "o", frozenset({"rollback"}), ())
    assert _decide([_status()], was_production=True, override=rollback).outcome == "promoted"


def test_before_a_baseline_and_for_production_itself_nothing_moves() -> None:
    assert _decide([_status()], production=None).outcome == "awaiting_baseline"
    own = decide_promotion("prod", PROD, [_status()], policy_hash=POLICY.policy_hash)
    assert own.outcome == "already_production" and not own.moves_pointer
