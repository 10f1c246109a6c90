"""The code suites and their defaults. Sampling (n, temperature) lives in the suite spec, not here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eval_assets.code._problems import CodeProblem, load_humaneval, load_mbpp
from sandboxes import DEFAULT_LIMITS, Limits


@dataclass(frozen=True)
class CodeSuite:
    """A code suite: how to load its problems and the limits its programs run under.

    ``version`` changes whenever the problems or how they are tested change (bump it with the data pins).
    """

    name: str
    version: int
    load: Callable[[Path | None], list[CodeProblem]]
    limits: Limits = DEFAULT_LIMITS


CODE_SUITES: dict[str, CodeSuite] = {
    "humaneval": CodeSuite("humaneval", 1, load_humaneval),
    "mbpp": CodeSuite("mbpp", 1, load_mbpp),
}


def code_suite(name: str) -> CodeSuite:
    try:
        return CODE_SUITES[name]
    except KeyError:
        raise KeyError(f"unknown code suite {name!r}; choose one of {sorted(CODE_SUITES)}") from None
