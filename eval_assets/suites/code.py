"""Code suites as generation items: the problem's prompt, continued as plain text (no chat template)."""

from __future__ import annotations

from pathlib import Path

from eval_assets.code import code_suite
from eval_assets.suites.items import GenerationItem


def load_code_problems(name: str, data_root: Path) -> list[GenerationItem]:
    """One item per problem; ``gold`` is the task id, since correctness is decided by running the tests."""
    return [
        GenerationItem(item_id=problem.task_id, messages=(("user", problem.prompt),), gold=problem.task_id)
        for problem in code_suite(name).load(data_root)
    ]
