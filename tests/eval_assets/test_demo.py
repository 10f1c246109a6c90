"""`evalgate demo` checks its own verdict: the real demo path on reduced suites, and the verdict check itself."""

from pathlib import Path

import polars as pl
import pytest
from evalgate_testing import tiny_policy, tiny_specs

from eval_assets.cli import build_parser, cmd_demo
from eval_assets.demo import BASELINE_NAME, DAMAGED_NAME, demo_verdict
from resources.evalgate import EvalgateHome
from resources.results_store import ResultsStore


def _decide(results: ResultsStore, checkpoint: str, outcome: str, reason: str, blocking: bool = True) -> None:
    results.record_decision(
        checkpoint=checkpoint, suite="arc_easy", rule="no_regression_vs_production", outcome=outcome,
        blocking=blocking, reason=reason, policy_version=1, policy_hash="p", run_id="r",
    )  # fmt: skip


def test_the_verdict_check_fails_unless_the_damaged_copy_is_blocked_with_numbers(tmp_path: Path) -> None:
    results = ResultsStore(tmp_path / "tables")
    head = None
    assert "production should be" in demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME)
    from resources.production_ledger import ProductionHead

    head = ProductionHead(BASELINE_NAME, "sha256:x", 1, None, "baseline", "cli", "t", "r", "now", "c")
    assert "no gate decision" in demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME)
    _decide(results, DAMAGED_NAME, "pass", "no regression", blocking=False)
    assert "was not blocked" in demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME)
    _decide(results, DAMAGED_NAME, "fail", "regression beyond the margin")
    assert "without numbers" in demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME)
    _decide(results, DAMAGED_NAME, "fail", "regression beyond the 1.0% margin: difference -0.2 (95% CI [-0.3, -0.1])")
    assert demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME) == ""


@pytest.mark.slow
def test_the_demo_path_blocks_the_damaged_copy_and_exits_zero(
    tmp_path: Path, model_cache: Path, damaged_checkpoint: Path, data_root: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo as a newcomer runs it, on 30 ARC-Easy items and one of GSM8K and MMLU."""
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    (home / "model_cache").symlink_to(model_cache, target_is_directory=True)
    (home / "checkpoints" / DAMAGED_NAME).symlink_to(damaged_checkpoint, target_is_directory=True)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    args = build_parser().parse_args(["--home", str(home), "demo"])
    args.specs, args.gate_policy = tiny_specs(arc=30, gsm8k=1, mmlu=1), tiny_policy()
    assert cmd_demo(args) == 0
    out = capsys.readouterr().out
    assert f"evalgate demo: OK: {DAMAGED_NAME} is blocked" in out
    assert f"production: {BASELINE_NAME}" in out and "BLOCK" in out and "regression beyond" in out
    head = EvalgateHome(home=str(home)).ledger().head()
    assert head is not None and head.checkpoint == BASELINE_NAME and head.authority_kind == "baseline"
    promotion = ResultsStore(home / "tables").read("gate_decisions", checkpoint=DAMAGED_NAME)
    assert promotion.filter(pl.col("rule") == "promotion").height == 0, "a failed blocking check stops promotion"
