"""Versioned suite definitions: YAML specs validated by pydantic, loaders that read pinned data in place,
prompt templates next to the parsers of their answers.

Names are imported lazily (the component registry in :mod:`eval_assets.kinds` imports the item types from here
while the spec module imports the registry).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem
    from eval_assets.suites.spec import (
        SuiteSpec,
        SuiteSpecError,
        load_suite_spec,
        load_suite_specs,
        suite_code_version,
        suite_specs_from,
    )

_EXPORTS = {
    "GenerationItem": "eval_assets.suites.items",
    "Item": "eval_assets.suites.items",
    "LikelihoodItem": "eval_assets.suites.items",
    "SuiteSpec": "eval_assets.suites.spec",
    "SuiteSpecError": "eval_assets.suites.spec",
    "load_suite_spec": "eval_assets.suites.spec",
    "load_suite_specs": "eval_assets.suites.spec",
    "suite_code_version": "eval_assets.suites.spec",
    "suite_specs_from": "eval_assets.suites.spec",
}

__all__ = [
    "GenerationItem",
    "Item",
    "LikelihoodItem",
    "SuiteSpec",
    "SuiteSpecError",
    "load_suite_spec",
    "load_suite_specs",
    "suite_code_version",
    "suite_specs_from",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
