"""The registry of checkpoint names: one JSON manifest per name, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from eval_assets.checkpoints import CheckpointError, CheckpointManifest, legacy_tokenizer_hash


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
        """Store a manifest. Returns False when the same name already holds the same checkpoint (weights,
        tokenizer and config: idempotent); raises when the name is taken by another one. A manifest registered
        before config hashing (no ``config_hash``) is upgraded in place when its weights and tokenizer still
        match: the config hash is added and True returned."""
        file = self._file(manifest.name)
        if file.is_file():
            existing = self.get(manifest.name)
            if existing.model_hash != manifest.model_hash:
                raise CheckpointError(
                    f"checkpoint name {manifest.name!r} is already registered for other weights "
                    f"({existing.model_hash} at {existing.path}); choose a new name for {manifest.model_hash}"
                )
            if (existing.tokenizer_hash, existing.config_hash) == (
                manifest.tokenizer_hash,
                manifest.config_hash,
            ):
                return False
            if existing.config_hash is None and manifest.config_hash is not None:
                try:
                    legacy_tokenizer = legacy_tokenizer_hash(manifest)
                except (FileNotFoundError, PermissionError) as exc:
                    raise CheckpointError(f"cannot read checkpoint {manifest.path}: {exc}") from exc
                if legacy_tokenizer != existing.tokenizer_hash:
                    raise CheckpointError(
                        f"checkpoint name {manifest.name!r} is registered for these weights with other tokenizer "
                        f"files ({existing.tokenizer_hash}); choose a new name for this tokenizer"
                    )
                self._write(manifest.model_copy(update={"registered_at": existing.registered_at}))
                return True
            differs = [
                f"{what} (registered {then}, now {now})"
                for what, then, now in (
                    ("tokenizer", existing.tokenizer_hash, manifest.tokenizer_hash),
                    ("config", existing.config_hash, manifest.config_hash),
                )
                if then != now
            ]
            raise CheckpointError(
                f"checkpoint name {manifest.name!r} is already registered for these weights with another "
                f"{' and '.join(differs)}; outputs depend on both, so choose a new name for this checkpoint"
            )
        self._write(manifest)
        return True

    def _write(self, manifest: CheckpointManifest) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=self.root, prefix=".manifest-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(manifest.model_dump(mode="json"), out, indent=2, sort_keys=True)
        os.replace(staging, self._file(manifest.name))
