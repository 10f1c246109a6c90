"""The embedded default backend: transformers on CPU here, CUDA when present.

Likelihood goes through lm-eval-harness's own ``HFLM`` (wrapping the model we loaded), so our numbers are
lm-eval's numbers. Generation is batched ``model.generate`` with left padding, stop strings, and a static KV
cache on CUDA; greedy, or sampled with one ``torch.Generator`` per row (:class:`RowSampler`), seeded with that
prompt's own seed, so a sample does not depend on the batch it ran in or on the batch size. Sampling applies
temperature and top-p (no top-k), as vLLM and OpenAI-compatible servers do by default. A GGUF checkpoint is dequantized once and kept as safetensors under
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
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
)

from resources.runners.base import (
    CheckpointRef,
    LogLikelihood,
    Progress,
    SamplingParams,
    prompt_seeds,
    truncate_at_stop,
)

log = logging.getLogger(__name__)


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _engine(device_type: str, dtype: torch.dtype) -> str:
    return (
        f"transformers-{transformers.__version__}+torch-{torch.__version__}/{device_type}/"
        f"{str(dtype).removeprefix('torch.')}"
    )


def engine_id(device: str, dtype: str) -> str:
    """Backend and torch versions, device type and dtype, as the runner's settings resolve them; computed
    without loading anything (the key of a fully cached run)."""
    resolved = _resolve_device(device)
    return _engine(resolved.split(":")[0], _resolve_dtype(dtype, resolved))


def engine_of(model: Any) -> str:
    """The engine id of a loaded model: the device and dtype its weights really are on."""
    parameter = next(model.parameters())
    return _engine(parameter.device.type, parameter.dtype)


class RowSampler(LogitsProcessor):
    """Sampling as a logits processor for greedy ``generate``: each row's next token is drawn from its own
    generator (temperature, then top-p as transformers' ``TopPLogitsWarper`` does it), and every other token is
    masked, so the greedy step picks it. Rows are processed one at a time, with the same operations whatever
    the batch, so a row's draws depend on its prompt and seed alone."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device: str) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators = [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = torch.full_like(scores, float("-inf"))
        for row, generator in enumerate(self.generators):
            logits = scores[row].float() / self.temperature
            if self.top_p < 1.0:
                ordered, indices = torch.sort(logits, descending=False)
                remove = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - self.top_p)
                remove[-1] = False  # keep at least the most likely token
                logits = logits.masked_fill(remove.scatter(0, indices, remove), float("-inf"))
            token = torch.multinomial(logits.softmax(dim=-1), num_samples=1, generator=generator)
            chosen[row, token] = 0.0
        return chosen  # type: ignore[return-value]


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
        try:
            os.replace(staging, target)
        except OSError:
            # another process (a concurrent `evalgate evaluate`, the daemon) converted the same weights first:
            # the conversion is deterministic, so its copy serves as well as ours
            if not (target / "config.json").is_file():
                raise
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
        self.static_cache = kv_cache == "static" or (
            kv_cache == "auto" and _resolve_device(device).startswith("cuda")
        )
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
        return engine_of(self.model)

    # -- likelihood ---------------------------------------------------------------------------------------
    def _harness_lm(self) -> Any:
        if self._lm is None:
            from lm_eval.models.huggingface import HFLM

            # HFLM warns twice that it was handed a loaded model instead of a name: that is how we use it (the
            # model is loaded once, by us). Those two lines are not for the user's console.
            harness_log = logging.getLogger("lm_eval.models.huggingface")
            level = harness_log.level
            harness_log.setLevel(logging.ERROR)
            try:
                self._lm = HFLM(
                    pretrained=self.model,
                    tokenizer=self.tokenizer,
                    batch_size=self.batch_size,
                    device=self.device,
                )
            finally:
                harness_log.setLevel(level)
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
            rendered = self.tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=True
            )
            return str(rendered)
        return "\n\n".join(content for _, content in messages) + "\n\nAnswer:"

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        progress: Progress | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        row_seeds = prompt_seeds(len(prompts), params, seeds)
        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        outputs: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start : start + self.batch_size])
            encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(
                self.device
            )
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "pad_token_id": tokenizer.pad_token_id,
                # Always greedy steps: sampling, when asked for, happens in RowSampler, one generator per row.
                "do_sample": False,
                "temperature": None,
                "top_p": None,
                "top_k": None,
            }
            if params.temperature > 0:
                sampler = RowSampler(
                    row_seeds[start : start + len(batch)], params.temperature, params.top_p, self.device
                )
                kwargs["logits_processor"] = LogitsProcessorList([sampler])
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
