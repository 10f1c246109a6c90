"""The real ``dagster-daemon`` does only needed work over many automation ticks: a new checkpoint's assets each
materialize once, a comparison whose blocking check failed is not re-run, nothing runs while nothing changes,
and a production move re-runs only the other checkpoints' comparisons.

The graph is ``automation_definitions.py`` (the evalgate graph's shape, real automation conditions, no model:
seconds per run), loaded by the daemon from a workspace file, on a SQLite ``DAGSTER_HOME`` with the repository's
``dagster.yaml`` (queued runs, one at a time). The daemon ticks about every 5 s, so ticks land while a run's steps
are in flight, which the in-process replay (``test_automation_no_rework.py``) cannot reproduce: a tick whose
evaluation overlapped a materialization once saw that asset neither materialized nor in progress and requested it
again (docs/dagster-notes.md, "Automation").
"""

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus
from dagster._core.scheduler.instigation import TickStatus
from e2e import automation_definitions as graph
from e2e.e2e_support import REPO, Service, make_dagster_home, wait_until

pytestmark = pytest.mark.slow

AUTOMATION_SENSOR = "evaluate_checkpoints"
DAGSTER_DAEMON = Path(sys.executable).parent / "dagster-daemon"
#: Short steps: several materializations land inside each tick's evaluation window (the race's exposure).
STEP_S = "0.3"
DAEMON_UP_S = 120
SETTLE_S = 180
EVALUATION = {
    "checkpoint_manifest",
    *(f"{kind}/{suite}" for kind in ("predictions", "scores", "comparison") for suite in graph.SUITES),
}
COMPARISONS = {f"comparison/{suite}" for suite in graph.SUITES}


@dataclass
class Daemon:
    root: Path
    daemon: Service
    instance: dg.DagsterInstance

    def executions(self, until: tuple[str, str] | None = None) -> Counter[tuple[str, str]]:
        """(asset, partition) -> how many times its body ran, from the graph's own log (in order: up to and
        including the first execution of ``until``, when given)."""
        log = self.root / "ran.jsonl"
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        ran: Counter[tuple[str, str]] = Counter()
        for entry in map(json.loads, lines):
            ran[(entry["asset"], entry["partition"])] += 1
            if (entry["asset"], entry["partition"]) == until:
                break
        return ran

    def ticks(self) -> list[Any]:
        states = [s for s in self.instance.all_instigator_state() if s.instigator_name == AUTOMATION_SENSOR]
        if not states:
            return []
        state = states[0]
        return list(self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000))

    def completed_ticks(self, after: float = 0.0) -> int:
        return sum(1 for t in self.ticks() if t.timestamp > after and t.status != TickStatus.STARTED)

    def settle(self, ticks: int) -> None:
        """Wait until every run finished and automation completed ``ticks`` evaluations after the last one ended
        (and after now: what changed before this call has been seen)."""
        since = time.time()

        def settled() -> bool:
            if not self.daemon.alive():
                raise AssertionError(f"dagster-daemon exited\n{self.diagnostics()}")
            runs = self.instance.get_runs()
            # a tick requesting one asset set over several partitions hands them to the backfill daemon
            if any(not run.is_finished for run in runs) or self.instance.get_backfills(
                filters=BulkActionsFilter(
                    statuses=[
                        BulkActionStatus.REQUESTED,
                        BulkActionStatus.CANCELING,
                        BulkActionStatus.FAILING,
                    ]
                )
            ):
                return False
            ended = max((self.instance.get_run_stats(r.run_id).end_time or 0.0 for r in runs), default=0.0)
            return self.completed_ticks(after=max(ended, since)) >= ticks

        wait_until(
            f"automation to settle ({ticks} ticks)", settled, deadline_s=SETTLE_S, interval_s=0.5,
            diagnostics=self.diagnostics,
        )  # fmt: skip

    def diagnostics(self) -> str:
        lines = ["runs (oldest first):"]
        for run in reversed(self.instance.get_runs()):
            keys = sorted(k.to_user_string() for k in run.asset_selection or [])
            lines.append(
                f"  {run.run_id[:8]} {run.status.value} {run.tags.get('dagster/partition')} {keys} "
                f"tick {run.tags.get('dagster/tick')}"
            )
        lines.append(f"executions: {dict(self.executions())}")
        lines.append(f"daemon log tail:\n{self.daemon.log_tail(3000)}")
        return "\n".join(lines)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    dagster_home = make_dagster_home(tmp_path / "dagster")
    # the repository's instance (queued runs), dequeued every second instead of every 5 s, and up to 4 runs at
    # once (one at a time is for the model's CPU; here each run costs seconds of process start)
    config = yaml.safe_load((dagster_home / "dagster.yaml").read_text(encoding="utf-8"))
    config["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    config["concurrency"]["runs"]["max_concurrent_runs"] = 4
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    workspace = tmp_path / "workspace.yaml"
    location = {
        "python_file": {
            "relative_path": str(Path(graph.__file__)),
            "working_directory": str(REPO),
            "location_name": "automation_e2e",
        }
    }
    workspace.write_text(json.dumps({"load_from": [location]}), encoding="utf-8")  # JSON is YAML
    variables = {
        "DAGSTER_HOME": str(dagster_home),
        graph.HOME_ENV: str(home),
        graph.LOG_ENV: str(tmp_path / "ran.jsonl"),
        graph.STEP_S_ENV: STEP_S,
    }
    env = (
        {k: v for k, v in os.environ.items() if k != "EVALGATE_HOME"} | variables | {"PYTHONUNBUFFERED": "1"}
    )
    with pytest.MonkeyPatch.context() as patch:
        for key, value in variables.items():  # this process reports production moves to the same instance
            patch.setenv(key, value)
        # storage first: two processes initializing one fresh SQLite DAGSTER_HOME can both stamp its schema
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        service = Service(
            [str(DAGSTER_DAEMON), "run", "-w", str(workspace)],
            env=env,
            cwd=tmp_path,
            log=tmp_path / "daemon.log",
        )
        try:
            yield Daemon(root=tmp_path, daemon=service, instance=instance)
        finally:
            service.stop()
            instance.dispose()


def _runs_of(d: Daemon, partition: str) -> list[dg.DagsterRun]:
    return list(reversed(d.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": partition}))))


def test_the_daemon_does_only_needed_work(daemon: Daemon) -> None:
    d = daemon
    started = time.monotonic()
    wait_until(
        "the automation sensor's first tick", lambda: d.completed_ticks() >= 1, deadline_s=DAEMON_UP_S,
        diagnostics=d.diagnostics,
    )  # fmt: skip

    # (a) a new checkpoint's assets each materialize once, then its gate
    d.instance.add_dynamic_partitions(graph.CHECKPOINTS, ["base"])
    d.settle(ticks=2)
    ran = d.executions()
    assert {asset: ran[(asset, "base")] for asset in [*EVALUATION, "promotion"]} == dict.fromkeys(
        [*EVALUATION, "promotion"], 1
    ), d.diagnostics()

    # the baseline becomes production (`evalgate promote --baseline base`): base's own comparisons and then its
    # promotion re-run once against it (see (d) below), nothing else
    before = d.executions()
    graph.move_production(d.instance, "base")
    d.settle(ticks=2)
    ran = d.executions()
    assert ran - before == Counter([(c, "base") for c in COMPARISONS] + [("promotion", "base")]), (
        d.diagnostics()
    )

    # (b) a blocked checkpoint: evaluated once, the run with its comparisons fails on the blocking check, and
    # nothing is retried over the following ticks
    before = ran
    d.instance.add_dynamic_partitions(graph.CHECKPOINTS, ["bad"])
    d.settle(ticks=3)
    ran = d.executions()
    assert ran - before == Counter((asset, "bad") for asset in EVALUATION), d.diagnostics()
    statuses = {
        run.status
        for run in _runs_of(d, "bad")
        if dg.AssetKey(["comparison", graph.SUITES[0]]) in (run.asset_selection or ())
    }
    assert statuses == {dg.DagsterRunStatus.FAILURE}, d.diagnostics()

    # a candidate without regression: evaluated once, promoted; production moved, so the comparisons of the
    # other checkpoints (made against base) re-run once each against it, and nothing upstream of them
    before = d.executions()
    d.instance.add_dynamic_partitions(graph.CHECKPOINTS, ["good"])
    d.settle(ticks=3)
    ran = d.executions()
    assert graph.current_production() == "good", d.diagnostics()
    evaluated = d.executions(until=("promotion", "good")) - before  # up to the move
    assert evaluated == Counter((asset, "good") for asset in [*EVALUATION, "promotion"]), d.diagnostics()
    again = ran - before - evaluated
    others = {(asset, p): n for (asset, p), n in again.items() if p != "good"}
    # base's promotion follows its new comparisons (and refuses moving back); bad stays blocked
    assert others == {(c, p): 1 for c in COMPARISONS for p in ("bad", "base")} | {("promotion", "base"): 1}, (
        d.diagnostics()
    )
    # (d) not avoided: the new production's own comparisons re-run against itself too (production moved for
    # every partition; no built-in condition tells the partition that moved it), then its promotion once more;
    # at most once each, and nothing upstream of them
    assert {key: n for key, n in again.items() if key[1] == "good"}.items() <= (
        dict.fromkeys([(c, "good") for c in COMPARISONS] + [("promotion", "good")], 1).items()
    ), d.diagnostics()

    # (c) nothing changes: nothing runs
    settled = d.executions()
    runs = len(d.instance.get_runs())
    d.settle(ticks=3)  # after the 3 quiet ticks the last settle already waited for
    assert d.executions() == settled and len(d.instance.get_runs()) == runs, d.diagnostics()
    print(f"\n{len(d.ticks())} automation ticks, {runs} runs, {time.monotonic() - started:.0f} s")
