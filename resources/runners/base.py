"""The interface every model backend implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

#: Called with (items done, items total) as a long step proceeds.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CheckpointRef:
    """What a backend needs to load a checkpoint: where it is, what format, and its identity."""

    name: str
    path: Path
    format: Literal["gguf", "hf"]
    model_hash: str


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class LogLikelihood:
    """Log-probability of a continuation given its context, and whether greedy decoding yields it."""

    logprob: float
    is_greedy: bool


class ModelBackend(Protocol):
    """A loaded checkpoint that scores continuations and generates text."""

    @property
    def engine(self) -> str:
        """Names the engine as opened (backend, version, device, dtype, and what else shapes outputs), read
        from the loaded engine itself: part of the sampling hash, so outputs of different engines are never
        served from the cache as each other's. Prediction refuses a backend whose engine differs from the one
        the model runner computed for the key before loading."""
        ...

    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> list[LogLikelihood]: ...

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        """The prompt text for chat messages, with the checkpoint's own chat template."""
        ...

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        progress: Progress | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        """One completion per prompt. Sampled prompts are seeded each on its own, with ``seeds[i]`` (default:
        ``params.seed`` for every prompt), so an output never depends on the batch it ran in."""
        ...

    def close(self) -> None: ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut a completion at the first stop sequence."""
    cut = len(text)
    for sequence in stop:
        index = text.find(sequence)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]


def prompt_seeds(count: int, params: SamplingParams, seeds: Sequence[int] | None) -> list[int]:
    """The seed of each of ``count`` prompts: ``seeds`` when given (one per prompt), else ``params.seed``."""
    if seeds is None:
        return [params.seed] * count
    if len(seeds) != count:
        raise ValueError(f"{len(seeds)} seeds for {count} prompts")
    return [int(seed) for seed in seeds]


def request_sampling_fields(params: SamplingParams) -> dict[str, Any]:
    """Sampling fields for servers and engines that take them per request (vLLM, OpenAI-compatible
    completions). Temperature 0 is greedy; ``top_p`` is sent as 1 then, since some servers reject other values
    with greedy decoding; the seed is per request, so sampled outputs do not depend on batch composition."""
    fields: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "max_tokens": params.max_new_tokens,
        "seed": params.seed,
    }
    if params.stop:
        fields["stop"] = list(params.stop)
    return fields
