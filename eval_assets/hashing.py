"""Content hashes that make results reproducible: canonical JSON, prompts, sampling params, weight files.

``model_hash`` is a content hash of a checkpoint's weight files: two names for the same weights share it,
new weights never do. ``tokenizer_hash`` and ``config_hash`` cover the tokenizer files and the model and
generation configs beside them (a GGUF file embeds both, so its weights hash covers them). The prediction
cache keys on :func:`model_identity`, which covers all three: the same weights with another tokenizer or
config are another model. Streaming keeps memory flat on multi-GB checkpoints; file digests are memoized by
(path, size, mtime) so re-registering or re-verifying an unchanged checkpoint costs a ``stat``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eval_assets.datapkgs import file_sha256

#: Files that hold weights, by suffix. Everything else in a checkpoint directory is config or tokenizer.
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth")
#: Files that define the tokenizer of a Hugging Face checkpoint directory.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
)
#: The tokenizer files hashed before ``added_tokens.json`` was added: manifests registered then are verified
#: against these.
LEGACY_TOKENIZER_FILES = tuple(name for name in TOKENIZER_FILES if name != "added_tokens.json")
#: Files that configure the model and its decoding (``generation_config.json`` sets defaults such as
#: ``repetition_penalty`` that ``generate`` applies): they shape outputs as much as the weights do.
CONFIG_FILES = ("config.json", "generation_config.json")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_value(value: Any) -> str:
    """sha256 of the canonical JSON of ``value``."""
    return sha256_text(canonical_json(value))


def prompt_hash(rendered: Any) -> str:
    """Hash of a fully rendered prompt (a string, or the list of (context, continuation) requests of an item)."""
    return hash_value({"prompt": rendered})


def sampling_hash(params: Mapping[str, Any]) -> str:
    """Hash of canonical sampling params (seed and engine included)."""
    return hash_value(dict(params))


def files_hash(root: Path, files: Iterable[Path]) -> str:
    """sha256 over sorted (path relative to ``root``, file sha256) pairs."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(file_sha256(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def weight_files(path: Path) -> list[Path]:
    """The weight files of a checkpoint: the file itself, or the weight files inside a directory."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def model_hash(path: Path) -> str:
    """Content hash of the weights. File names do not matter for a single file; inside a directory the
    relative names do (sharded checkpoints are ordered by them)."""
    files = weight_files(path)
    if not files:
        raise FileNotFoundError(
            f"No weight files ({', '.join(WEIGHT_SUFFIXES)}) found at {path}. "
            "Point at a .gguf file or a directory with .safetensors weights."
        )
    if path.is_file():
        return "sha256:" + file_sha256(path)
    return "sha256:" + files_hash(path, files)


def _embedded(what: str, weights_hash: str) -> str:
    return "sha256:" + sha256_text(f"{what}embedded-in:{weights_hash}")


def tokenizer_hash(path: Path, weights_hash: str, names: Iterable[str] = TOKENIZER_FILES) -> str:
    """Hash of the tokenizer files of a directory checkpoint; a GGUF file embeds its tokenizer, so its
    tokenizer hash is derived from the weights hash."""
    if path.is_file():
        return _embedded("", weights_hash)
    files = [path / name for name in names if (path / name).is_file()]
    if not files:
        raise FileNotFoundError(
            f"No tokenizer files ({', '.join(TOKENIZER_FILES)}) in {path}; save the tokenizer beside the weights."
        )
    return "sha256:" + files_hash(path, files)


def config_hash(path: Path, weights_hash: str) -> str:
    """Hash of the model and generation configs of a directory checkpoint (``config.json`` required,
    ``generation_config.json`` when present); a GGUF file embeds its config in its metadata, so its config hash
    is derived from the weights hash."""
    if path.is_file():
        return _embedded("config:", weights_hash)
    files = [path / name for name in CONFIG_FILES if (path / name).is_file()]
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"No config.json in {path}; save the model config beside the weights.")
    return "sha256:" + files_hash(path, files)


def model_identity(model_hash: str, tokenizer_hash: str, config_hash: str) -> str:
    """What the prediction cache keys on: the weights, the tokenizer and the model/generation config. Two names
    for one checkpoint share it; changing any of the three gives a new identity, so nothing cached for the old
    one is served for the new."""
    return "sha256:" + hash_value({"model": model_hash, "tokenizer": tokenizer_hash, "config": config_hash})


#: Per-sample seeds fit in 31 bits: every engine and server takes them (llama.cpp's are 32-bit unsigned).
SEED_BITS = 31


def sample_seed(seed: int, prompt_hash: str) -> int:
    """The seed of one sample: derived from the suite's seed and the sample's prompt hash (which covers the
    rendered prompt and the sample index), so sample k of a prompt is drawn the same way whichever batch it
    runs in, whichever other items missed the cache, and however many samples the profile asks for."""
    return int(sha256_text(f"{seed}:{prompt_hash}")[:16], 16) & ((1 << SEED_BITS) - 1)
