"""The Dagster-free core of code suites (HumanEval, MBPP): problems, programs, sandboxed execution with caching.

Entry points, in the order the assets use them (``predictions/<suite>`` → ``code_executions/<suite>`` →
``scores``)::

    from eval_assets.code import (
        CodeSample, SqliteExecutionStore, code_suite, execute_samples, pass_counts, pass_at_k_per_problem,
    )
    from sandboxes import SandboxPool

    suite = code_suite("humaneval")                  # or "mbpp"; suite.limits: 10 s CPU, 512 MiB
    problems = suite.load(None)                      # list[CodeProblem]; None = $EVALGATE_DATA_DIR
    # problem.prompt goes to the model; n samples per problem at the spec's temperature come back as:
    samples = [CodeSample(task_id, completion, sample_index), ...]
    with SandboxPool() as pool:                      # local bwrap workers, two per CPU, each its own uid
        executions = execute_samples(problems, samples, pool, SqliteExecutionStore(path), suite.limits)
    rows = [e.to_row() for e in executions]          # code_executions/<suite> table rows
    counts = pass_counts(executions)                 # task_id -> (n, c)
    per_problem = pass_at_k_per_problem(counts, k, estimator)  # estimator(n, c, k), from eval_assets.stats

- :class:`ExecutionStore` is the cache protocol (``get_many`` / ``put_many`` by execution key, thread-safe);
  :class:`InMemoryExecutionStore` and :class:`SqliteExecutionStore` implement it; a Delta-backed one can too.
- :func:`execution_key` = sha256 of (program hash, tests hash, limits, sandbox version, assembly version):
  re-materializing runs nothing that already ran; changing limits, tests, the isolation recipe or the
  interpreter runs everything again.
- Every outcome has ``passed`` and a ``status`` (passed, failed, timeout, memory, killed, error). ``error`` is
  the infrastructure's failure (the sandbox could not start, its cgroup could not be made, the host killed
  it), never the program's: it is retried within the batch (``INFRA_RETRIES`` = 2 more runs, counted in
  ``attempts``), never cached, and if it persists it comes back as ``error``: not passed, never dropped from a
  denominator. ``killed`` (seccomp, the file-size limit, a crash) is the program's own doing and is cached.
- Model completions are never executed outside the sandbox (``extract_code`` only parses them).
"""

from eval_assets.code._aggregate import PassAtK, pass_at_k_per_problem, pass_counts, status_counts
from eval_assets.code._execute import (
    EXECUTION_KEY_VERSION,
    INFRA_RETRIES,
    BatchRunner,
    CodeExecution,
    CodeSample,
    ProgramOutcome,
    execute_programs,
    execute_samples,
    execution_key,
    judge,
)
from eval_assets.code._problems import (
    HUMANEVAL_FILE,
    MBPP_FILE,
    CodeProblem,
    load_humaneval,
    load_mbpp,
)
from eval_assets.code._programs import (
    ASSEMBLY_VERSION,
    CodeProgram,
    assemble_program,
    extract_code,
    reference_program,
)
from eval_assets.code._store import (
    DeltaExecutionStore,
    ExecutionStore,
    InMemoryExecutionStore,
    SqliteExecutionStore,
    open_execution_store,
)
from eval_assets.code._suites import CODE_SUITES, CodeSuite, code_suite

__all__ = [
    "ASSEMBLY_VERSION",
    "CODE_SUITES",
    "EXECUTION_KEY_VERSION",
    "HUMANEVAL_FILE",
    "INFRA_RETRIES",
    "MBPP_FILE",
    "BatchRunner",
    "CodeExecution",
    "CodeProblem",
    "CodeProgram",
    "CodeSample",
    "CodeSuite",
    "DeltaExecutionStore",
    "ExecutionStore",
    "InMemoryExecutionStore",
    "PassAtK",
    "ProgramOutcome",
    "SqliteExecutionStore",
    "assemble_program",
    "code_suite",
    "execute_programs",
    "execute_samples",
    "execution_key",
    "extract_code",
    "judge",
    "load_humaneval",
    "load_mbpp",
    "open_execution_store",
    "pass_at_k_per_problem",
    "pass_counts",
    "reference_program",
    "status_counts",
]
