"""Declarative automation over many ticks does only needed work: a new checkpoint's assets run once, a blocked
comparison is not retried, and nothing re-runs while nothing changes.

The graph is the evalgate graph's shape with no model (``automation_definitions.py``: the real automation
conditions, ``production`` source, blocking checks and gated promotion). Ticks are the automation sensor's own
evaluation (``dg.evaluate_automation_conditions``, cursor carried over), and runs are launched one at a time
as the daemon's queued coordinator does; a tick also happens after every asset step, *while its run is in
progress*, as the daemon ticks during a real model's run. In process, so the test takes seconds.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

pytestmark = pytest.mark.slow

Run = tuple[str, tuple[str, ...]]


class Automation:
    """The automation sensor and a one-at-a-time run queue on one instance."""

    def __init__(self, defs: dg.Definitions) -> None:
        self.defs = defs
        self.instance = dg.DagsterInstance.ephemeral()
        self.job = defs.resolve_implicit_global_asset_job_def()
        self.keys = sorted(defs.resolve_asset_graph().get_all_asset_keys())
        self.cursor: Any = None
        self.queue: list[tuple[str, list[dg.AssetKey]]] = []
        self.runs: list[Run] = []
        self.ticks = 0

    def tick(self) -> None:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        self.ticks += 1
        requested: dict[str, list[dg.AssetKey]] = {}
        for key in self.keys:
            for partition in result.get_requested_partitions(key):
                requested.setdefault(str(partition), []).append(key)
        self.queue.extend(requested.items())

    def settle(self, ticks: int = 4) -> list[Run]:
        """Tick ``ticks`` times, running what each tick requested (and what mid-run ticks queued); return the
        runs made."""
        before = len(self.runs)
        for _ in range(ticks):
            self.tick()
            while self.queue:
                partition, keys = self.queue.pop(0)
                self.runs.append((partition, tuple(sorted(k.to_user_string() for k in keys))))
                self.job.execute_in_process(
                    partition_key=partition,
                    instance=self.instance,
                    asset_selection=keys,
                    raise_on_error=False,
                )
        return self.runs[before:]


@pytest.fixture
def automation(tmp_path: Path) -> Iterator[Automation]:
    from e2e import automation_definitions as graph

    saved = {k: os.environ.get(k) for k in (graph.HOME_ENV, graph.LOG_ENV, graph.STEP_S_ENV)}
    os.environ.update(
        {graph.HOME_ENV: str(tmp_path), graph.LOG_ENV: str(tmp_path / "ran.jsonl"), graph.STEP_S_ENV: "0"}
    )
    automation = Automation(graph.defs)
    graph.AFTER_STEP.append(automation.tick)
    try:
        yield automation
    finally:
        graph.AFTER_STEP.remove(automation.tick)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


EVALUATION = (
    "checkpoint_manifest",
    "comparison/arc",
    "comparison/gsm",
    "predictions/arc",
    "predictions/gsm",
    "scores/arc",
    "scores/gsm",
)


def test_only_needed_work_over_many_ticks(automation: Automation) -> None:
    from e2e.automation_definitions import move_production

    automation.settle(1)
    automation.instance.add_dynamic_partitions("checkpoints", ["base"])
    assert automation.settle() == [("base", EVALUATION), ("base", ("promotion",))], (
        "one evaluation, then the gate"
    )
    assert automation.settle(3) == [], "nothing changed: nothing runs"

    move_production(automation.instance, "base")  # `evalgate promote --baseline base`
    automation.settle()
    assert automation.settle(3) == []

    automation.instance.add_dynamic_partitions("checkpoints", ["bad"])
    assert automation.settle() == [("bad", EVALUATION)], "one run; the blocked check stops promotion"
    failed = automation.instance.get_runs(limit=1)[0]
    assert failed.status == dg.DagsterRunStatus.FAILURE, "the blocking check failed the run"
    assert automation.settle(4) == [], "a blocked comparison is not retried when nothing changed"

    automation.instance.add_dynamic_partitions("checkpoints", ["good"])
    ran = automation.settle()
    assert ran[:2] == [("good", EVALUATION), ("good", ("promotion",))]
    assert automation.instance.get_latest_materialization_event(dg.AssetKey("production")) is not None
    # production moved to good: the comparisons it made stale run again (bad's against the new production),
    # nothing upstream of them does
    again = ran[2:]
    assert ("bad", ("comparison/arc", "comparison/gsm")) in again
    assert not [
        run for run in again if set(run[1]) & {"checkpoint_manifest", "predictions/arc", "scores/arc"}
    ]
    assert automation.settle(4) == [], "settled after the move: nothing re-runs, the blocked one included"
    assert automation.ticks > 25
