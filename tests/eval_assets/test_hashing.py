from pathlib import Path

import pytest

from eval_assets.hashing import (
    SEED_BITS,
    canonical_json,
    config_hash,
    model_hash,
    model_identity,
    prompt_hash,
    sample_seed,
    sampling_hash,
    tokenizer_hash,
)


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1})


def test_sampling_hash_changes_with_seed_and_engine() -> None:
    base = {"temperature": 0.7, "seed": 0, "engine": "transformers/cpu/float32"}
    assert sampling_hash(base) == sampling_hash(dict(reversed(list(base.items()))))
    assert sampling_hash(base) != sampling_hash(base | {"seed": 1})
    assert sampling_hash(base) != sampling_hash(base | {"engine": "vllm/cuda/bfloat16"})


def test_prompt_hash_distinguishes_prompts() -> None:
    assert prompt_hash("Question: 1+1?") != prompt_hash("Question: 1+2?")
    assert prompt_hash([("ctx", " a")]) == prompt_hash([("ctx", " a")])


def test_model_hash_is_content_not_name(tmp_path: Path) -> None:
    a = tmp_path / "a.gguf"
    b = tmp_path / "renamed.gguf"
    a.write_bytes(b"weights" * 1000)
    b.write_bytes(b"weights" * 1000)
    assert model_hash(a) == model_hash(b)
    b.write_bytes(b"weights" * 999 + b"WEIGHTS")
    assert model_hash(a) != model_hash(b)


def test_directory_hash_covers_every_shard(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model-00001.safetensors").write_bytes(b"one")
    (ckpt / "model-00002.safetensors").write_bytes(b"two")
    (ckpt / "config.json").write_text("{}")
    before = model_hash(ckpt)
    config_before = config_hash(ckpt, before)
    (ckpt / "config.json").write_text('{"changed": true}')
    assert model_hash(ckpt) == before, "config is not weights"
    assert config_hash(ckpt, before) != config_before, "but it is config"
    (ckpt / "model-00002.safetensors").write_bytes(b"TWO")
    assert model_hash(ckpt) != before


def test_config_hash_covers_the_generation_config(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    plain = config_hash(ckpt, "sha256:w")
    (ckpt / "generation_config.json").write_text('{"repetition_penalty": 1.2}')
    assert config_hash(ckpt, "sha256:w") != plain
    (ckpt / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"No config\.json"):
        config_hash(ckpt, "sha256:w")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    assert config_hash(gguf, "sha256:a") != config_hash(gguf, "sha256:b"), "a GGUF embeds its config"
    assert config_hash(gguf, "sha256:a") != tokenizer_hash(gguf, "sha256:a")


def test_model_identity_changes_with_each_part() -> None:
    base = model_identity("sha256:w", "sha256:t", "sha256:c")
    assert base == model_identity("sha256:w", "sha256:t", "sha256:c")
    assert len({base, model_identity("sha256:W", "sha256:t", "sha256:c"), model_identity("sha256:w", "sha256:T", "sha256:c"),
                model_identity("sha256:w", "sha256:t", "sha256:C")}) == 4  # fmt: skip


def test_sample_seeds_depend_on_seed_and_prompt_only() -> None:
    seeds = {sample_seed(seed, prompt) for seed in (0, 1) for prompt in ("p0", "p1", "p2")}
    assert len(seeds) == 6
    assert sample_seed(0, "p0") == sample_seed(0, "p0")
    assert all(0 <= s < 2**SEED_BITS for s in seeds)


def test_memoized_hash_notices_a_rewrite(tmp_path: Path) -> None:
    file = tmp_path / "w.gguf"
    file.write_bytes(b"x" * 10)
    first = model_hash(file)
    file.write_bytes(b"y" * 11)
    assert model_hash(file) != first


def test_missing_weights_and_tokenizer_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No weight files"):
        model_hash(tmp_path)
    with pytest.raises(FileNotFoundError, match="save the tokenizer"):
        tokenizer_hash(tmp_path, "sha256:x")
