"""Running a batch of candidate programs through a sandbox pool, with a per-item execution cache.

An execution key is the sha256 of (program hash, tests hash, limits, sandbox version, assembly version): the
same program under the same tests, limits and isolation recipe is run once, ever. Within a batch, identical
programs (common at temperature 0) run once. Results are stored as each arrives, so an interrupted batch
resumes where it stopped.

``error`` is the infrastructure's failure, not the program's (see ``sandboxes/_status.py``: the sandbox could
not be set up or launched, the run's cgroup could not be made, bwrap was killed by someone other than the
supervisor, the host's OOM killer struck while the run was within its limit). Such a sample is run again
within the batch, up to ``retries`` more times (default :data:`INFRA_RETRIES`); ``attempts`` records how many
runs it took. An ``error`` result is never stored, so a sample that still fails comes back as ``error`` (not
passed, and never dropped from a denominator) and is run again by the next materialization. Everything else,
``killed`` by the seccomp filter or the file-size limit included, is the program's own doing and is cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eval_assets.code._problems import CodeProblem
from eval_assets.code._programs import ASSEMBLY_VERSION, CodeProgram, assemble_program
from eval_assets.code._store import ExecutionStore
from eval_assets.progress import counter
from sandboxes import DEFAULT_LIMITS, ExecutionResult, Limits, RunRequest, Status

#: Bump when the key's recipe changes.
EXECUTION_KEY_VERSION = "1"
#: How many more times a sample whose run ended in ``error`` is run within one batch.
INFRA_RETRIES = 2


class BatchRunner(Protocol):
    """What runs programs: :class:`sandboxes.SandboxPool` (or a fake in tests)."""

    @property
    def version(self) -> str: ...

    def run_many(
        self,
        requests: Sequence[RunRequest],
        *,
        on_result: Callable[[int, ExecutionResult], None] | None = None,
    ) -> list[ExecutionResult]: ...


def execution_key(program_hash: str, tests_hash: str, limits: Limits, sandbox_version: str) -> str:
    """The cache key of one execution."""
    payload = {
        "v": EXECUTION_KEY_VERSION,
        "assembly": ASSEMBLY_VERSION,
        "program": program_hash,
        "tests": tests_hash,
        "limits": limits.cache_key(),
        "sandbox": sandbox_version,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ProgramOutcome:
    """The verdict on one program: ``passed`` needs exit 0 and the completion marker (see ``_programs``).
    ``attempts``: sandbox runs it took in this batch (0 when cached; more than 1 after infrastructure errors)."""

    key: str
    passed: bool
    status: Status
    detail: str
    result: ExecutionResult
    cached: bool
    attempts: int = 1


def judge(program: CodeProgram, result: ExecutionResult) -> tuple[bool, Status, str]:
    """(passed, status, detail) of a run of ``program``. A clean exit without the marker is ``failed``."""
    if result.status is Status.PASSED:
        if program.marker in result.stdout:
            return True, Status.PASSED, ""
        return False, Status.FAILED, "exited 0 before the tests completed (no completion marker)"
    return False, result.status, result.detail


def execute_programs(
    programs: Sequence[CodeProgram],
    runner: BatchRunner,
    store: ExecutionStore,
    limits: Limits = DEFAULT_LIMITS,
    *,
    retries: int = INFRA_RETRIES,
    report_as: tuple[str, str] | None = None,
) -> list[ProgramOutcome]:
    """Outcomes of ``programs``, in order, running only those whose key is not in ``store``; a run that ends
    in ``error`` is retried up to ``retries`` times within the batch and never stored. ``report_as``
    (checkpoint, suite): progress events for the console (:mod:`eval_assets.progress`)."""
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    sandbox_version = runner.version
    keys = [execution_key(p.program_hash, p.tests_hash, limits, sandbox_version) for p in programs]
    cached = store.get_many(set(keys))
    todo: dict[str, CodeProgram] = {}
    for key, program in zip(keys, programs, strict=True):
        if key not in cached and key not in todo:
            todo[key] = program
    fresh: dict[str, ExecutionResult] = {}
    attempts: dict[str, int] = {}
    pending = list(todo)
    hits = len(set(keys)) - len(todo)
    progress = (
        counter(*report_as, "sandbox runs", "programs", total=hits + len(todo), cache_hits=hits)
        if report_as
        else None
    )
    finished: set[str] = set()
    for _ in range(1 + retries):
        if not pending:
            break
        batch = pending
        got: set[int] = set()

        def keep(index: int, result: ExecutionResult, batch: list[str] = batch, got: set[int] = got) -> None:
            key = batch[index]
            got.add(index)
            fresh[key] = result
            attempts[key] = attempts.get(key, 0) + 1
            if result.status is not Status.ERROR:
                store.put_many({key: result})
            if progress is not None and (result.status is not Status.ERROR or attempts[key] > retries):
                finished.add(key)
                progress(len(finished))

        requests = [RunRequest(program=todo[key].source, limits=limits) for key in batch]
        results = runner.run_many(requests, on_result=keep)
        for index, result in enumerate(results):
            if index not in got:  # a runner that does not report through on_result
                keep(index, result)
        pending = [key for key in batch if fresh[key].status is Status.ERROR]
    outcomes: list[ProgramOutcome] = []
    for key, program in zip(keys, programs, strict=True):
        was_cached = key in cached
        result = cached[key] if was_cached else fresh[key]
        passed, status, detail = judge(program, result)
        runs = 0 if was_cached else attempts[key]
        outcomes.append(ProgramOutcome(key, passed, status, detail, result, was_cached, runs))
    return outcomes


@dataclass(frozen=True)
class CodeSample:
    """One model completion for one problem (``sample_index`` numbers the n samples of a problem)."""

    task_id: str
    completion: str
    sample_index: int = 0


@dataclass(frozen=True)
class CodeExecution:
    """One sample's execution, ready to become a row of ``code_executions/<suite>``."""

    task_id: str
    sample_index: int
    program_hash: str
    tests_hash: str
    outcome: ProgramOutcome

    @property
    def passed(self) -> bool:
        return self.outcome.passed

    def to_row(self) -> dict[str, Any]:
        """A flat record (strings, numbers, booleans) for a table."""
        result = self.outcome.result
        return {
            "task_id": self.task_id,
            "sample_index": self.sample_index,
            "execution_key": self.outcome.key,
            "program_hash": self.program_hash,
            "tests_hash": self.tests_hash,
            "passed": self.outcome.passed,
            "status": self.outcome.status.value,
            "detail": self.outcome.detail,
            "exit_code": result.exit_code,
            "cpu_seconds": result.cpu_seconds,
            "wall_seconds": result.wall_seconds,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "output_truncated": result.stdout_truncated or result.stderr_truncated,
            "sandbox": result.sandbox,
            "cached": self.outcome.cached,
            "attempts": self.outcome.attempts,
        }


def execute_samples(
    problems: Mapping[str, CodeProblem] | Sequence[CodeProblem],
    samples: Sequence[CodeSample],
    runner: BatchRunner,
    store: ExecutionStore,
    limits: Limits = DEFAULT_LIMITS,
    *,
    retries: int = INFRA_RETRIES,
    report_as: tuple[str, str] | None = None,
) -> list[CodeExecution]:
    """Assemble, run (through the cache) and judge every sample; one :class:`CodeExecution` per sample, in order.
    Runs that end in ``error`` (the infrastructure's failure) are retried up to ``retries`` times.

    Raises:
        KeyError: a sample names a task that is not among ``problems``.
    """
    by_id = problems if isinstance(problems, Mapping) else {p.task_id: p for p in problems}
    programs: list[CodeProgram] = []
    for sample in samples:
        problem = by_id.get(sample.task_id)
        if problem is None:
            raise KeyError(f"sample for unknown task {sample.task_id!r}")
        programs.append(assemble_program(problem, sample.completion))
    outcomes = execute_programs(programs, runner, store, limits, retries=retries, report_as=report_as)
    return [
        CodeExecution(s.task_id, s.sample_index, p.program_hash, p.tests_hash, o)
        for s, p, o in zip(samples, programs, outcomes, strict=True)
    ]
