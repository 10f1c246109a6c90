"""The embedded default backend: transformers on CPU here, CUDA when present.

Likelihood goes through lm-eval-harness's own ``HFLM`` (wrapping the model we loaded), so our numbers are
lm-eval's numbers. Generation is batched ``model.generate`` with left padding, greedy or seeded sampling, stop
strings, and a static KV cache on CUDA. A GGUF checkpoint is dequantized once and kept as safetensors under
``cache_dir/<model_hash>``, so later loads take seconds instead of half a minute.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from resources.runners.base import CheckpointRef, LogLikelihood, Progress, SamplingParams, truncate_at_stop

log = logging.getLogger(__name__)


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def engine_id(device: str, dtype: str) -> str:
    """Backend, version, device and dtype; computed without loading anything."""
    resolved = _resolve_device(device)
    torch_dtype = str(_resolve_dtype(dtype, resolved)).removeprefix("torch.")
    return f"transformers-{transformers.__version__}/{resolved.split(':')[0]}/{torch_dtype}"


def converted_dir(cache_dir: Path, model_hash: str) -> Path:
    return cache_dir / model_hash.replace(":", "-")


def ensure_loadable_dir(ref: CheckpointRef, cache_dir: Path) -> Path:
    """A directory ``from_pretrained`` loads quickly: the checkpoint itself, or a converted GGUF copy."""
    if ref.format == "hf":
        return ref.path
    target = converted_dir(cache_dir, ref.model_hash)
    if (target / "config.json").is_file():
        return target
    log.info("converting %s from GGUF to safetensors under %s (once per model hash)", ref.path, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache_dir))
    try:
        dequantized = AutoModelForCausalLM.from_pretrained(
            str(ref.path.parent), gguf_file=ref.path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(ref.path.parent), gguf_file=ref.path.name)
        # transformers marks a GGUF-loaded model as quantized and refuses to save it; its weights are plain
        # fp32 after dequantization, so copy them into a model built from the same config.
        config = dequantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(dequantized.state_dict())
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class TransformersBackend:
    """A checkpoint loaded with transformers."""

    def __init__(
        self,
        ref: CheckpointRef,
        *,
        cache_dir: Path,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        kv_cache: Literal["auto", "static", "dynamic"] = "auto",
    ) -> None:
        self.ref = ref
        # A static KV cache lets CUDA reuse compiled shapes: measured on an H100 it is several times faster
        # than the default dynamic cache for small models (benchmarks/bench_generation_gpu.py).
        self.static_cache = kv_cache == "static" or (kv_cache == "auto" and _resolve_device(device).startswith("cuda"))
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        directory = ensure_loadable_dir(ref, cache_dir)
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(str(directory))
        model: Any = AutoModelForCausalLM.from_pretrained(str(directory), dtype=self.dtype)
        self.model: Any = model.to(self.device).eval()
        self._lm: Any = None

    @property
    def engine(self) -> str:
        return engine_id(self.device, str(self.dtype).removeprefix("torch."))

    # -- likelihood ---------------------------------------------------------------------------------------
    def _harness_lm(self) -> Any:
        if self._lm is None:
            from lm_eval.models.huggingface import HFLM

            self._lm = HFLM(
                pretrained=self.model,
                tokenizer=self.tokenizer,
                batch_size=self.batch_size,
                device=self.device,
            )
        return self._lm

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> list[LogLikelihood]:
        from lm_eval.api.instance import Instance

        lm = self._harness_lm()
        instances = [
            Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=index)
            for index, (context, continuation) in enumerate(requests)
        ]
        with torch.inference_mode():
            results = lm.loglikelihood(instances, disable_tqdm=True)
        if progress is not None:
            progress(len(requests), len(requests))
        return [LogLikelihood(logprob=float(lp), is_greedy=bool(greedy)) for lp, greedy in results]

    # -- generation ---------------------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        conversation = [{"role": role, "content": content} for role, content in messages]
        if getattr(self.tokenizer, "chat_template", None):
            rendered = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
            return str(rendered)
        return "\n\n".join(content for _, content in messages) + "\n\nAnswer:"

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, progress: Progress | None = None
    ) -> list[str]:
        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        outputs: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start : start + self.batch_size])
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "pad_token_id": tokenizer.pad_token_id,
            }
            if params.temperature > 0:
                torch.manual_seed(params.seed + start)
                kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if params.stop:
                kwargs.update(stop_strings=list(params.stop), tokenizer=tokenizer)
            if self.static_cache:
                kwargs["cache_implementation"] = "static"
            with torch.inference_mode():
                generated = self.model.generate(**encoded, **kwargs)
            new_tokens = generated[:, encoded["input_ids"].shape[1] :]
            for row in new_tokens:
                text = str(tokenizer.decode(row, skip_special_tokens=True))
                outputs.append(truncate_at_stop(text, params.stop))
            if progress is not None:
                progress(len(outputs), len(prompts))
        return outputs

    def close(self) -> None:
        self._lm = None
        del self.model
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
