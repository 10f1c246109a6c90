"""The worker pool: order, one uid per worker, progress callbacks, failures, sizing."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping

import pytest

from sandboxes import (
    ExecutionResult,
    Limits,
    LocalSandbox,
    RunRequest,
    Sandbox,
    SandboxPool,
    Status,
    default_workers,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")


def test_results_come_back_in_request_order_and_workers_have_distinct_uids() -> None:
    requests = [
        RunRequest(f"import os, time\ntime.sleep(0.02 * ({i} % 3))\nprint({i}, os.getuid())")
        for i in range(24)
    ]
    seen: list[int] = []
    lock = threading.Lock()

    def record(index: int, result: ExecutionResult) -> None:
        with lock:
            seen.append(index)

    with SandboxPool(workers=3) as pool:
        results = pool.run_many(requests, on_result=record)
        assert pool.backend == "local-bwrap"
        assert pool.version.startswith("local-bwrap/")
    assert [r.stdout.split()[0] for r in results] == [str(i) for i in range(24)]
    assert sorted(seen) == list(range(24))
    uids = {int(r.stdout.split()[1]) for r in results}
    assert 0 not in uids
    if os.geteuid() == 0:
        assert len(uids) > 1  # work was spread, and each worker has its own uid


def test_pool_workers_lease_different_uids() -> None:
    with SandboxPool(workers=3) as pool:
        boxes = pool._sandboxes
        assert all(isinstance(box, LocalSandbox) for box in boxes)
        uids = [box.uid for box in boxes if isinstance(box, LocalSandbox)]
        if all(box.privileged for box in boxes if isinstance(box, LocalSandbox)):
            assert len(set(uids)) == 3


def test_a_failing_callback_stops_the_batch_and_is_raised() -> None:
    def explode(index: int, result: ExecutionResult) -> None:
        raise RuntimeError("store unavailable")

    with SandboxPool(workers=2) as pool, pytest.raises(RuntimeError, match="store unavailable"):
        pool.run_many([RunRequest("pass")] * 6, on_result=explode)


def test_per_request_limits_apply() -> None:
    with SandboxPool(workers=2) as pool:
        fast, slow = pool.run_many(
            [RunRequest("print('ok')"), RunRequest("while True: pass", limits=Limits(cpu_seconds=1))]
        )
    assert fast.status is Status.PASSED
    assert slow.status is Status.TIMEOUT


class _Fake(Sandbox):
    backend = "fake"

    def __init__(self, worker: int) -> None:
        self.worker = worker
        self.opened = 0
        self.closed = 0

    @property
    def version(self) -> str:
        return "fake/1"

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def run(
        self,
        program: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        limits: Limits = Limits(),  # noqa: B008
        stdin: bytes = b"",
    ) -> ExecutionResult:
        return ExecutionResult(Status.PASSED, 0, stdout=f"{self.worker}:{program}")


def test_pool_uses_the_factory_and_closes_workers() -> None:
    made: list[_Fake] = []

    def factory(worker: int) -> Sandbox:
        made.append(_Fake(worker))
        return made[-1]

    with SandboxPool(factory, workers=2) as pool:
        results = pool.run_many([RunRequest(str(i)) for i in range(5)])
        assert pool.version == "fake/1"
    assert [r.stdout.split(":")[1] for r in results] == ["0", "1", "2", "3", "4"]
    assert [(f.worker, f.opened, f.closed) for f in made] == [(0, 1, 1), (1, 1, 1)]


def test_default_workers_is_sized_to_the_machine() -> None:
    assert 1 <= default_workers() <= 2 * len(os.sched_getaffinity(0))
    assert default_workers(Limits(memory_mb=65536)) >= 1
    with pytest.raises(ValueError):
        SandboxPool(workers=0)
