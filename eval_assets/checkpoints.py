"""Checkpoint manifests: what a checkpoint is (the content hashes of its weights, tokenizer and config) and where
it came from.

Pure: building a manifest reads, parses and hashes files but writes nothing. The registry that stores manifests
is :mod:`resources.checkpoint_registry`. Weights are parsed before anything is hashed or registered (the GGUF
header and tensor table; each safetensors header against its file's size; a torch zip's directory), so a
truncated or corrupt file is refused at registration, with its path, instead of failing inside a run later.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from eval_assets.hashing import (
    LEGACY_TOKENIZER_FILES,
    WEIGHT_SUFFIXES,
    config_hash,
    model_hash,
    model_identity,
    tokenizer_hash,
    weight_files,
)
from eval_assets.yaml_models import parse_yaml_model

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
GGUF_MAGIC = b"GGUF"
#: A safetensors header larger than this is not a header (the format caps it at 100 MB).
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
SAFETENSORS_DTYPE_BYTES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}  # fmt: skip


class CheckpointError(ValueError):
    """A checkpoint cannot be registered; the message says why and what to do."""


class KeyHashes(TypedDict):
    """The hashes a checkpoint's predictions are keyed on (their model identity)."""

    model_hash: str
    tokenizer_hash: str
    config_hash: str


class InboxEntry(BaseModel):
    """A checkpoint manifest file dropped into the inbox (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    path: str
    model_hash: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    source: str | None = None


class CheckpointManifest(BaseModel):
    """A registered checkpoint. ``model_hash`` (weights), ``tokenizer_hash`` and ``config_hash`` (model and
    generation config) together are its identity (:attr:`identity`); ``name`` is a label for people.
    ``config_hash`` is ``None`` only in manifests registered before evalgate hashed configs: such a checkpoint
    is refused until registered again (``evalgate register`` records the hash after re-verifying the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    path: str
    format: Literal["gguf", "hf"]
    backend: Literal["transformers", "vllm", "openai"]
    model_hash: str
    tokenizer_hash: str
    config_hash: str | None = None
    source: str
    registered_at: str

    @property
    def identity(self) -> str:
        """What the prediction cache keys on (:func:`eval_assets.hashing.model_identity`)."""
        return model_identity(**self.key_hashes())

    def key_hashes(self) -> KeyHashes:
        """``model_hash``, ``tokenizer_hash`` and ``config_hash``, as keyword arguments (predictions take them);
        refused for a manifest registered before config hashing."""
        if self.config_hash is None:
            raise CheckpointError(legacy_message(self))
        return KeyHashes(
            model_hash=self.model_hash, tokenizer_hash=self.tokenizer_hash, config_hash=self.config_hash
        )


def legacy_message(manifest: CheckpointManifest) -> str:
    return (
        f"checkpoint {manifest.name} was registered before evalgate recorded the hash of its model and "
        f"generation config, so outputs cannot be keyed on everything that shapes them. Register it again "
        f"(`evalgate register {manifest.path} --name {manifest.name}`): its weights and tokenizer are re-verified "
        "against the manifest and the config hash is added."
    )


# -- parsing weights -------------------------------------------------------------------------------------------
def _refuse(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path}: {problem}. Nothing was registered.")


def _read_u64(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 8], "little")


def check_gguf(path: Path) -> None:
    """Parse a GGUF file's header, metadata and tensor table, and check every tensor lies inside the file.

    Raises:
        CheckpointError: not a GGUF file, truncated, or without the metadata transformers needs to load it.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(24)
    if head[:4] != GGUF_MAGIC:
        raise _refuse(path, f"not a GGUF file (it starts with {head[:4]!r}, not {GGUF_MAGIC!r})")
    if len(head) < 24:
        raise _refuse(path, f"the GGUF header is truncated ({size} bytes)")
    tensors, kvs = _read_u64(head, 8), _read_u64(head, 16)
    # Each tensor-table entry and each metadata entry takes at least 8 bytes (a length-prefixed name), so
    # counts that cannot fit are garbage: refuse before a reader tries to iterate them.
    if (tensors + kvs) * 8 > size:
        raise _refuse(path, f"the GGUF header claims {tensors} tensors and {kvs} metadata entries, more than "
                      f"{size} bytes can hold: the file is truncated or corrupt")  # fmt: skip
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path, "r")
        fields = {
            name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")
        }
        table = [(t.name, int(t.data_offset), int(t.n_bytes)) for t in reader.tensors]
    except Exception as exc:  # the reader fails with ValueError, IndexError, struct.error ... on damage
        raise _refuse(path, f"the GGUF metadata or tensor table cannot be read ({type(exc).__name__}: {exc}); "
                      "the file is truncated or corrupt") from None  # fmt: skip
    if not table:
        raise _refuse(path, "the GGUF file holds no tensors")
    for name, offset, n_bytes in table:
        if offset + n_bytes > size:
            raise _refuse(path, f"tensor {name!r} ends at byte {offset + n_bytes}, past the end of the file "
                          f"({size} bytes): the file is truncated")  # fmt: skip
    for key in ("general.architecture", "tokenizer.ggml.model"):
        if key not in fields:
            raise _refuse(path, f"the GGUF metadata has no {key!r} (transformers needs it to load the model)")
    check_gguf_dimensions(path, fields, {t.name: [int(d) for d in t.shape] for t in reader.tensors})


#: The model dimensions a GGUF must state: without them transformers builds its architecture's default-size model
#: (a 7B llama: tens of GB of memory) and loads this file's tensors into it.
GGUF_DIMENSIONS = ("embedding_length", "block_count")


def check_gguf_dimensions(path: Path, fields: dict[str, object], shapes: dict[str, list[int]]) -> None:
    """The GGUF states its model dimensions, and its token embedding has the stated width."""
    arch = str(fields["general.architecture"])
    for name in GGUF_DIMENSIONS:
        key = f"{arch}.{name}"
        if not isinstance(fields.get(key), int) or int(fields[key]) <= 0:  # type: ignore[call-overload]
            raise _refuse(path, f"the GGUF metadata has no positive {key!r}: transformers would build the "
                          f"default-size {arch} model (gigabytes of memory) instead of this one; export the GGUF "
                          "with its model dimensions")  # fmt: skip
    width = int(fields[f"{arch}.embedding_length"])  # type: ignore[call-overload]
    embedding = shapes.get("token_embd.weight")
    if embedding and embedding[0] != width:
        raise _refuse(path, f"tensor 'token_embd.weight' is {embedding[0]} wide but the metadata says "
                      f"{arch}.embedding_length = {width}: the file is inconsistent")  # fmt: skip


def check_safetensors(path: Path) -> None:
    """Parse a safetensors header and check each tensor's byte range against its dtype, shape and the file.

    Raises:
        CheckpointError: the header is unreadable, a tensor's range is wrong, or the data is truncated.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if length < 2 or length > min(size - 8, SAFETENSORS_MAX_HEADER):
            raise _refuse(
                path, f"not a safetensors file, or truncated (header length {length}, file {size} bytes)"
            )
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"the safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _refuse(path, "the safetensors header is not a JSON object")
    data_size = size - 8 - length
    covered = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            begin, end, count = int(begin), int(end), math.prod(int(d) for d in shape)
        except (KeyError, TypeError, ValueError) as exc:
            raise _refuse(path, f"tensor {name!r} has a malformed header entry ({exc!r})") from None
        width = SAFETENSORS_DTYPE_BYTES.get(str(dtype))
        if not 0 <= begin <= end or (width is not None and end - begin != count * width):
            raise _refuse(path, f"tensor {name!r} ({dtype}, shape {shape}) has byte range [{begin}, {end})")
        if end > data_size:
            raise _refuse(path, f"tensor {name!r} ends at data byte {end}, but the file holds only {data_size}: "
                          "the file is truncated")  # fmt: skip
        covered = max(covered, end)
    if covered != data_size:
        raise _refuse(path, f"the tensors cover {covered} data bytes, the file holds {data_size}")


def check_torch_zip(path: Path) -> None:
    """A ``torch.save`` zip archive must have a readable central directory (a truncated one has none)."""
    with path.open("rb") as handle:
        magic = handle.read(2)
    if magic != b"PK":
        return  # the legacy pickle format: nothing cheap to check
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(
            path, f"the torch archive cannot be read ({exc}); the file is truncated or corrupt"
        ) from None


def _check_json(path: Path) -> None:
    try:
        value: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"cannot be read as JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _refuse(path, "is not a JSON object")


def inspect_checkpoint(path: Path) -> Literal["gguf", "hf"]:
    """The checkpoint's format, decided by content (a file's magic bytes, a directory's ``config.json``), after
    parsing every weight file. Raises :class:`CheckpointError` naming the bad file."""
    if path.is_file():
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic == GGUF_MAGIC or path.suffix == ".gguf":
            check_gguf(path)
            return "gguf"
    elif path.is_dir() and (path / "config.json").is_file():
        for name in ("config.json", "generation_config.json"):
            if (path / name).is_file():
                _check_json(path / name)
        files = weight_files(path)
        if not files:
            raise CheckpointError(
                f"{path}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) beside config.json. Nothing was registered."
            )
        for file in files:
            if file.suffix == ".safetensors":
                check_safetensors(file)
            elif file.suffix == ".gguf":
                check_gguf(file)
            else:
                check_torch_zip(file)
        return "hf"
    raise CheckpointError(
        f"{path} is neither a GGUF file (.gguf) nor a Hugging Face directory with config.json; "
        "point at the weights you want evaluated."
    )


def detect_format(path: Path) -> Literal["gguf", "hf"]:
    """Alias of :func:`inspect_checkpoint` (the format is decided by content, after the weights are parsed)."""
    return inspect_checkpoint(path)


# -- hashes -----------------------------------------------------------------------------------------------------
def checkpoint_hashes(path: Path) -> tuple[str, str, str]:
    """(model_hash, tokenizer_hash, config_hash) of the checkpoint at ``path``, as they are now."""
    try:
        weights = model_hash(path)
        return weights, tokenizer_hash(path, weights), config_hash(path, weights)
    except (FileNotFoundError, PermissionError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc


def legacy_tokenizer_hash(manifest: CheckpointManifest) -> str:
    """The tokenizer hash as manifests without ``config_hash`` computed it (fewer files), for re-verifying them."""
    path = Path(manifest.path)
    return tokenizer_hash(path, manifest.model_hash, LEGACY_TOKENIZER_FILES)


def verify_manifest(manifest: CheckpointManifest) -> None:
    """Re-hash the checkpoint's weights, tokenizer and config and compare them with its manifest.

    Raises:
        CheckpointError: any of the three changed under the registered name, the files are gone, or the
            manifest predates config hashing.
    """
    if manifest.config_hash is None:
        raise CheckpointError(legacy_message(manifest))
    weights, tokenizer, config = checkpoint_hashes(Path(manifest.path))
    changed = [
        f"{what} at {manifest.path} now hash to {now}, registered as {then}"
        for what, now, then in (
            ("weights", weights, manifest.model_hash),
            ("tokenizer files", tokenizer, manifest.tokenizer_hash),
            ("model/generation config files", config, manifest.config_hash),
        )
        if now != then
    ]
    if changed:
        raise CheckpointError(
            f"checkpoint {manifest.name}: {'; '.join(changed)}. What a registered name points at must not "
            "change (cached outputs are keyed on it); register the changed checkpoint under a new name."
        )


def build_manifest(
    path: Path,
    *,
    name: str,
    declared_hash: str | None = None,
    backend: Literal["transformers", "vllm", "openai"] = "transformers",
    source: str = "cli",
) -> CheckpointManifest:
    """Parse and hash the checkpoint at ``path`` and describe it. Raises :class:`CheckpointError` on anything
    wrong (nothing is registered then)."""
    if not re.match(NAME_PATTERN, name):
        raise CheckpointError(
            f"checkpoint name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 100)"
        )
    path = path.expanduser().resolve()
    if not path.exists():
        raise CheckpointError(f"checkpoint weights not found at {path}")
    try:
        fmt = inspect_checkpoint(path)
    except PermissionError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    weights, tokenizer, config = checkpoint_hashes(path)
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
        config_hash=config,
        source=source,
        registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def parse_inbox_entry(file: Path) -> InboxEntry:
    """Read an inbox manifest; a malformed one raises :class:`CheckpointError` naming file and field."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"{file}: cannot read checkpoint manifest: {exc}") from exc
    return parse_yaml_model(
        InboxEntry, text, source=str(file), what="checkpoint manifest", error=CheckpointError
    )


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
