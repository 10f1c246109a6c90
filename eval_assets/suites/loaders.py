"""Items of a suite for a profile: load through the spec's registered loader, then a seeded, prefix-stable
selection, each item repeated for the profile's samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from eval_assets.hashing import sha256_text
from eval_assets.kinds._registry import get_kind, get_loader
from eval_assets.kinds._types import LoadContext
from eval_assets.suites.items import GenerationItem, Item
from eval_assets.suites.spec import Profile, SuiteSpec

T = TypeVar("T", bound=Item)


def select(items: Sequence[T], profile: Profile) -> list[T]:
    """Order items by a seeded hash of their id and keep the first ``limit``: a larger limit is a superset."""
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("suite items must have unique ids")
    ordered = sorted(items, key=lambda item: sha256_text(f"{profile.seed}:{item.item_id}"))
    return ordered if profile.limit is None else ordered[: profile.limit]


def load_context(spec: SuiteSpec, data_root: Path) -> LoadContext:
    return LoadContext(data_root=data_root, spec_dir=spec.source.parent if spec.source is not None else None)


def load_all_items(spec: SuiteSpec, data_root: Path) -> list[Item]:
    """Every item of the suite, from its loader, checked to be of the type its kind predicts."""
    items = get_loader(spec.loader).load(spec, spec.loader_options(), load_context(spec, data_root))
    item_type = get_kind(spec.kind).item_type
    wrong = [item.item_id for item in items if not isinstance(item, item_type)]
    if wrong:
        raise ValueError(
            f"{spec.where}: loader `{spec.loader}` gave items that kind {spec.kind} cannot score "
            f"(expected {item_type.__name__}): {wrong[:3]}"
        )
    if not items:
        raise ValueError(f"{spec.where}: loader `{spec.loader}` found no items")
    return items


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
