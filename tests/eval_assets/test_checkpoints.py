import json
import struct
from pathlib import Path

import pytest
from weights_testing import tiny_gguf, tiny_hf_dir

from eval_assets.checkpoints import (
    CheckpointError,
    CheckpointManifest,
    build_manifest,
    manifest_from_inbox,
    parse_inbox_entry,
    verify_manifest,
)
from eval_assets.hashing import model_identity
from resources.checkpoint_registry import CheckpointRegistry


def _gguf(tmp_path: Path, name: str, salt: str = "") -> Path:
    return tiny_gguf(tmp_path / f"{name}.gguf", salt or name)


def test_manifest_records_identity_and_source(tmp_path: Path) -> None:
    manifest = build_manifest(_gguf(tmp_path, "m"), name="m-1", source="unit-test")
    assert manifest.format == "gguf"
    assert manifest.model_hash.startswith("sha256:") and len(manifest.model_hash) == 71
    assert manifest.tokenizer_hash != manifest.model_hash
    assert manifest.config_hash is not None and manifest.config_hash not in (
        manifest.model_hash,
        manifest.tokenizer_hash,
    )
    assert manifest.identity == model_identity(
        manifest.model_hash, manifest.tokenizer_hash, manifest.config_hash
    )
    assert manifest.source == "unit-test"


def test_declared_hash_mismatch_registers_nothing(tmp_path: Path) -> None:
    path = _gguf(tmp_path, "m")
    with pytest.raises(CheckpointError, match="declares"):
        build_manifest(path, name="m", declared_hash="sha256:" + "0" * 64)


def test_missing_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        build_manifest(tmp_path / "nope.gguf", name="x")
    (tmp_path / "weights.txt").write_text("?")
    with pytest.raises(CheckpointError, match=r"neither a GGUF file \(\.gguf\)"):
        build_manifest(tmp_path / "weights.txt", name="x")
    with pytest.raises(CheckpointError, match="not allowed"):
        build_manifest(_gguf(tmp_path, "m"), name="../etc")


# -- weights are parsed at registration ----------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.5, 0.9, 40 / 480])
def test_truncated_gguf_is_refused_with_its_path_and_nothing_registered(tmp_path: Path, keep: float) -> None:
    whole = _gguf(tmp_path, "whole").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[: int(len(whole) * keep)])
    registry = CheckpointRegistry(tmp_path / "registry")
    with pytest.raises(CheckpointError) as raised:
        registry.add(build_manifest(cut, name="cut"))
    message = str(raised.value)
    assert str(cut) in message and "Nothing was registered" in message
    assert "truncated" in message or "corrupt" in message
    assert registry.names() == []


def test_a_gguf_suffix_does_not_make_a_gguf_file(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(CheckpointError, match=r"not a GGUF file"):
        build_manifest(fake, name="fake")
    garbage = tmp_path / "garbage.gguf"  # the right magic, then counts no file of this size can hold
    garbage.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + bytes(64))
    with pytest.raises(CheckpointError, match="more than"):
        build_manifest(garbage, name="garbage")


def test_a_gguf_without_an_embedded_tokenizer_is_refused(tmp_path: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "notok.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("w", np.ones((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(CheckpointError, match=r"tokenizer\.ggml\.model"):
        build_manifest(path, name="notok")


@pytest.mark.parametrize("missing", ["embedding_length", "block_count", "width"])
def test_a_gguf_without_its_dimensions_is_refused_before_anything_loads_it(
    tmp_path: Path, missing: str
) -> None:
    """Without them transformers would build a default-size llama (tens of GB) around the file's tensors."""
    import numpy as np
    from gguf import GGUFWriter

    path = tmp_path / "nodims.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<s>", "</s>", "a", "b"])
    if missing != "embedding_length":
        writer.add_embedding_length(16 if missing == "width" else 8)
    if missing != "block_count":
        writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.ones((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    expected = (
        r"8 wide but the metadata says llama\.embedding_length = 16"
        if missing == "width"
        else (rf"no positive 'llama\.{missing}': transformers would build the default-size llama model")
    )
    with pytest.raises(CheckpointError, match=expected):
        build_manifest(path, name="nodims")


def test_corrupt_safetensors_in_a_directory_is_refused_with_its_path(tmp_path: Path) -> None:
    ckpt = tiny_hf_dir(tmp_path / "hf")
    assert build_manifest(ckpt, name="hf").format == "hf"
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-7])
    with pytest.raises(CheckpointError) as raised:
        build_manifest(ckpt, name="hf")
    assert str(weights) in str(raised.value) and "truncated" in str(raised.value)
    weights.write_bytes(b"\xff" * 16)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        build_manifest(ckpt, name="hf")
    weights.write_bytes(data)
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: cannot be read as JSON"):
        build_manifest(ckpt, name="hf")


def test_truncated_torch_zip_is_refused(tmp_path: Path) -> None:
    import zipfile

    ckpt = tiny_hf_dir(tmp_path / "hf")
    (ckpt / "model.safetensors").unlink()
    archive = ckpt / "pytorch_model.bin"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("archive/data.pkl", b"x" * 1000)
    build_manifest(ckpt, name="hf")
    archive.write_bytes(archive.read_bytes()[:-30])
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: the torch archive cannot be read"):
        build_manifest(ckpt, name="hf")


# -- identity: weights, tokenizer and config ---------------------------------------------------------------------
def test_config_and_tokenizer_enter_the_identity_not_the_weights_hash(tmp_path: Path) -> None:
    ckpt = tiny_hf_dir(tmp_path / "hf")
    first = build_manifest(ckpt, name="hf")
    (ckpt / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "repetition_penalty": 1.3}))
    second = build_manifest(ckpt, name="hf")
    assert second.model_hash == first.model_hash and second.tokenizer_hash == first.tokenizer_hash
    assert second.config_hash != first.config_hash and second.identity != first.identity
    (ckpt / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 4096}))
    third = build_manifest(ckpt, name="hf")
    assert third.tokenizer_hash != second.tokenizer_hash and third.identity != second.identity


@pytest.mark.parametrize(
    ("file", "what"),
    [("tokenizer.json", "tokenizer files"), ("config.json", "model/generation config files"),
     ("generation_config.json", "model/generation config files"), ("model.safetensors", "weights")],
)  # fmt: skip
def test_verify_refuses_a_changed_tokenizer_config_or_weights(tmp_path: Path, file: str, what: str) -> None:
    ckpt = tiny_hf_dir(tmp_path / "hf")
    manifest = build_manifest(ckpt, name="hf")
    verify_manifest(manifest)
    if file == "model.safetensors":
        tiny_hf_dir(ckpt, salt="other weights")
    else:
        value = json.loads((ckpt / file).read_text())
        (ckpt / file).write_text(json.dumps(value | {"changed": True}))
    with pytest.raises(CheckpointError) as raised:
        verify_manifest(manifest)
    assert f"{what} at {ckpt}" in str(raised.value) and "new name" in str(raised.value)


def test_registry_name_taken_by_other_weights(tmp_path: Path) -> None:
    registry = CheckpointRegistry(tmp_path / "registry")
    first = build_manifest(_gguf(tmp_path, "a", "one"), name="ckpt")
    assert registry.add(first) is True
    assert registry.add(build_manifest(_gguf(tmp_path, "a2", "one"), name="ckpt")) is False  # same weights
    with pytest.raises(CheckpointError, match="already registered for other weights"):
        registry.add(build_manifest(_gguf(tmp_path, "b", "two"), name="ckpt"))
    assert registry.get("ckpt").model_hash == first.model_hash
    assert registry.names() == ["ckpt"]
    with pytest.raises(CheckpointError, match="evalgate register"):
        registry.get("unknown")


def test_registry_refuses_the_same_weights_with_another_config(tmp_path: Path) -> None:
    registry = CheckpointRegistry(tmp_path / "registry")
    ckpt = tiny_hf_dir(tmp_path / "hf")
    registry.add(build_manifest(ckpt, name="hf"))
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 1024}))
    with pytest.raises(CheckpointError, match=r"same weights|these weights with another config"):
        registry.add(build_manifest(ckpt, name="hf"))
    assert registry.add(build_manifest(ckpt, name="hf-1024")) is True


def _legacy(manifest: CheckpointManifest, registry: CheckpointRegistry) -> Path:
    """Store ``manifest`` as an evalgate before config hashing wrote it (no ``config_hash`` key)."""
    file = registry.root / f"{manifest.name}.json"
    registry.root.mkdir(parents=True, exist_ok=True)
    value = manifest.model_dump(mode="json")
    del value["config_hash"]
    file.write_text(json.dumps(value))
    return file


def test_a_legacy_manifest_is_refused_until_registered_again(tmp_path: Path) -> None:
    registry = CheckpointRegistry(tmp_path / "registry")
    ckpt = tiny_hf_dir(tmp_path / "hf")
    current = build_manifest(ckpt, name="hf")
    _legacy(current, registry)
    legacy = registry.get("hf")
    assert legacy.config_hash is None
    with pytest.raises(CheckpointError, match=r"Register it again \(`evalgate register .* --name hf`\)"):
        verify_manifest(legacy)
    with pytest.raises(CheckpointError, match="Register it again"):
        _ = legacy.identity
    assert registry.add(build_manifest(ckpt, name="hf")) is True, "upgraded in place"
    upgraded = registry.get("hf")
    assert upgraded.config_hash == current.config_hash and upgraded.registered_at == legacy.registered_at
    verify_manifest(upgraded)
    assert registry.add(build_manifest(ckpt, name="hf")) is False


def test_a_legacy_manifest_whose_tokenizer_changed_is_not_upgraded(tmp_path: Path) -> None:
    registry = CheckpointRegistry(tmp_path / "registry")
    ckpt = tiny_hf_dir(tmp_path / "hf")
    file = _legacy(build_manifest(ckpt, name="hf"), registry)
    before = file.read_text()
    (ckpt / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"vocab": {"b": 0}}}))
    with pytest.raises(CheckpointError, match="other tokenizer"):
        registry.add(build_manifest(ckpt, name="hf"))
    assert file.read_text() == before


def test_two_names_for_the_same_weights_share_the_hash(tmp_path: Path) -> None:
    path = _gguf(tmp_path, "a", "same")
    assert build_manifest(path, name="x").identity == build_manifest(path, name="y").identity


def test_inbox_manifest_resolves_relative_paths(tmp_path: Path) -> None:
    _gguf(tmp_path, "w")
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
