"""Small, valid checkpoints for tests that register weights without loading them (importable: pytest puts
tests/ on sys.path). Registration parses weights (the GGUF header and tensor table, safetensors headers), so a
file of arbitrary bytes is refused; these are real files of each format, a few hundred bytes each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def tiny_gguf(path: Path, salt: str = "", *, context_length: int = 128) -> Path:
    """A valid GGUF file (a llama-architecture header, an embedded tokenizer, two tensors); ``salt`` changes
    its weights (and so its hash)."""
    from gguf import GGUFWriter

    seed = int.from_bytes(salt.encode()[:8].ljust(8, b"\0"), "little")
    values = np.random.default_rng(seed).standard_normal((4, 8)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(str(path), "llama")
    writer.add_context_length(context_length)
    writer.add_embedding_length(8)  # the stated dimensions (registration refuses a GGUF without them)
    writer.add_block_count(1)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<s>", "</s>", "a", "b"])
    writer.add_tensor("token_embd.weight", values)
    writer.add_tensor("output.weight", values[::-1].copy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_hf_dir(path: Path, salt: str = "", *, config: dict[str, object] | None = None) -> Path:
    """A Hugging Face checkpoint directory: safetensors weights, config.json, generation_config.json and
    tokenizer files (enough to register; nothing here loads them)."""
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    seed = int.from_bytes(salt.encode()[:8].ljust(8, b"\0"), "little")
    save_file(
        {"w": np.random.default_rng(seed).standard_normal((4, 4)).astype(np.float32)},
        str(path / "model.safetensors"),
    )
    (path / "config.json").write_text(
        json.dumps(config or {"model_type": "llama", "max_position_embeddings": 2048}), encoding="utf-8"
    )
    (path / "generation_config.json").write_text(json.dumps({"bos_token_id": 1}), encoding="utf-8")
    (path / "tokenizer.json").write_text(
        json.dumps({"version": "1.0", "model": {"vocab": {"a": 0}}}), encoding="utf-8"
    )
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 2048}), encoding="utf-8")
    return path
