from pathlib import Path

import pytest

from eval_assets.checkpoints import CheckpointError, build_manifest, manifest_from_inbox, parse_inbox_entry
from resources.checkpoint_registry import CheckpointRegistry


def _gguf(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(content)
    return path


def test_manifest_records_identity_and_source(tmp_path: Path) -> None:
    manifest = build_manifest(_gguf(tmp_path, "m", b"abc"), name="m-1", source="unit-test")
    assert manifest.format == "gguf"
    assert manifest.model_hash.startswith("sha256:") and len(manifest.model_hash) == 71
    assert manifest.tokenizer_hash != manifest.model_hash
    assert manifest.source == "unit-test"


def test_declared_hash_mismatch_registers_nothing(tmp_path: Path) -> None:
    path = _gguf(tmp_path, "m", b"abc")
    with pytest.raises(CheckpointError, match="declares"):
        build_manifest(path, name="m", declared_hash="sha256:" + "0" * 64)


def test_missing_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        build_manifest(tmp_path / "nope.gguf", name="x")
    (tmp_path / "weights.txt").write_text("?")
    with pytest.raises(CheckpointError, match=r"neither a \.gguf"):
        build_manifest(tmp_path / "weights.txt", name="x")
    with pytest.raises(CheckpointError, match="not allowed"):
        build_manifest(_gguf(tmp_path, "m", b"a"), name="../etc")


def test_registry_name_taken_by_other_weights(tmp_path: Path) -> None:
    registry = CheckpointRegistry(tmp_path / "registry")
    first = build_manifest(_gguf(tmp_path, "a", b"one"), name="ckpt")
    assert registry.add(first) is True
    assert registry.add(build_manifest(_gguf(tmp_path, "a2", b"one"), name="ckpt")) is False  # same weights
    with pytest.raises(CheckpointError, match="already registered for other weights"):
        registry.add(build_manifest(_gguf(tmp_path, "b", b"two"), name="ckpt"))
    assert registry.get("ckpt").model_hash == first.model_hash
    assert registry.names() == ["ckpt"]
    with pytest.raises(CheckpointError, match="evalgate register"):
        registry.get("unknown")


def test_two_names_for_the_same_weights_share_the_hash(tmp_path: Path) -> None:
    path = _gguf(tmp_path, "a", b"same")
    assert build_manifest(path, name="x").model_hash == build_manifest(path, name="y").model_hash


def test_inbox_manifest_resolves_relative_paths(tmp_path: Path) -> None:
    _gguf(tmp_path, "w", b"w")
    entry = tmp_path / "new.yaml"
    entry.write_text("name: from-inbox\npath: w.gguf\n")
    manifest = manifest_from_inbox(entry)
    assert manifest.name == "from-inbox" and manifest.path == str((tmp_path / "w.gguf").resolve())
    assert manifest.source == "inbox:new.yaml"


def test_malformed_inbox_manifest_names_file_and_field(tmp_path: Path) -> None:
    entry = tmp_path / "bad.yaml"
    entry.write_text("name: ok\npth: w.gguf\n")
    with pytest.raises(CheckpointError) as info:
        parse_inbox_entry(entry)
    assert "bad.yaml" in str(info.value) and "pth" in str(info.value)
    entry.write_text("- just\n- a list\n")
    with pytest.raises(CheckpointError, match="mapping"):
        parse_inbox_entry(entry)
