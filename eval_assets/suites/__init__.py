"""Versioned suite definitions: YAML specs validated by pydantic, loaders that read pinned data in place,
prompt templates next to the parsers of their answers."""

from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem
from eval_assets.suites.spec import (
    SuiteSpec,
    SuiteSpecError,
    load_suite_spec,
    load_suite_specs,
    suite_code_version,
)

__all__ = [
    "GenerationItem",
    "Item",
    "LikelihoodItem",
    "SuiteSpec",
    "SuiteSpecError",
    "load_suite_spec",
    "load_suite_specs",
    "suite_code_version",
]
