"""The CLI's ways of moving production: `promote --baseline` once only, override records written and checked."""

import subprocess
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from eval_assets.cli import main
from resources.evalgate import EvalgateHome


def _checkpoint(tmp_path: Path, name: str) -> Path:
    from weights_testing import tiny_gguf

    return tiny_gguf(tmp_path / f"{name}.gguf", name)  # registration parses and hashes; nothing loads it here


def _scored(home: Path, name: str) -> None:
    """What an evaluation leaves in the scores table (the baseline command requires it)."""
    from resources.results_store import ResultsStore

    row = {"checkpoint": name, "suite": "arc_easy", "score": 0.5, "n": 10}
    ResultsStore(home / "tables").replace("scores", pl.DataFrame([row]), checkpoint=name, suite="arc_easy")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("EVALGATE_OVERRIDES_DIR", str(tmp_path / "repo" / "overrides"))
    for name in ("a", "b"):
        assert main(["--home", str(home), "register", str(_checkpoint(tmp_path, name)), "--name", name]) == 0
    return home


def test_baseline_needs_an_evaluated_checkpoint(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home), "promote", "--baseline", "a"]) == 2
    assert "has no scores: evaluate it first" in capsys.readouterr().err
    assert EvalgateHome(home=str(home)).ledger().head() is None


def test_baseline_is_set_once_and_recorded_with_its_actor(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _scored(home, "a")
    _scored(home, "b")
    assert (
        main(
            ["--home", str(home), "promote", "--baseline", "a", "--approver", "carol", "--reason", "v1 ships"]
        )
        == 0
    )
    head = EvalgateHome(home=str(home)).ledger().head()
    assert head is not None and (head.checkpoint, head.actor, head.reason, head.authority_kind) == (
        "a", "carol", "v1 ships", "baseline",
    )  # fmt: skip
    capsys.readouterr()
    assert main(["--home", str(home), "promote", "--baseline", "b"]) == 2
    err = capsys.readouterr().err
    assert "production is already a" in err and "evalgate override new b" in err
    assert EvalgateHome(home=str(home)).ledger().head().checkpoint == "a"  # type: ignore[union-attr]


def test_override_new_then_check_before_and_after_commit(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    expires = (date.today() + timedelta(days=5)).isoformat()
    argv = ["--home", str(home), "override", "new", "b", "--rule", "no_regression_vs_production",
            "--justification", "known eval artifact, analysis linked in the PR", "--pr",
            "https://git.example.com/evals/pull/7", "--approver", "dana", "--expires", expires]  # fmt: skip
    assert main(argv) == 0
    file = repo / "overrides" / "b.yaml"
    assert file.is_file() and "model_hash: sha256:" in file.read_text()
    capsys.readouterr()
    assert main(["--home", str(home), "override", "check", "b"]) == 1
    assert "not in a git repository" in capsys.readouterr().out
    for args in (["init", "-q"], ["add", "overrides/b.yaml"],
                 ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "override b"]):  # fmt: skip
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    assert main(["--home", str(home), "override", "check", "b"]) == 0
    assert capsys.readouterr().out.startswith("valid: ")
    assert main(["--home", str(home), "override", "list"]) == 0
    assert "b: valid" in capsys.readouterr().out
    assert main(argv) == 2, "an existing record is never overwritten"
    bad = [*argv[:4], "a", "--rule", "no_such_rule", *argv[7:]]
    assert main(bad) == 2
    assert "unknown rule(s) ['no_such_rule']" in capsys.readouterr().err
