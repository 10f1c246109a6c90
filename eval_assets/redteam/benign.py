"""The benign (over-refusal) prompts: XSTest's 250 safe prompts and evalgate's own benign-but-edgy set
(``benign_prompts.yaml``, >= 150 prompts in XSTest's categories plus code security, medicine, chemistry homework,
fiction and history), each with its category."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from eval_assets.redteam.sources import Behaviour, xstest

PROJECT_PROMPTS = "benign_prompts.yaml"
#: prompts per source, asserted in the tests
EXPECTED_COUNTS = {"xstest_safe": 250, "evalgate_benign": 154}


def project_prompts(path: Path | None = None) -> list[Behaviour]:
    """evalgate's own benign prompts, ids ``evalgate:<category>-<nn>``."""
    source = path or Path(str(resources.files("eval_assets.redteam").joinpath(PROJECT_PROMPTS)))
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    out: list[Behaviour] = []
    for category, prompts in raw.items():
        if category == "version":
            continue
        out.extend(Behaviour(f"evalgate:{category}-{i:02d}", "evalgate_benign", category, str(p).strip())
                   for i, p in enumerate(prompts, start=1))  # fmt: skip
    return out


def benign_sources() -> dict[str, list[Behaviour]]:
    return {"xstest_safe": xstest("safe"), "evalgate_benign": project_prompts()}
