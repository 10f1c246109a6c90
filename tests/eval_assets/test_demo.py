"""`evalgate demo` checks its own verdict: the real demo path on reduced suites, and the verdict check itself."""

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

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
    _decide(
        results,
        DAMAGED_NAME,
        "fail",
        "regression beyond the 1.0% margin: difference -0.2 (95% CI [-0.3, -0.1])",
    )
    assert demo_verdict(results, head, BASELINE_NAME, DAMAGED_NAME) == ""


#: Runs ``evalgate demo`` through the console script's ``main`` in a fresh interpreter (so its console is what
#: a user sees: no test runner capturing warnings), on reduced suites.
DEMO_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])  # the repository, before tests/ (whose eval_assets/ mirrors the package)
sys.path.append(sys.argv[2])
from evalgate_testing import tiny_policy, tiny_specs
from eval_assets.cli import main
preset = {"specs": tiny_specs(arc=30, gsm8k=1, mmlu=1), "gate_policy": tiny_policy()}
sys.exit(main(sys.argv[3:], preset=preset))
"""
#: What must never reach the demo's console: warnings of any library, tracebacks, Dagster's log lines.
NOISE = re.compile(r"Warning|WARNING|Traceback|DagsterAssetCheckFailedError| - dagster - |ERROR|it/s\]|█")


@pytest.mark.slow
def test_the_demo_path_blocks_the_damaged_copy_and_exits_zero(
    tmp_path: Path, model_cache: Path, damaged_checkpoint: Path, data_root: Path,
) -> None:  # fmt: skip
    """The demo as a newcomer runs it, on 30 ARC-Easy items and one of GSM8K and MMLU: the decision printed as
    a decision, and nothing else on the console but evalgate's own lines."""
    home = tmp_path / "home"
    (home / "checkpoints").mkdir(parents=True)
    (home / "model_cache").symlink_to(model_cache, target_is_directory=True)
    (home / "checkpoints" / DAMAGED_NAME).symlink_to(damaged_checkpoint, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EVALGATE_HOME")}
    tests = Path(__file__).resolve().parents[1]
    demo = subprocess.run(
        [sys.executable, "-c", DEMO_DRIVER, str(tests.parent), str(tests), "--home", str(home), "demo"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert f"evalgate demo: OK: {DAMAGED_NAME} is blocked" in out
    assert f"production: {BASELINE_NAME}" in out and "BLOCK" in out and "regression beyond" in out
    assert re.search(
        rf"^    BLOCKED {DAMAGED_NAME}: \w+ no_regression_vs_production: fail: .*CI", out, re.M
    ), out
    assert "policy: version " in out
    noise = [line for line in (out + demo.stderr).splitlines() if NOISE.search(line)]
    assert noise == [], "\n".join(noise)
    assert "arc_easy: 30 items" in demo.stderr, "one progress display per suite"
    head = EvalgateHome(home=str(home)).ledger().head()
    assert head is not None and head.checkpoint == BASELINE_NAME and head.authority_kind == "baseline"
    promotion = ResultsStore(home / "tables").read("gate_decisions", checkpoint=DAMAGED_NAME)
    assert promotion.filter(pl.col("rule") == "promotion").height == 0, (
        "a failed blocking check stops promotion"
    )
