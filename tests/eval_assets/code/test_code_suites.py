"""Code suites end to end: real HumanEval and MBPP data, programs run in the real sandbox, the execution cache."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from eval_assets.code import (
    INFRA_RETRIES,
    CodeProblem,
    CodeSample,
    InMemoryExecutionStore,
    SqliteExecutionStore,
    assemble_program,
    code_suite,
    execute_programs,
    execute_samples,
    execution_key,
    extract_code,
    load_humaneval,
    load_mbpp,
    pass_at_k_per_problem,
    pass_counts,
    reference_program,
    status_counts,
)
from eval_assets.datapkgs import DataPackageError
from sandboxes import ExecutionResult, Limits, RunRequest, SandboxPool, Status

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")


def _load_or_skip(loader: Callable[[], list[CodeProblem]]) -> list[CodeProblem]:
    try:
        return loader()
    except DataPackageError as exc:
        pytest.skip(
            f"data packages not installed (set EVALGATE_DATA_DIR or run `evalgate data install`): {exc}"
        )


@pytest.fixture(scope="module")
def humaneval() -> list[CodeProblem]:
    return _load_or_skip(load_humaneval)


@pytest.fixture(scope="module")
def mbpp() -> list[CodeProblem]:
    return _load_or_skip(load_mbpp)


class CountingRunner:
    """A real sandbox pool that counts what it is asked to run."""

    def __init__(self, pool: SandboxPool) -> None:
        self.pool = pool
        self.requests = 0

    @property
    def version(self) -> str:
        return self.pool.version

    def run_many(
        self,
        requests: Sequence[RunRequest],
        *,
        on_result: Callable[[int, ExecutionResult], None] | None = None,
    ) -> list[ExecutionResult]:
        self.requests += len(requests)
        return self.pool.run_many(requests, on_result=on_result)


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    if not sys.platform.startswith("linux"):
        pytest.skip("the local sandbox needs Linux")
    with SandboxPool() as workers:
        yield workers


# -- data ----------------------------------------------------------------------------------------------


def test_humaneval_loads_164_problems(humaneval: list[CodeProblem]) -> None:
    assert len(humaneval) == 164
    assert len({p.task_id for p in humaneval}) == 164
    first = humaneval[0]
    assert first.task_id == "HumanEval/0" and first.entry_point == "has_close_elements"
    assert first.prompt.startswith("from typing import List")
    assert first.tests.rstrip().endswith("check(has_close_elements)")


def test_mbpp_loads_500_test_problems(mbpp: list[CodeProblem]) -> None:
    assert len(mbpp) == 500
    ids = sorted(int(p.task_id.split("/")[1]) for p in mbpp)
    assert ids == list(range(11, 511))
    first = next(p for p in mbpp if p.task_id == "mbpp/11")
    assert first.entry_point == "remove_Occ"
    assert first.tests.count("assert") == 3
    assert "```python" in first.prompt
    assert all(p.entry_point and "\r" not in p.reference for p in mbpp)


# -- programs (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("    return x + 1\n", "    return x + 1\n"),
        ("Here you go:\n```python\ndef f(x):\n    return x\n```\nDone.", "def f(x):\n    return x\n"),
        ("```\ndef f():\n    pass\n```", "def f():\n    pass\n"),
        ("```text\nnot code\n```\n```py\nx = 1\n```", "x = 1\n"),
        ("def f(x):\n    return x\n```\n\nExplanation follows.", "def f(x):\n    return x\n"),
        ("Sure! Here it is:\n```python\ndef f(x):\n    return x", "def f(x):\n    return x"),
    ],
)
def test_extract_code(text: str, code: str) -> None:
    assert extract_code(text) == code


def test_extract_code_continuing_a_prompt() -> None:
    prompt = 'def f(x):\n    """Identity."""\n'
    assert extract_code("    return x\n```\nThat was easy.", context=prompt) == "    return x\n"
    assert assemble_program(_problem(), "    return a + b\n```\nDone.").program.endswith("return a + b\n")


def _problem(suite: str = "humaneval") -> CodeProblem:
    return CodeProblem(
        suite=suite,
        task_id="T/0",
        prompt='def add(a, b):\n    """Add."""\n',
        entry_point="add",
        reference="    return a + b\n",
        tests="assert add(2, 3) == 5\n",
    )


def test_program_assembly_and_hashes() -> None:
    problem = _problem()
    program = assemble_program(problem, "    return a + b\n")
    assert program.program == problem.prompt + "    return a + b\n"
    assert program.source.startswith(program.program) and program.marker in program.source
    assert program == reference_program(problem)
    other = assemble_program(problem, "    return a - b\n")
    assert other.tests_hash == program.tests_hash and other.program_hash != program.program_hash
    mbpp = assemble_program(_problem("mbpp"), "```python\ndef add(a, b):\n    return a + b\n```")
    assert mbpp.program == "def add(a, b):\n    return a + b\n"


def test_execution_key_covers_program_tests_limits_and_sandbox() -> None:
    base = execution_key("p", "t", Limits(), "local-bwrap/1+python3.11.7")
    assert base == execution_key("p", "t", Limits(), "local-bwrap/1+python3.11.7")
    variants = [
        execution_key("p2", "t", Limits(), "local-bwrap/1+python3.11.7"),
        execution_key("p", "t2", Limits(), "local-bwrap/1+python3.11.7"),
        execution_key("p", "t", Limits(cpu_seconds=5), "local-bwrap/1+python3.11.7"),
        execution_key("p", "t", Limits(memory_mb=256), "local-bwrap/1+python3.11.7"),
        execution_key("p", "t", Limits(), "local-bwrap/2+python3.11.7"),
        execution_key("p", "t", Limits(), "modal/1+python3.11"),
    ]
    assert len({base, *variants}) == 7


def test_pass_counts_and_pass_at_k_hook() -> None:
    def estimator(n: int, c: int, k: int) -> float:
        return 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)

    class _Execution:
        def __init__(self, task_id: str, passed: bool) -> None:
            self.task_id, self.passed = task_id, passed

    executions = [
        _Execution("a", True),
        _Execution("a", False),
        _Execution("b", False),
        _Execution("b", False),
    ]
    counts = pass_counts(executions)  # type: ignore[arg-type]
    assert counts == {"a": (2, 1), "b": (2, 0)}
    assert pass_at_k_per_problem(counts, 1, estimator) == {"a": 0.5, "b": 0.0}
    assert pass_at_k_per_problem(counts, 2, estimator) == {"a": 1.0, "b": 0.0}
    with pytest.raises(ValueError, match="at least 3 samples"):
        pass_at_k_per_problem(counts, 3, estimator)


# -- through the sandbox ---------------------------------------------------------------------------


@linux_only
def test_humaneval_canonical_solutions_all_pass(humaneval: list[CodeProblem], pool: SandboxPool) -> None:
    suite = code_suite("humaneval")
    samples = [CodeSample(p.task_id, p.reference) for p in humaneval]
    executions = execute_samples(humaneval, samples, pool, InMemoryExecutionStore(), suite.limits)
    failures = {e.task_id: (e.outcome.status, e.outcome.detail) for e in executions if not e.passed}
    assert failures == {}
    assert sum(e.passed for e in executions) == 164


@linux_only
def test_mbpp_reference_solutions_all_pass(mbpp: list[CodeProblem], pool: SandboxPool) -> None:
    suite = code_suite("mbpp")
    samples = [CodeSample(p.task_id, p.reference) for p in mbpp]
    executions = execute_samples(mbpp, samples, pool, InMemoryExecutionStore(), suite.limits)
    failures = {
        e.task_id: (e.outcome.status, e.outcome.detail, e.outcome.result.stderr[-300:])
        for e in executions
        if not e.passed
    }
    assert failures == {}, failures
    assert status_counts(executions) == {"passed": 500}


@linux_only
def test_wrong_looping_greedy_and_early_exit_solutions(
    humaneval: list[CodeProblem], pool: SandboxPool
) -> None:
    problem = humaneval[0]
    body = problem.reference
    completions = {
        "canonical": body,
        "full_function": "```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        + body
        + "```",
        "wrong": "    return False\n",
        "loops": "    while True:\n        pass\n",
        "greedy": "    block = bytearray(2 * 1024**3)\n    return bool(block)\n",
        "early_exit": "    return True\nimport sys\nsys.exit(0)\n",
        "syntax": "    return (\n",
    }
    samples = [CodeSample(problem.task_id, text, i) for i, text in enumerate(completions.values())]
    limits = Limits(cpu_seconds=2, wall_seconds=20)
    executions = execute_samples({problem.task_id: problem}, samples, pool, InMemoryExecutionStore(), limits)
    outcome = {name: (e.passed, e.outcome.status) for name, e in zip(completions, executions, strict=True)}
    assert outcome == {
        "canonical": (True, Status.PASSED),
        "full_function": (True, Status.PASSED),
        "wrong": (False, Status.FAILED),
        "loops": (False, Status.TIMEOUT),
        "greedy": (False, Status.MEMORY),
        "early_exit": (False, Status.FAILED),
        "syntax": (False, Status.FAILED),
    }
    assert "before the tests completed" in executions[5].outcome.detail


@linux_only
def test_cache_prevents_re_execution_and_deduplicates(
    humaneval: list[CodeProblem], pool: SandboxPool, tmp_path: Path
) -> None:
    problems = humaneval[:6]
    samples = [CodeSample(p.task_id, p.reference, i) for p in problems for i in range(3)]  # 3 identical each
    samples += [CodeSample(problems[0].task_id, "    return None\n", 3)]
    runner = CountingRunner(pool)
    store = SqliteExecutionStore(tmp_path / "executions.sqlite")
    first = execute_samples(problems, samples, runner, store)
    assert runner.requests == 7  # 6 distinct references + 1 wrong completion
    assert not any(e.outcome.cached for e in first)
    assert len(store) == 7

    reopened = SqliteExecutionStore(tmp_path / "executions.sqlite")
    second = execute_samples(problems, samples, runner, reopened)
    assert runner.requests == 7  # nothing ran again
    assert all(e.outcome.cached for e in second)
    assert [e.to_row()["passed"] for e in second] == [e.to_row()["passed"] for e in first]
    assert [e.outcome.key for e in second] == [e.outcome.key for e in first]

    stricter = execute_samples(problems, samples[:1], runner, reopened, Limits(cpu_seconds=5))
    assert runner.requests == 8 and not stricter[0].outcome.cached
    store.close()
    reopened.close()


class _FlakyRunner:
    version = "fake/1"

    def __init__(self) -> None:
        self.calls = 0

    def run_many(
        self,
        requests: Sequence[RunRequest],
        *,
        on_result: Callable[[int, ExecutionResult], None] | None = None,
    ) -> list[ExecutionResult]:
        self.calls += 1
        results = [ExecutionResult(Status.ERROR, None, detail="infrastructure hiccup") for _ in requests]
        for index, result in enumerate(results):
            if on_result is not None:
                on_result(index, result)
        return results


def test_infrastructure_errors_are_retried_within_the_batch_and_not_cached() -> None:
    program = reference_program(_problem())
    store = InMemoryExecutionStore()
    runner = _FlakyRunner()
    for batch in (1, 2):
        (outcome,) = execute_programs([program], runner, store)
        assert outcome.status is Status.ERROR and not outcome.passed
        assert outcome.attempts == 1 + INFRA_RETRIES == 3
        assert runner.calls == batch * (1 + INFRA_RETRIES)
    assert len(store) == 0
    (outcome,) = execute_programs([program], runner, store, retries=0)
    assert outcome.attempts == 1 and outcome.status is Status.ERROR


class _ScriptedRunner:
    """Answers each request from a per-program script of statuses (then ``passed``), counting runs."""

    version = "fake/1"

    def __init__(self, script: dict[str, list[Status]]) -> None:
        self.script = script
        self.runs: dict[str, int] = {}
        self.batches: list[int] = []

    def run_many(
        self,
        requests: Sequence[RunRequest],
        *,
        on_result: Callable[[int, ExecutionResult], None] | None = None,
    ) -> list[ExecutionResult]:
        self.batches.append(len(requests))
        results = []
        for index, request in enumerate(requests):
            name = next((n for n in self.script if n in request.program), request.program)
            seen = self.runs.get(name, 0)
            self.runs[name] = seen + 1
            statuses = self.script.get(name, [])
            status = statuses[seen] if seen < len(statuses) else Status.PASSED
            code = 0 if status is Status.PASSED else None
            # the source holds the completion marker, so an echoed source reads as a completed run
            result = ExecutionResult(status, code, stdout=request.program, detail=str(status))
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results


def test_only_errored_samples_are_retried_and_attempts_are_recorded() -> None:
    def program(name: str) -> str:
        return f"    return a + b  # {name}\n"

    problem = _problem()
    samples = [
        CodeSample("T/0", program("flaky_once"), 0),
        CodeSample("T/0", program("always_broken"), 1),
        CodeSample("T/0", program("seccomp_killed"), 2),
        CodeSample("T/0", program("fine"), 3),
    ]
    runner = _ScriptedRunner(
        {
            "flaky_once": [Status.ERROR],
            "always_broken": [Status.ERROR] * 10,
            "seccomp_killed": [Status.KILLED],
        }
    )
    store = InMemoryExecutionStore()
    executions = execute_samples([problem], samples, runner, store)
    names = ["flaky_once", "always_broken", "seccomp_killed", "fine"]
    by_name = dict(zip(names, executions, strict=True))
    assert runner.batches == [4, 2, 1]  # everything, then the two errors, then the one still failing
    assert sorted(runner.runs.values()) == [1, 1, 2, 3]
    assert runner.runs["flaky_once"] == 2 and runner.runs["always_broken"] == 3
    assert [by_name[n].outcome.attempts for n in by_name] == [2, 3, 1, 1]
    assert [by_name[n].outcome.status for n in by_name] == [
        Status.PASSED,
        Status.ERROR,
        Status.KILLED,
        Status.PASSED,
    ]
    assert by_name["flaky_once"].passed and not by_name["always_broken"].passed
    assert by_name["always_broken"].to_row()["attempts"] == 3
    assert len(store) == 3  # the persistent error is not cached; the killed program is (its own fault)
    again = execute_samples([problem], samples, runner, store)
    assert [e.outcome.cached for e in again] == [True, False, True, True]
    assert [e.outcome.attempts for e in again] == [0, 3, 0, 0]


def test_rows_are_flat() -> None:
    program = reference_program(_problem())
    store = InMemoryExecutionStore()
    result = ExecutionResult(Status.PASSED, 0, stdout=f"\n{program.marker}\n", sandbox="fake/1")
    key = execution_key(program.program_hash, program.tests_hash, Limits(), "fake/1")
    store.put_many({key: result})
    (execution,) = execute_samples(
        [_problem()], [CodeSample("T/0", "    return a + b\n")], _FlakyRunner(), store
    )
    row = execution.to_row()
    assert row["passed"] is True and row["cached"] is True and row["status"] == "passed"
    assert all(isinstance(value, str | int | float | bool | type(None)) for value in row.values())
