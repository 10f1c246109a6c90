"""Items of a suite for a profile: load from pinned data, then a seeded, prefix-stable selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from eval_assets.hashing import sha256_text
from eval_assets.suites.arc import load_arc_easy
from eval_assets.suites.code import load_code_problems
from eval_assets.suites.gsm8k import load_gsm8k
from eval_assets.suites.items import GenerationItem, Item
from eval_assets.suites.mmlu import load_mmlu
from eval_assets.suites.spec import Profile, SuiteSpec

T = TypeVar("T", bound=Item)


def select(items: Sequence[T], profile: Profile) -> list[T]:
    """Order items by a seeded hash of their id and keep the first ``limit``: a larger limit is a superset."""
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("suite items must have unique ids")
    ordered = sorted(items, key=lambda item: sha256_text(f"{profile.seed}:{item.item_id}"))
    return ordered if profile.limit is None else ordered[: profile.limit]


def load_all_items(spec: SuiteSpec, data_root: Path) -> list[Item]:
    if spec.loader == "mmlu":
        return list(load_mmlu(data_root, spec.template.num_fewshot))
    if spec.loader == "arc_easy":
        return list(load_arc_easy(data_root))
    if spec.loader == "gsm8k":
        return list(load_gsm8k(data_root, spec.template.system))
    if spec.loader in ("humaneval", "mbpp"):
        return list(load_code_problems(spec.loader, data_root))
    raise ValueError(f"unknown loader {spec.loader!r}")


def with_samples(items: Sequence[Item], samples: int) -> list[Item]:
    """Each generation item repeated ``samples`` times, as ``<id>#<k>`` with ``sample=k``."""
    if samples == 1:
        return list(items)
    expanded: list[Item] = []
    for item in items:
        if not isinstance(item, GenerationItem):
            raise ValueError(f"item {item.item_id}: only generation items take several samples")
        expanded.extend(replace(item, item_id=f"{item.item_id}#{k}", sample=k) for k in range(samples))
    return expanded


def load_items(spec: SuiteSpec, profile_name: str, data_root: Path) -> list[Item]:
    """The items a profile runs: a prefix-stable selection, each repeated for the profile's samples."""
    selected = select(load_all_items(spec, data_root), spec.profile(profile_name))
    return with_samples(selected, spec.samples(profile_name))
