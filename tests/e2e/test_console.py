"""What the console shows: progress per suite, one line per user error with its exit code, and a run killed
with SIGKILL marked failed by the next command (a real ``evalgate evaluate`` subprocess, killed mid-run)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from rich.console import Console

from eval_assets.console import PlainProgress, RichProgress, format_duration
from eval_assets.instance import TAG_PROCESS, mark_interrupted_runs, process_tags, run_process_alive
from eval_assets.progress import Progress, counter, observe_progress

EVALGATE = Path(sys.executable).parent / "evalgate"
CLI_DEADLINE_S = 120

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _event(phase: str, computed: int = 0, *, items: int = 40, hits: int = 8) -> Progress:
    return Progress("base", "arc_easy", phase, items, hits, items - hits, computed)  # type: ignore[arg-type]


def test_plain_lines_name_items_cache_hits_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.0, 4.0, 8.0, 9.0, 20.0, 28.0])
    monkeypatch.setattr("eval_assets.console.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    show = PlainProgress(out, interval=10.0)
    for event in (_event("start"), _event("loading"), _event("loaded"), _event("chunk", 8), _event("chunk", 16),
                  _event("chunk", 24), _event("done", 32)):  # fmt: skip
        show(event)
    lines = [line.strip() for line in out.getvalue().splitlines()]
    assert lines[0] == "arc_easy: 40 items, 8 cached, 32 to compute"
    assert lines[1].startswith("arc_easy: loading the model of base")
    assert lines[2] == "arc_easy: model ready in 4 s"
    # 8 computed in 4 s after the model was ready: 2 items/s, 24 left: 12 s
    assert lines[3] == "arc_easy: 16/40 items (8 cached), 2.00 items/s, ETA 0:12"
    # the chunk at 9 s is within the interval: no line; at 20 s: 24 computed in 16 s
    assert lines[4] == "arc_easy: 32/40 items (8 cached), 1.50 items/s, ETA 0:05"
    assert lines[5] == "arc_easy: 40/40 items (8 cached) in 0:28"
    assert len(lines) == 6


def test_the_live_display_shows_each_suite_with_its_cache_hits() -> None:
    out = io.StringIO()
    display = RichProgress(Console(file=out, force_terminal=True, width=160))
    with display.progress:
        display(_event("start"))
        display(_event("loading"))
        display(_event("loaded"))
        display(_event("chunk", 16))
        display(Progress("base", "gsm8k", "start", 5, 5, 0))
        display(Progress("base", "gsm8k", "done", 5, 5, 0))
        display(_event("done", 32))
        display.progress.refresh()
    text = out.getvalue()
    assert "arc_easy" in text and "40/40" in text and "8 cached" in text
    assert "gsm8k" in text and "5/5" in text and "5 cached" in text
    assert [task.completed for task in display.progress.tasks] == [40, 5]


def test_other_long_work_gets_its_own_line_with_its_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 12.0, 30.0])
    monkeypatch.setattr("eval_assets.console.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    with observe_progress(PlainProgress(out, interval=10.0)):
        done = counter("base", "assistant_pairwise", "judge verdicts", "judgements", total=128, cache_hits=28)
        done(40)
        done(100)
    lines = [line.strip() for line in out.getvalue().splitlines()]
    assert lines == [
        "assistant_pairwise judge verdicts: 128 judgements, 28 cached, 100 to compute",
        "assistant_pairwise judge verdicts: 68/128 judgements (28 cached), 3.33 judgements/s, ETA 0:18",
        "assistant_pairwise judge verdicts: 128/128 judgements (28 cached) in 0:30",
    ]


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00", "1:00", "1:01", "1:01:02"]


def test_a_reused_pid_is_not_taken_for_the_run_process() -> None:
    mine = process_tags()
    assert run_process_alive(mine) is True
    assert run_process_alive({**mine, TAG_PROCESS: mine[TAG_PROCESS] + "0"}) is False, "another process now"
    assert run_process_alive({**mine, "evalgate/host": "elsewhere"}) is None, "another host: cannot tell"
    assert run_process_alive({}) is None, "not a CLI run (daemon, dagster dev): left to Dagster"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert run_process_alive({**mine, "evalgate/pid": str(dead.pid)}) is False


# --- the console script, as a user runs it --------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EVALGATE_HOME")}


@pytest.fixture
def cli(home: Path, tmp_path: Path) -> Cli:
    if not EVALGATE.is_file():
        pytest.skip(f"the evalgate console script is not installed at {EVALGATE} (pip install -e .)")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EVALGATE), "--home", str(home), *args], env=_env(), cwd=tmp_path, capture_output=True,
            text=True, timeout=CLI_DEADLINE_S, check=False,
        )  # fmt: skip

    return run


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The whole output: one line on stderr, nothing on stdout, no traceback."""
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Error:" not in lines[0].split(": ", 1)[0]
    return lines[0]


def _register_tiny(cli: Cli, tmp_path: Path, name: str) -> None:
    from weights_testing import tiny_gguf

    registered = cli("register", str(tiny_gguf(tmp_path / f"{name}.gguf", name)), "--name", name)
    assert registered.returncode == 0, registered.stderr


def test_evaluate_an_unknown_name_says_how_to_register_it(cli: Cli, home: Path, tmp_path: Path) -> None:
    result = cli("evaluate", "nope")
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("evalgate: error: no checkpoint named 'nope'")
    assert "none is registered yet" in line and "evalgate register PATH --name nope" in line
    _register_tiny(cli, tmp_path, "base")
    line = _one_line(again := cli("evaluate", "base", "nope"))
    assert again.returncode == 2 and "registered: base" in line, "names what is registered; runs nothing"


def test_evaluate_an_unknown_suite_lists_the_suites(cli: Cli, tmp_path: Path) -> None:
    _register_tiny(cli, tmp_path, "base")
    result = cli("evaluate", "base", "--suite", "arc_easy", "--suite", "nope")
    assert result.returncode == 2
    line = _one_line(result)
    assert (
        line.startswith("evalgate: error: no suite named 'nope'") and "arc_easy" in line and "gsm8k" in line
    )


def test_report_on_an_empty_home_says_where_to_start(cli: Cli, home: Path) -> None:
    result = cli("report")
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith("evalgate: nothing to report: no checkpoint is registered in ")
    assert str(home) in line and "evalgate register PATH --name NAME" in line


def test_report_on_a_checkpoint_without_results(cli: Cli, tmp_path: Path) -> None:
    _register_tiny(cli, tmp_path, "base")
    for args in ((), ("base",)):
        result = cli("report", *args)
        assert result.returncode == 1, result.stderr
        line = _one_line(result)
        assert (
            line
            == "evalgate: nothing to report: no results yet for base: evaluate with `evalgate evaluate base`"
        )
    unknown = cli("report", "base", "ghost")
    assert unknown.returncode == 2
    assert _one_line(unknown).startswith("evalgate: error: no checkpoint named 'ghost'")


# --- a run killed with SIGKILL ----------------------------------------------------------------------------


@pytest.fixture
def dagster_instance(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], dg.DagsterInstance]]:
    """Opens the instance the CLI made under ``<home>/dagster`` (dagster.yaml reads its storage dir from
    DAGSTER_HOME)."""
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    opened: list[dg.DagsterInstance] = []

    def open_() -> dg.DagsterInstance:
        opened.append(dg.DagsterInstance.from_config(str(home / "dagster")))
        return opened[-1]

    yield open_
    for instance in opened:
        instance.dispose()


def _wait_for_line(process: subprocess.Popen[str], needle: str, deadline_s: float) -> list[str]:
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    process.kill()
    raise AssertionError(f"no line with {needle!r} within {deadline_s} s: {''.join(seen)}")


@pytest.mark.slow
def test_a_sigkilled_evaluate_is_marked_failed_by_the_next_command(
    cli: Cli, home: Path, tmp_path: Path, baseline_gguf: Path, model_cache: Path,
    dagster_instance: Callable[[], dg.DagsterInstance],
) -> None:  # fmt: skip
    home.mkdir(parents=True)
    (home / "model_cache").symlink_to(model_cache, target_is_directory=True)
    assert cli("register", str(baseline_gguf), "--name", "base").returncode == 0
    process = subprocess.Popen(
        [str(EVALGATE), "--home", str(home), "evaluate", "base", "--suite", "arc_easy"],
        env={**_env(), "PYTHONUNBUFFERED": "1"}, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait_for_line(process, "arc_easy: loading the model of base", CLI_DEADLINE_S)
        instance = dagster_instance()
        started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert len(started) == 1, "the evaluation's run is under way"
        run_id = started[0].run_id
        assert started[0].tags["evalgate/suites"] == "arc_easy"
        assert mark_interrupted_runs(instance) == [], "a run whose process is alive is left alone"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.STARTED, "nothing else would ever end it"

    report = cli("report")  # the next command, whatever it is
    assert report.returncode == 1 and "no results yet for base" in report.stderr

    run = dagster_instance().get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    failures = [
        e for e in dagster_instance().all_logs(run_id) if e.dagster_event and e.dagster_event.is_run_failure
    ]
    assert len(failures) == 1 and "interrupted" in (failures[0].dagster_event.message or "")  # type: ignore[union-attr]
    assert mark_interrupted_runs(dagster_instance()) == [], "marked once, not on every start"


# --- --suite, and a failing step, in-process on the real small model --------------------------------------


@pytest.fixture
def cli_home(tmp_path: Path, model_cache: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "model_cache").symlink_to(model_cache, target_is_directory=True)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("EVALGATE_HOME", raising=False)
    return home


def _tiny_preset() -> dict[str, object]:
    from evalgate_testing import tiny_policy, tiny_specs

    return {"specs": tiny_specs(arc=2, gsm8k=1, max_new_tokens=4), "gate_policy": tiny_policy()}


@pytest.mark.slow
def test_suite_evaluates_only_that_suite_and_never_promotes(
    cli_home: Path, baseline_gguf: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import eval_assets.definitions
    from eval_assets.cli import main
    from resources.results_store import ResultsStore

    assert main(["--home", str(cli_home), "register", str(baseline_gguf), "--name", "base"]) == 0
    capsys.readouterr()
    built: list[int] = []
    build = eval_assets.definitions.build_definitions

    def counted(**kwargs: Any) -> dg.Definitions:
        built.append(1)
        return build(**kwargs)

    monkeypatch.setattr(eval_assets.definitions, "build_definitions", counted)
    argv = ["--home", str(cli_home), "evaluate", "base", "--suite", "gsm8k"]
    assert main(argv, preset=_tiny_preset()) == 0
    assert len(built) == 1, "the definitions are built once per command"
    captured = capsys.readouterr()
    assert "==> evaluating base (suites gsm8k, profile smoke)" in captured.out
    assert "production did not move" in captured.out
    assert "gsm8k: 1 items, 0 cached, 1 to compute" in captured.err
    assert "arc_easy" not in captured.err, "no progress for a suite that is not evaluated"
    results = ResultsStore(cli_home / "tables")
    assert results.read("scores", checkpoint="base")["suite"].to_list() == ["gsm8k"]
    assert results.read("predictions", checkpoint="base")["suite"].unique().to_list() == ["gsm8k"]
    decisions = results.read("gate_decisions", checkpoint="base")
    assert decisions.height == 0 or "promotion" not in decisions["rule"].to_list()


def test_a_failing_step_is_one_error_line_with_the_run_id_and_exit_1(
    cli_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Weights deleted after they were registered: the manifest step refuses them. The console says which
    step and why in one line, and where the full log is; no traceback, no Dagster log lines."""
    from weights_testing import tiny_gguf

    from eval_assets.cli import main

    weights = tiny_gguf(tmp_path / "gone.gguf", "gone")
    assert main(["--home", str(cli_home), "register", str(weights), "--name", "gone"]) == 0
    weights.unlink()
    capsys.readouterr()
    code = main(["--home", str(cli_home), "evaluate", "gone", "--suite", "gsm8k"], preset=_tiny_preset())
    captured = capsys.readouterr()
    assert code == 1, captured
    errors = [line for line in captured.err.splitlines() if line.startswith("evalgate: error: ")]
    assert len(errors) == 1, captured.err
    assert (
        errors[0].startswith("evalgate: error: gone: step checkpoint_manifest failed: ")
        and "gone.gguf" in errors[0]
    )
    assert re.search(r"^evalgate: run [0-9a-f-]{36} failed; its full log: `evalgate ui`", captured.err, re.M)
    assert "Traceback" not in captured.err + captured.out and " - dagster - " not in captured.err


def test_a_run_prints_its_last_decision_per_rule_as_a_decision(tmp_path: Path) -> None:
    from eval_assets.report import run_decisions
    from resources.results_store import ResultsStore

    results = ResultsStore(tmp_path / "tables")

    def decide(
        run: str, rule: str, outcome: str, reason: str, blocking: bool = True, suite: str = "arc_easy"
    ) -> None:
        results.record_decision(
            checkpoint="cand", suite=suite, rule=rule, outcome=outcome, blocking=blocking, reason=reason,
            policy_version=1, policy_hash="p", run_id=run,
        )  # fmt: skip

    decide("grown", "no_regression_vs_production", "inconclusive", "look 1: CI straddles the margin")
    decide("grown", "no_regression_vs_production", "fail", "regression beyond the margin: CI [-0.30, -0.10]")
    decide("other", "no_regression_vs_production", "pass", "no regression", blocking=False)
    assert run_decisions(results, "cand", "grown") == [
        "BLOCKED cand: arc_easy no_regression_vs_production: fail: regression beyond the margin: CI [-0.30, -0.10]"
    ], "the last look decides; earlier looks and other runs are not repeated"
    decide("ok", "no_regression_vs_production", "pass", "no regression", blocking=False)
    decide("ok", "promotion", "promoted", "every check passed", blocking=False, suite="*")
    assert run_decisions(results, "cand", "ok") == ["PROMOTED cand: every check passed"]
    assert run_decisions(results, "cand", "never") == [] and run_decisions(results, "ghost", "ok") == []
