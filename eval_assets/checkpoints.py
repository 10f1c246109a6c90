"""Checkpoint manifests: what a checkpoint is (its weights' content hash) and where it came from.

Pure: building a manifest reads and hashes files but writes nothing. The registry that stores manifests is
:mod:`resources.checkpoint_registry`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.hashing import model_hash, tokenizer_hash
from eval_assets.yaml_models import parse_yaml_model

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class CheckpointError(ValueError):
    """A checkpoint cannot be registered; the message says why and what to do."""


class InboxEntry(BaseModel):
    """A checkpoint manifest file dropped into the inbox (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    path: str
    model_hash: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    source: str | None = None


class CheckpointManifest(BaseModel):
    """A registered checkpoint. ``model_hash`` is its identity; ``name`` is a label for people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    path: str
    format: Literal["gguf", "hf"]
    backend: Literal["transformers", "vllm", "openai"]
    model_hash: str
    tokenizer_hash: str
    source: str
    registered_at: str


def detect_format(path: Path) -> Literal["gguf", "hf"]:
    if path.is_file() and path.suffix == ".gguf":
        return "gguf"
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"
    raise CheckpointError(
        f"{path} is neither a .gguf file nor a Hugging Face directory with config.json; "
        "point at the weights you want evaluated."
    )


def build_manifest(
    path: Path,
    *,
    name: str,
    declared_hash: str | None = None,
    backend: Literal["transformers", "vllm", "openai"] = "transformers",
    source: str = "cli",
) -> CheckpointManifest:
    """Hash the weights at ``path`` and describe them. Raises :class:`CheckpointError` on anything wrong."""
    if not re.match(NAME_PATTERN, name):
        raise CheckpointError(
            f"checkpoint name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 100)"
        )
    path = path.expanduser().resolve()
    if not path.exists():
        raise CheckpointError(f"checkpoint weights not found at {path}")
    fmt = detect_format(path)
    try:
        weights = model_hash(path)
        tokenizer = tokenizer_hash(path, weights)
    except (FileNotFoundError, PermissionError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if declared_hash is not None and declared_hash != weights:
        raise CheckpointError(
            f"checkpoint {name!r} at {path} hashes to {weights}, but its manifest declares {declared_hash}: "
            "the weights changed or the manifest points at the wrong files. Nothing was registered."
        )
    return CheckpointManifest(
        name=name,
        path=str(path),
        format=fmt,
        backend=backend,
        model_hash=weights,
        tokenizer_hash=tokenizer,
        source=source,
        registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def parse_inbox_entry(file: Path) -> InboxEntry:
    """Read an inbox manifest; a malformed one raises :class:`CheckpointError` naming file and field."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read checkpoint manifest: {exc}") from exc
    return parse_yaml_model(InboxEntry, text, source=str(file), what="checkpoint manifest", error=CheckpointError)


def manifest_from_inbox(file: Path) -> CheckpointManifest:
    entry = parse_inbox_entry(file)
    weights = Path(entry.path)
    if not weights.is_absolute():
        weights = file.parent / weights
    return build_manifest(
        weights,
        name=entry.name,
        declared_hash=entry.model_hash,
        backend=entry.backend,
        source=entry.source or f"inbox:{file.name}",
    )
