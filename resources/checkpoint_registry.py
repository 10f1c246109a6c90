"""The registry of checkpoint names: one JSON manifest per name, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from eval_assets.checkpoints import CheckpointError, CheckpointManifest


class CheckpointRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def get(self, name: str) -> CheckpointManifest:
        file = self._file(name)
        if not file.is_file():
            raise CheckpointError(
                f"checkpoint {name!r} is not registered (no {file}); register it with `evalgate register PATH --name {name}`"
            )
        return CheckpointManifest.model_validate_json(file.read_text(encoding="utf-8"))

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def add(self, manifest: CheckpointManifest) -> bool:
        """Store a manifest. Returns False when the same name already holds the same weights (idempotent);
        raises when the name is taken by other weights."""
        file = self._file(manifest.name)
        if file.is_file():
            existing = self.get(manifest.name)
            if existing.model_hash == manifest.model_hash:
                return False
            raise CheckpointError(
                f"checkpoint name {manifest.name!r} is already registered for other weights "
                f"({existing.model_hash} at {existing.path}); choose a new name for {manifest.model_hash}"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=self.root, prefix=".manifest-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(manifest.model_dump(mode="json"), out, indent=2, sort_keys=True)
        os.replace(staging, file)
        return True
