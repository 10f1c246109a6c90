"""Parallel sandbox workers, sized to the machine, each an independent :class:`Sandbox` with its own uid.

The pool keeps its workers open (warm) between batches: for the local backend that keeps each worker's leased
uid and compiled filter, never a used environment (every run is fresh). Results come back in request order;
``on_result`` sees each as soon as it is ready, so a caller can persist progress and resume after interruption.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Self

from sandboxes._interface import (
    DEFAULT_LIMITS,
    ExecutionResult,
    Limits,
    RunRequest,
    Sandbox,
    SandboxError,
    SandboxFactory,
)


def _mem_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def default_workers(limits: Limits = DEFAULT_LIMITS) -> int:
    """Two workers per usable CPU, fewer if available memory cannot hold twice ``limits.memory_mb`` per worker
    (each run's cgroup lets it hold up to its limit; the factor two is headroom).

    Two per CPU because a short run spends much of its time in process and namespace set-up rather than on a
    CPU; verdicts do not depend on load because the time limit counts CPU time, not wall time."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    workers = max(1, 2 * cpus)
    available = _mem_available_bytes()
    if available is not None:
        workers = min(workers, max(1, available // (2 * limits.memory_mb * 1024 * 1024)))
    return workers


def _local_factory(worker: int) -> Sandbox:
    from sandboxes.local import LocalSandbox

    return LocalSandbox()


class SandboxPool:
    """``workers`` sandboxes from ``factory`` (default: the local backend), run from as many threads.

    Raises:
        IsolationUnavailableError: from :meth:`open` when a worker cannot isolate.
        SandboxError: from :meth:`run_many` when workers disagree on their version.
    """

    def __init__(self, factory: SandboxFactory | None = None, workers: int | None = None) -> None:
        self._factory: SandboxFactory = factory or _local_factory
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._sandboxes: list[Sandbox] = []
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The version shared by every worker (part of execution-cache keys)."""
        self.open()
        versions = {sandbox.version for sandbox in self._sandboxes}
        if len(versions) != 1:
            raise SandboxError(f"pool workers disagree on their sandbox version: {sorted(versions)}")
        return versions.pop()

    @property
    def backend(self) -> str:
        self.open()
        return self._sandboxes[0].backend

    def open(self) -> None:
        with self._lock:
            if self._sandboxes:
                return
            opened: list[Sandbox] = []
            try:
                for index in range(self.workers):
                    sandbox = self._factory(index)
                    sandbox.open()
                    opened.append(sandbox)
            except BaseException:
                for sandbox in opened:
                    sandbox.close()
                raise
            self._sandboxes = opened

    def close(self) -> None:
        with self._lock:
            for sandbox in self._sandboxes:
                sandbox.close()
            self._sandboxes = []

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run_many(
        self,
        requests: Sequence[RunRequest],
        *,
        on_result: Callable[[int, ExecutionResult], None] | None = None,
    ) -> list[ExecutionResult]:
        """Run every request; the i-th result answers the i-th request. The first exception raised by a worker
        (or by ``on_result``) stops the dispatch of new requests and is re-raised once running ones finish."""
        self.open()
        results: list[ExecutionResult | None] = [None] * len(requests)
        next_index = 0
        failure: list[BaseException] = []
        dispatch = threading.Lock()

        def work(sandbox: Sandbox) -> None:
            nonlocal next_index
            while True:
                with dispatch:
                    if failure or next_index >= len(requests):
                        return
                    index = next_index
                    next_index += 1
                try:
                    result = sandbox.run_request(requests[index])
                    results[index] = result
                    if on_result is not None:
                        on_result(index, result)
                except BaseException as exc:
                    with dispatch:
                        failure.append(exc)
                    return

        active = self._sandboxes[: max(1, min(len(self._sandboxes), len(requests)))]
        if len(active) == 1:
            work(active[0])
        else:
            threads = [
                threading.Thread(target=work, args=(s,), name=f"sandbox-{i}", daemon=True)
                for i, s in enumerate(active)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if failure:
            raise failure[0]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise SandboxError(f"no result for requests {missing[:10]}")
        return [r for r in results if r is not None]

    def run(
        self, program: str, *, files: dict[str, str | bytes] | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> ExecutionResult:
        """Run one program on the first worker."""
        return self.run_many([RunRequest(program, files or {}, limits)])[0]
