"""The production backend for GPUs: vLLM's offline engine (``vllm.LLM``) in this process.

Likelihood uses vLLM's prompt logprobs: each (context, continuation) pair is tokenized the way lm-eval's
``HFLM`` does it (encode the pair whole, split at the context's length; trailing whitespace of the context
moves to the continuation), the token ids go to the engine as they are, and the continuation tokens' prompt
logprobs are summed. ``prompt_logprobs=1`` returns each position's top-1 token beside the actual one, which is
enough to tell whether greedy decoding reproduces the continuation. Generation is ``LLM.generate`` with a
per-request seed (each prompt's own), so a prompt's output does not depend on the batch it ran in.

The engine id names the vLLM version, device, dtype, ``max_model_len`` and tensor-parallel size. The runner
computes it from its settings without importing vllm (``max_model_len`` unset is resolved from the
checkpoint's own config, as vLLM derives it, and then passed to vLLM explicitly, so the key names what runs);
the opened backend reads the same fields back from the engine it built, and prediction refuses a mismatch.

``vllm`` is an optional extra that needs a CUDA GPU; it is imported only when a backend is built. The pure
parts (pair encoding, truncation, summing prompt logprobs, mapping sampling params) are plain functions,
tested without vllm.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from resources.runners.base import (
    CheckpointRef,
    LogLikelihood,
    Progress,
    SamplingParams,
    prompt_seeds,
    request_sampling_fields,
    truncate_at_stop,
)

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'evalgate[vllm]'"

#: Requests handed to the engine per call: the engine batches inside a call; this only paces progress reports.
LIKELIHOOD_CHUNK = 1024


class VLLMNotInstalledError(ImportError):
    """vllm is missing; the message carries the install line."""


def _missing(reason: str) -> VLLMNotInstalledError:
    return VLLMNotInstalledError(
        f"the vllm backend needs the vllm package ({reason}). Install it on a machine with a CUDA GPU: "
        f"{INSTALL_HINT}  (or use backend 'transformers', the embedded default, which runs on CPU)"
    )


def _import_vllm() -> Any:
    try:
        return importlib.import_module("vllm")
    except ImportError as exc:
        raise _missing(f"import failed: {exc}") from exc


def resolve_dtype(dtype: str) -> str:
    """The dtype handed to vLLM. ``auto`` is pinned to bfloat16 (what the transformers backend picks on CUDA)
    rather than left to vLLM, whose ``auto`` rule changed across releases: the engine id must name what ran.
    GPUs without bfloat16 (pre-Ampere) need ``float16`` set explicitly."""
    if dtype == "auto":
        return "bfloat16"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"unsupported dtype {dtype!r} for vllm; use auto, float32, bfloat16 or float16")
    return dtype


def engine_id(*, version: str, device: str, dtype: str, max_model_len: int, tensor_parallel_size: int) -> str:
    """The vLLM engine id: everything of the engine that shapes outputs."""
    return f"vllm-{version}/{device}/{dtype}/max_model_len={max_model_len}/tp={tensor_parallel_size}"


def installed_version() -> str:
    """vllm's version, read without importing it (importing initializes CUDA)."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError as exc:
        raise _missing("its version names the engine in the sampling hash") from exc


#: Keys of a Hugging Face config that give the context length, in the order vLLM's
#: ``_get_and_verify_max_len`` consults them (it takes the smallest present).
CONTEXT_LENGTH_KEYS = (
    "max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "model_max_length",
    "max_sequence_length", "max_seq_length", "seq_len",
)  # fmt: skip


def max_model_len_from_config(config: Mapping[str, Any]) -> int:
    """The context length vLLM derives from a model config when ``max_model_len`` is not given: the smallest
    of the length keys present (text configs nested under ``text_config`` included)."""
    sources = [config, config.get("text_config") or {}]
    values = [
        int(src[key]) for src in sources for key in CONTEXT_LENGTH_KEYS if isinstance(src.get(key), int)
    ]
    if not values:
        raise ValueError(
            f"the model config names no context length ({', '.join(CONTEXT_LENGTH_KEYS)}); set "
            "ModelRunner.vllm_max_model_len"
        )
    return min(values)


def checkpoint_max_model_len(ref: CheckpointRef) -> int:
    """The context length of a checkpoint, without loading it: ``config.json`` of a directory, or the
    ``<arch>.context_length`` metadata of a GGUF file."""
    if ref.format == "hf":
        config = json.loads((ref.path / "config.json").read_text(encoding="utf-8"))
        return max_model_len_from_config(config)
    from gguf import GGUFReader

    reader = GGUFReader(ref.path, "r")
    arch = reader.fields["general.architecture"].contents()
    field = reader.fields.get(f"{arch}.context_length")
    if field is None:
        raise ValueError(
            f"{ref.path}: the GGUF metadata has no {arch}.context_length; set ModelRunner.vllm_max_model_len"
        )
    return int(field.contents())


def expected_engine_id(
    ref: CheckpointRef, *, dtype: str, device: str, max_model_len: int | None, tensor_parallel_size: int
) -> str:
    """The engine id the runner's settings give for ``ref``, computed without importing vllm."""
    return engine_id(
        version=installed_version(),
        device=device,
        dtype=resolve_dtype(dtype),
        max_model_len=max_model_len if max_model_len is not None else checkpoint_max_model_len(ref),
        tensor_parallel_size=tensor_parallel_size,
    )


def opened_engine_id(llm: Any, version: str, platform: Any = None) -> str:
    """The engine id of a built ``vllm.LLM``, read from its configs (``llm.llm_engine.vllm_config``: the model,
    parallel and device configs) and vLLM's current platform."""
    engine = llm.llm_engine
    config = getattr(engine, "vllm_config", None)
    model_config = getattr(config, "model_config", None) or engine.model_config
    parallel = getattr(config, "parallel_config", None) or getattr(engine, "parallel_config", None)
    device = getattr(platform, "device_name", None) or getattr(
        getattr(config, "device_config", None), "device_type", None
    )
    return engine_id(
        version=version,
        device=str(device or "unknown"),
        dtype=str(model_config.dtype).removeprefix("torch."),
        max_model_len=int(model_config.max_model_len),
        tensor_parallel_size=int(getattr(parallel, "tensor_parallel_size", 1)),
    )


# -- tokenization, as lm-eval's HFLM does it --------------------------------------------------------------


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer used here (vLLM's ``LLM.get_tokenizer()`` returns one)."""

    bos_token_id: int | None
    eos_token_id: int | None

    def encode(self, text: str, **kwargs: Any) -> list[int]: ...

    def decode(self, token_ids: Any, **kwargs: Any) -> str: ...


def prefix_token_id(tokenizer: Tokenizer) -> int:
    """The token that stands in for an empty context: BOS, else EOS (lm-eval's ``prefix_token_id``)."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to stand in for an empty context")
    return int(token)


def tok_encode(tokenizer: Tokenizer, text: str, add_special_tokens: bool | None = None) -> list[int]:
    """``HFLM.tok_encode``: the tokenizer's default special tokens, except none when the text already starts
    with the prefix token's text (a rendered chat prompt that carries its own BOS)."""
    kwargs: dict[str, Any] = {}
    if add_special_tokens is not None:
        kwargs["add_special_tokens"] = add_special_tokens
    elif text.startswith(tokenizer.decode(prefix_token_id(tokenizer))):
        kwargs["add_special_tokens"] = False
    return [int(token) for token in tokenizer.encode(text, **kwargs)]


def encode_pair(tokenizer: Tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) exactly as lm-eval's ``loglikelihood`` builds them for a causal
    model: an empty context becomes the prefix token; otherwise the context's trailing whitespace moves to the
    continuation, the pair is encoded whole and split at the length of the context's own encoding."""
    if context == "":
        continuation_enc = tok_encode(tokenizer, continuation, add_special_tokens=False)
        if not continuation_enc:
            raise ValueError("both context and continuation are empty: nothing to score")
        prefix = prefix_token_id(tokenizer)
        if prefix != continuation_enc[0]:
            return [prefix], continuation_enc
        return continuation_enc[:1], continuation_enc[1:]
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok_encode(tokenizer, context + continuation)
    context_enc = tok_encode(tokenizer, context)
    return context_enc, whole[len(context_enc) :]


def fit_to_length(
    context_enc: Sequence[int], continuation_enc: Sequence[int], max_length: int
) -> tuple[list[int], int]:
    """(prompt tokens, context length) left-truncated as lm-eval's vLLM model does: at most
    ``max_length - 1`` tokens, since the engine must have room to generate one."""
    limit = max_length - 1
    if not continuation_enc:
        raise ValueError("the continuation encodes to no tokens; lm-eval refuses such a request too")
    if len(continuation_enc) >= limit:
        raise ValueError(
            f"the continuation alone is {len(continuation_enc)} tokens; the model takes at most {limit} "
            "with at least one context token"
        )
    full = [*context_enc, *continuation_enc]
    if len(full) > limit:
        log.warning("context of %d tokens truncated from the left to fit %d", len(full), limit)
    ctxlen = len(context_enc) - max(0, len(full) - limit)
    return full[-limit:], ctxlen


# -- prompt logprobs -> LogLikelihood -----------------------------------------------------------------


def _as_float(value: Any) -> float:
    """vLLM's ``Logprob`` carries ``.logprob``; very old releases stored bare floats."""
    return float(getattr(value, "logprob", value))


def loglikelihood_from_prompt_logprobs(
    prompt_logprobs: Sequence[Mapping[int, Any] | None], tokens: Sequence[int], ctxlen: int
) -> LogLikelihood:
    """Sum the continuation's prompt logprobs and check each continuation token is the top-1 one.

    ``prompt_logprobs`` is ``RequestOutput.prompt_logprobs``: one entry per prompt token, the first ``None``
    (or empty, in vLLM's flat container) since nothing precedes it; each other a ``{token_id: Logprob}`` with
    the actual token and the top ``prompt_logprobs`` tokens. ``tokens[ctxlen:]`` is the continuation.
    """
    positions = list(prompt_logprobs)
    if len(positions) != len(tokens):
        raise ValueError(f"{len(positions)} prompt logprob positions for {len(tokens)} prompt tokens")
    if not 1 <= ctxlen < len(tokens):
        raise ValueError(f"context length {ctxlen} leaves no continuation in {len(tokens)} tokens")
    total = 0.0
    is_greedy = True
    for index in range(ctxlen, len(tokens)):
        entry = positions[index]
        token = tokens[index]
        if not entry or token not in entry:
            raise ValueError(
                f"no prompt logprob for token {token} at position {index}: request prompt_logprobs>=1"
            )
        scores = {candidate: _as_float(value) for candidate, value in entry.items()}
        total += scores[token]
        # lm-eval's rule: the token with the highest logprob among those returned must be the actual one.
        if is_greedy and max(scores, key=scores.__getitem__) != token:
            is_greedy = False
    return LogLikelihood(logprob=total, is_greedy=is_greedy)


# -- sampling ------------------------------------------------------------------------------------------


def sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams``. Temperature 0 is greedy in vLLM; the seed is
    per request, so sampled outputs do not depend on batch composition."""
    return request_sampling_fields(params)


def per_request_kwargs(
    params: SamplingParams, count: int, seeds: Sequence[int] | None
) -> list[dict[str, Any]]:
    """One ``vllm.SamplingParams`` keyword set per prompt, each with that prompt's seed."""
    return [sampling_kwargs(replace(params, seed=seed)) for seed in prompt_seeds(count, params, seeds)]


def render_chat_with(tokenizer: Any, messages: Sequence[tuple[str, str]]) -> str:
    """The chat template of the checkpoint's tokenizer; the transformers backend's fallback without one."""
    conversation = [{"role": role, "content": content} for role, content in messages]
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True))
    return "\n\n".join(content for _, content in messages) + "\n\nAnswer:"


class VLLMBackend:
    """A checkpoint loaded into vLLM's offline engine on the local GPU(s)."""

    def __init__(
        self,
        ref: CheckpointRef,
        *,
        cache_dir: Path,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        seed: int = 0,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
    ) -> None:
        vllm = _import_vllm()  # first, so a missing extra fails before any conversion work
        from resources.runners.transformers_backend import ensure_loadable_dir

        self.ref = ref
        self.dtype = resolve_dtype(dtype)
        self._vllm = vllm
        # Passed explicitly (as the runner's expected engine id resolves it), never left to vLLM's defaults.
        max_model_len = max_model_len if max_model_len is not None else checkpoint_max_model_len(ref)
        directory = ensure_loadable_dir(ref, cache_dir)
        self._llm: Any = vllm.LLM(
            model=str(directory),
            dtype=self.dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
        )
        self.tokenizer: Any = self._llm.get_tokenizer()
        self.max_length = int(self._llm.llm_engine.model_config.max_model_len)
        platform = getattr(importlib.import_module("vllm.platforms"), "current_platform", None)
        self._engine = opened_engine_id(
            self._llm, str(getattr(vllm, "__version__", installed_version())), platform
        )

    @property
    def engine(self) -> str:
        return self._engine

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> list[LogLikelihood]:
        prepared = [
            fit_to_length(*encode_pair(self.tokenizer, context, continuation), self.max_length)
            for context, continuation in requests
        ]
        params = self._vllm.SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1, detokenize=False)
        results: list[LogLikelihood] = []
        for start in range(0, len(prepared), LIKELIHOOD_CHUNK):
            chunk = prepared[start : start + LIKELIHOOD_CHUNK]
            outputs = self._llm.generate(
                [{"prompt_token_ids": tokens} for tokens, _ in chunk], sampling_params=params, use_tqdm=False
            )
            for (tokens, ctxlen), output in zip(chunk, outputs, strict=True):
                results.append(loglikelihood_from_prompt_logprobs(output.prompt_logprobs, tokens, ctxlen))
            if progress is not None:
                progress(len(results), len(prepared))
        return results

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        return render_chat_with(self.tokenizer, messages)

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        progress: Progress | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        # Tokenized here without added special tokens, as the transformers backend does, so both backends
        # feed the model the same ids (a rendered chat prompt carries its own BOS text).
        token_prompts = [
            {"prompt_token_ids": self.tokenizer.encode(prompt, add_special_tokens=False)}
            for prompt in prompts
        ]
        outputs = self._llm.generate(
            token_prompts,
            sampling_params=[
                self._vllm.SamplingParams(**kwargs)
                for kwargs in per_request_kwargs(params, len(prompts), seeds)
            ],
            use_tqdm=False,
        )
        texts = [truncate_at_stop(output.outputs[0].text, params.stop) for output in outputs]
        if progress is not None:
            progress(len(texts), len(prompts))
        return texts

    def close(self) -> None:
        llm, self._llm = self._llm, None
        del llm
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - vllm always brings torch
            pass
