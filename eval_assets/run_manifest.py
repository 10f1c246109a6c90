"""What a result was produced with: package versions, seeds and hashes, recorded with every prediction set."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

RECORDED_PACKAGES = (
    "evalgate", "dagster", "lm-eval", "torch", "transformers", "vllm", "numpy", "polars", "deltalake",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_manifest(**hashes: Any) -> dict[str, Any]:
    return {"python": platform.python_version(), "packages": package_versions(), **hashes}
