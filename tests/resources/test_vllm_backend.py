"""The vLLM backend's pure parts, checked against lm-eval and the real SmolLM2-135M model without vllm:
pair encoding against HFLM's ``_encode_pair`` on the real tokenizer, and the logprob summation on prompt
logprobs shaped exactly like vLLM's ``RequestOutput.prompt_logprobs`` but computed from the real model's
logits, against lm-eval's loglikelihood. Tests that need vllm itself skip here (it needs a CUDA GPU)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from resources.runners.base import CheckpointRef, SamplingParams
from resources.runners.vllm_backend import (
    INSTALL_HINT,
    VLLMBackend,
    VLLMNotInstalledError,
    checkpoint_max_model_len,
    encode_pair,
    engine_id,
    expected_engine_id,
    fit_to_length,
    loglikelihood_from_prompt_logprobs,
    max_model_len_from_config,
    opened_engine_id,
    per_request_kwargs,
    render_chat_with,
    resolve_dtype,
    sampling_kwargs,
)

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vllm not installed (needs a CUDA GPU)")

try:
    from vllm.logprobs import Logprob  # the real container where vllm is installed
except ImportError:

    @dataclass
    class Logprob:  # type: ignore[no-redef]
        """Field for field vllm.logprobs.Logprob (vllm 0.10+): the token's logprob, its vocab rank (1 = argmax),
        and its decoded text."""

        logprob: float
        rank: int | None = None
        decoded_token: str | None = None


PAIRS = [
    ("Question: What is the capital of France?\nAnswer:", " Paris"),
    ("Question: What is the capital of France?\nAnswer:", " London"),
    ("1, 2, 3, 4, 5,", " 6, 7"),
    ("The quick brown fox jumps over the lazy ", "dog"),
    ("Trailing newlines\n\n", "Next paragraph"),
    ("In Japanese, Tokyo is written 東京 and", " it is the capital"),
    ("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "Hello!"),  # starts with the prefix token
]


def _vllm_prompt_logprobs(model: Any, tokenizer: Any, tokens: list[int]) -> list[dict[int, Any] | None]:
    """What vLLM returns for ``SamplingParams(prompt_logprobs=1)``: ``None`` for the first position, then per
    position the actual token and the top-1 token (one entry when they coincide), actual first."""
    import torch

    with torch.inference_mode():
        logprobs = torch.log_softmax(model(torch.tensor([tokens])).logits[0].float(), dim=-1)
    positions: list[dict[int, Any] | None] = [None]
    for index in range(1, len(tokens)):
        row = logprobs[index - 1]
        actual = tokens[index]
        rank = int((row > row[actual]).sum()) + 1
        top = int(row.argmax())
        positions.append({
            actual: Logprob(float(row[actual]), rank, tokenizer.decode([actual])),
            top: Logprob(float(row[top]), 1, tokenizer.decode([top])),
        })  # fmt: skip
    return positions


# -- against lm-eval and the real model ------------------------------------------------------------------


@pytest.mark.slow
def test_pair_encoding_equals_lm_eval_hflm(reference: Any) -> None:
    lm = reference._harness_lm()
    for context, continuation in PAIRS:
        assert encode_pair(reference.tokenizer, context, continuation) == lm._encode_pair(
            context, continuation
        )
    # An empty context: lm-eval's loglikelihood puts its prefix token (BOS, else EOS) in front.
    expected = ([lm.prefix_token_id], lm.tok_encode("Hello there", add_special_tokens=False))
    assert encode_pair(reference.tokenizer, "", "Hello there") == expected


@pytest.mark.slow
def test_summed_prompt_logprobs_equal_lm_eval_loglikelihood(reference: Any) -> None:
    expected = reference.loglikelihood(PAIRS)
    for (context, continuation), want in zip(PAIRS, expected, strict=True):
        tokens, ctxlen = fit_to_length(
            *encode_pair(reference.tokenizer, context, continuation), max_length=8192
        )
        prompt_logprobs = _vllm_prompt_logprobs(reference.model, reference.tokenizer, tokens)
        have = loglikelihood_from_prompt_logprobs(prompt_logprobs, tokens, ctxlen)
        assert have.logprob == pytest.approx(want.logprob, abs=1e-3), (context, continuation)
        assert have.is_greedy == want.is_greedy, (context, continuation)
    assert {r.is_greedy for r in expected} == {True, False}, "the pairs should exercise both greedy outcomes"


@pytest.mark.slow
def test_render_chat_matches_the_transformers_backend(reference: Any) -> None:
    messages = [("system", "Be brief."), ("user", "What is 2+2?")]
    assert render_chat_with(reference.tokenizer, messages) == reference.render_chat(messages)


# -- pure parts ------------------------------------------------------------------------------------------


def test_fit_to_length_truncates_from_the_left_like_lm_eval() -> None:
    context, continuation = list(range(1, 11)), [11, 12]
    # lm-eval's vLLM model: inp = (ctx + cont)[-(max_length - 1):]; ctxlen = len(ctx) - max(0, len(ctx) + len(cont) - (max_length - 1))
    assert fit_to_length(context, continuation, max_length=8) == ([6, 7, 8, 9, 10, 11, 12], 5)
    assert fit_to_length(context, continuation, max_length=100) == ([*context, *continuation], 10)
    with pytest.raises(ValueError, match="continuation alone"):
        fit_to_length([1], [2, 3, 4], max_length=4)
    with pytest.raises(ValueError, match="no tokens"):
        fit_to_length([1], [], max_length=4)


def test_summation_reads_vllm_logprob_dicts_and_the_flat_containers_empty_first_position() -> None:
    tokens, ctxlen = [5, 6, 7, 8], 2
    greedy = [None, {6: Logprob(-0.1, 1)}, {7: Logprob(-0.2, 1)}, {8: Logprob(-0.3, 1)}]
    result = loglikelihood_from_prompt_logprobs(greedy, tokens, ctxlen)
    assert result.logprob == pytest.approx(-0.5) and result.is_greedy
    flat_style = [{}, *greedy[1:]]  # FlatLogprobs yields {} where the list holds None
    assert loglikelihood_from_prompt_logprobs(flat_style, tokens, ctxlen) == result
    not_greedy = [
        None,
        {6: Logprob(-0.1, 1)},
        {7: Logprob(-2.0, 3), 9: Logprob(-0.4, 1)},
        {8: Logprob(-0.3, 1)},
    ]
    result = loglikelihood_from_prompt_logprobs(not_greedy, tokens, ctxlen)
    assert result.logprob == pytest.approx(-2.3) and not result.is_greedy
    bare_floats = [None, {6: -0.1}, {7: -0.2}, {8: -0.3}]  # vllm before Logprob objects
    assert loglikelihood_from_prompt_logprobs(bare_floats, tokens, ctxlen).logprob == pytest.approx(-0.5)


def test_summation_refuses_mismatched_or_missing_logprobs() -> None:
    with pytest.raises(ValueError, match="3 prompt logprob positions for 4"):
        loglikelihood_from_prompt_logprobs([None, {6: Logprob(-1.0)}, {7: Logprob(-1.0)}], [5, 6, 7, 8], 2)
    with pytest.raises(ValueError, match="no prompt logprob for token 8"):
        loglikelihood_from_prompt_logprobs(
            [None, {6: Logprob(-1.0)}, {7: Logprob(-1.0)}, None], [5, 6, 7, 8], 2
        )
    with pytest.raises(ValueError, match="leaves no continuation"):
        loglikelihood_from_prompt_logprobs([None, {6: Logprob(-1.0)}], [5, 6], 2)


def test_sampling_kwargs_map_our_params_to_vllms() -> None:
    assert sampling_kwargs(SamplingParams(temperature=0.0, top_p=0.5, max_new_tokens=9, seed=4)) == {
        "temperature": 0.0, "top_p": 1.0, "max_tokens": 9, "seed": 4,
    }  # fmt: skip
    sampled = sampling_kwargs(
        SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=3, stop=("\n", "###"), seed=7)
    )
    assert sampled == {"temperature": 0.8, "top_p": 0.95, "max_tokens": 3, "seed": 7, "stop": ["\n", "###"]}


def test_dtype_auto_is_pinned() -> None:
    assert resolve_dtype("auto") == "bfloat16"
    assert resolve_dtype("float16") == "float16"
    with pytest.raises(ValueError, match="unsupported dtype"):
        resolve_dtype("int8")


def test_each_request_carries_its_own_seed() -> None:
    params = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=3, seed=1)
    assert [k["seed"] for k in per_request_kwargs(params, 3, [11, 12, 13])] == [11, 12, 13]
    assert [k["seed"] for k in per_request_kwargs(params, 2, None)] == [1, 1]
    assert {k["temperature"] for k in per_request_kwargs(params, 3, [11, 12, 13])} == {0.8}
    with pytest.raises(ValueError, match="2 seeds for 3 prompts"):
        per_request_kwargs(params, 3, [1, 2])


# -- engine identity ----------------------------------------------------------------------------------------


def test_engine_id_names_version_device_dtype_length_and_parallelism() -> None:
    engine = engine_id(
        version="0.10.1", device="cuda", dtype="bfloat16", max_model_len=8192, tensor_parallel_size=2
    )
    assert engine == "vllm-0.10.1/cuda/bfloat16/max_model_len=8192/tp=2"
    others = [
        engine_id(
            version="0.10.2", device="cuda", dtype="bfloat16", max_model_len=8192, tensor_parallel_size=2
        ),
        engine_id(
            version="0.10.1", device="rocm", dtype="bfloat16", max_model_len=8192, tensor_parallel_size=2
        ),
        engine_id(
            version="0.10.1", device="cuda", dtype="float16", max_model_len=8192, tensor_parallel_size=2
        ),
        engine_id(
            version="0.10.1", device="cuda", dtype="bfloat16", max_model_len=4096, tensor_parallel_size=2
        ),
        engine_id(
            version="0.10.1", device="cuda", dtype="bfloat16", max_model_len=8192, tensor_parallel_size=1
        ),
    ]
    assert len({engine, *others}) == 6


def test_max_model_len_comes_from_the_checkpoints_config(tmp_path: Path) -> None:
    from weights_testing import tiny_gguf, tiny_hf_dir

    assert max_model_len_from_config({"max_position_embeddings": 8192, "seq_length": 4096}) == 4096
    assert max_model_len_from_config({"text_config": {"max_position_embeddings": 2048}}) == 2048
    with pytest.raises(ValueError, match="vllm_max_model_len"):
        max_model_len_from_config({"hidden_size": 4})
    hf = tiny_hf_dir(tmp_path / "hf", config={"model_type": "llama", "max_position_embeddings": 3072})
    assert checkpoint_max_model_len(CheckpointRef("hf", hf, "hf", "sha256:x")) == 3072
    gguf = tiny_gguf(tmp_path / "m.gguf", context_length=1536)
    assert checkpoint_max_model_len(CheckpointRef("g", gguf, "gguf", "sha256:x")) == 1536


@dataclass
class _Config:
    dtype: Any = None
    max_model_len: int = 0
    tensor_parallel_size: int = 1
    device_type: str = "cuda"


def _fake_llm(dtype: str, max_model_len: int, tp: int) -> Any:
    """The attributes of ``vllm.LLM`` the engine id reads (``llm.llm_engine.vllm_config``)."""
    from types import SimpleNamespace

    import torch

    model = _Config(dtype=getattr(torch, dtype), max_model_len=max_model_len)
    config = SimpleNamespace(model_config=model, parallel_config=_Config(tensor_parallel_size=tp),
                             device_config=_Config(device_type="cuda"))  # fmt: skip
    return SimpleNamespace(llm_engine=SimpleNamespace(vllm_config=config, model_config=model))


def test_the_opened_engine_is_read_from_the_engine_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from weights_testing import tiny_hf_dir

    import resources.runners.vllm_backend as vllm_backend

    monkeypatch.setattr(vllm_backend, "installed_version", lambda: "0.10.1")
    ref = CheckpointRef("hf", tiny_hf_dir(tmp_path / "hf"), "hf", "sha256:x")  # max_position_embeddings 2048
    expected = expected_engine_id(
        ref, dtype="auto", device="cuda", max_model_len=None, tensor_parallel_size=1
    )
    assert expected == "vllm-0.10.1/cuda/bfloat16/max_model_len=2048/tp=1"
    platform = SimpleNamespace(device_name="cuda")
    assert opened_engine_id(_fake_llm("bfloat16", 2048, 1), "0.10.1", platform) == expected
    assert opened_engine_id(_fake_llm("bfloat16", 2048, 1), "0.10.1", None) == expected, (
        "device_config fallback"
    )
    assert opened_engine_id(_fake_llm("bfloat16", 1024, 1), "0.10.1", platform) != expected
    assert opened_engine_id(_fake_llm("bfloat16", 2048, 2), "0.10.1", platform) != expected
    assert (
        opened_engine_id(_fake_llm("float16", 2048, 1), "0.10.1", SimpleNamespace(device_name="rocm"))
        != expected
    )


def test_a_mismatched_vllm_engine_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's key says one engine; the engine vLLM built (here: a smaller context) is another."""
    from types import SimpleNamespace

    from weights_testing import tiny_hf_dir

    import resources.runners.vllm_backend as vllm_backend
    from eval_assets.predict import EngineMismatchError, check_engine

    monkeypatch.setattr(vllm_backend, "installed_version", lambda: "0.10.1")
    ref = CheckpointRef("hf", tiny_hf_dir(tmp_path / "hf"), "hf", "sha256:x")
    key = expected_engine_id(ref, dtype="auto", device="cuda", max_model_len=None, tensor_parallel_size=1)
    opened = SimpleNamespace(engine=opened_engine_id(_fake_llm("bfloat16", 1024, 1), "0.10.1",
                                                     SimpleNamespace(device_name="cuda")))  # fmt: skip
    with pytest.raises(EngineMismatchError, match=r"max_model_len=1024.*max_model_len=2048"):
        check_engine(opened, key, "hf")  # type: ignore[arg-type]


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown where vllm is missing")
def test_missing_vllm_says_how_to_install(tmp_path: Path) -> None:
    from weights_testing import tiny_hf_dir

    hf = CheckpointRef("hf", tiny_hf_dir(tmp_path / "hf"), "hf", "sha256:x")
    with pytest.raises(VLLMNotInstalledError, match=INSTALL_HINT.replace("[", r"\[").replace("]", r"\]")):
        expected_engine_id(hf, dtype="auto", device="cuda", max_model_len=None, tensor_parallel_size=1)
    ref = CheckpointRef(name="x", path=tmp_path / "missing.gguf", format="gguf", model_hash="sha256:0")
    with pytest.raises(VLLMNotInstalledError, match="evalgate"):  # before any conversion of the checkpoint
        VLLMBackend(ref, cache_dir=tmp_path, dtype="auto", gpu_memory_utilization=0.5)


# -- vllm itself -----------------------------------------------------------------------------------------


@needs_vllm
@pytest.mark.slow
def test_vllm_backend_matches_transformers(smollm2_dir: Path, reference: Any, tmp_path: Path) -> None:
    ref = CheckpointRef(name="smollm2", path=smollm2_dir, format="hf", model_hash="sha256:test")
    backend = VLLMBackend(ref, cache_dir=tmp_path, dtype="float32", gpu_memory_utilization=0.3)
    try:
        assert backend.engine.startswith("vllm-") and "/cuda/float32/max_model_len=" in backend.engine
        assert backend.engine == expected_engine_id(
            ref, dtype="float32", device="cuda", max_model_len=None, tensor_parallel_size=1
        )
        got = backend.loglikelihood(PAIRS)
        for want, have in zip(reference.loglikelihood(PAIRS), got, strict=True):
            assert have.logprob == pytest.approx(want.logprob, abs=1e-2)
        params = SamplingParams(temperature=0.0, max_new_tokens=8)
        prompts = ["The three primary colors are"]
        assert backend.generate(prompts, params) == reference.generate(prompts, params)
    finally:
        backend.close()
