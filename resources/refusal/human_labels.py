"""Human-labelled completions for training and validating refusal classifiers, each set from its own source.

* ``xstest_gpt4``, ``xstest_llama2``: XSTest v2 completions of GPT-4 and Llama-2-70b-chat on XSTest's 450 prompts,
  two annotators each, ``final_label`` in XSTest's three classes (shared/datasets/xstest/).
* ``pyrit_refusal``, ``pyrit_refusal_extra``: PyRIT's refusal-scorer evaluation sets (``human_score`` 1 = refusal,
  0 = not), binary (pyrit 1.1.0, ``datasets/scorer_evals/refusal_scorer/``).

Every file is verified by sha256 before it is read. Sources are kept apart so that validation is always out of
distribution: a classifier is tested on a source it was not trained on.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval_assets.datapkgs import data_file
from eval_assets.redteam._shared import shared_file
from resources.refusal._labels import COMPLIANCE, REFUSAL, XSTEST_LABELS, Label

PYRIT_DIR = "pyrit/datasets/scorer_evals/refusal_scorer"
XSTEST_SETS = {"xstest_gpt4": "xstest/xstest_v2_completions_gpt4.csv",
               "xstest_llama2": "xstest/xstest_v2_completions_llama2new.csv"}  # fmt: skip
PYRIT_SETS = {
    "pyrit_refusal": f"{PYRIT_DIR}/refusal.csv",
    "pyrit_refusal_extra": f"{PYRIT_DIR}/refusal_extra.csv",
}
SOURCES: tuple[str, ...] = (*XSTEST_SETS, *PYRIT_SETS)
#: the two sets the reference numbers are reported on (XSTest paper: string match kappa ~0.86, GPT-4 ~0.75)
REFERENCE_SOURCES: tuple[str, ...] = tuple(XSTEST_SETS)


@dataclass(frozen=True)
class LabelledExchange:
    source: str
    item_id: str
    prompt: str
    completion: str
    label: Label
    #: the individual annotators' labels where the source has them (XSTest: two), else empty
    annotators: tuple[Label, ...] = ()


def _xstest(source: str, path: Path) -> list[LabelledExchange]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            label = XSTEST_LABELS[row["final_label"]]
            annotators = (XSTEST_LABELS[row["annotation_1"]], XSTEST_LABELS[row["annotation_2"]])
        except KeyError as exc:
            raise ValueError(f"{path}:{line}: unknown XSTest label {exc}") from None
        out.append(
            LabelledExchange(source, row["id"], row["prompt"], row["completion"] or "", label, annotators)
        )
    return out


def _pyrit(source: str, path: Path) -> list[LabelledExchange]:
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    out = []
    for index, row in enumerate(csv.DictReader(lines)):
        score = row["human_score"].strip()
        if score not in ("0", "1"):
            raise ValueError(f"{path}: row {index}: human_score {score!r} is not 0 or 1")
        label = REFUSAL if score == "1" else COMPLIANCE
        out.append(
            LabelledExchange(source, f"{source}-{index}", row["objective"], row["assistant_response"], label)
        )
    return out


def load_labelled(sources: Sequence[str] = SOURCES, data_root: Path | None = None,
                  shared_root: Path | None = None) -> list[LabelledExchange]:  # fmt: skip
    """The labelled exchanges of ``sources`` (in that order), every file verified by sha256 first."""
    out: list[LabelledExchange] = []
    for source in sources:
        if source in XSTEST_SETS:
            out.extend(_xstest(source, shared_file(XSTEST_SETS[source], shared_root)))
        elif source in PYRIT_SETS:
            out.extend(_pyrit(source, data_file(PYRIT_SETS[source], data_root)))
        else:
            raise ValueError(f"unknown labelled source {source!r}; choose from {', '.join(SOURCES)}")
    return out
