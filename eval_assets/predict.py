"""Predictions for a suite on a checkpoint, through the per-item cache. Dagster-free.

The cache key is (model identity, prompt hash, sampling hash): the identity covers the weights, tokenizer and
config; the prompt hash the rendered prompt, the sample index and the tokenizer; the sampling hash the sampling
params (seed included, the number of samples not: raising ``n`` only adds keys), the engine and the output
format. The model is opened only when some item misses the cache, so re-evaluating an unchanged checkpoint
makes no model call and loads no weights; the opened backend's engine must be the one the key names, or
nothing is computed. Misses are computed once per distinct key and written chunk by chunk: a run killed
halfway resumes from the last written chunk. Where another run committed a key first, its output is served
(and a differing one reported), so concurrent runs agree with the cache and with each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from eval_assets.hashing import model_identity, sampling_hash
from eval_assets.kinds._registry import get_kind
from eval_assets.kinds._requests import sampling_params
from eval_assets.progress import Phase, Progress, emit_progress
from eval_assets.suites.items import Item
from eval_assets.suites.spec import SuiteSpec
from resources.prediction_cache import COMPACT_MIN_FILES, CachedPrediction, PredictionCache
from resources.runners.base import ModelBackend

__all__ = [
    "OUTPUT_FORMAT_VERSION",
    "PREDICTION_SCHEMA",
    "EngineMismatchError",
    "PredictionStats",
    "item_prompt_hash",
    "item_sampling_hash",
    "predict_suite",
    "sampling_params",
]

#: Bump when the layout of cached outputs, or what a key means, changes; it is part of the sampling hash.
#: 2: per-sample seeds (sampled outputs no longer depend on batches); ``sampling.n`` left out of the hash.
OUTPUT_FORMAT_VERSION = 2

PREDICTION_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String,
        "suite": pl.String,
        "item_id": pl.String,
        "model_hash": pl.String,
        "model_identity": pl.String,
        "prompt_hash": pl.String,
        "sampling_hash": pl.String,
        "output": pl.String,
        "cached": pl.Boolean,
    }
)


class EngineMismatchError(RuntimeError):
    """The backend opened is not the engine the cache key names; nothing was computed or cached."""


@dataclass(frozen=True)
class PredictionStats:
    """``cache_misses`` counts items not served from the cache; ``differing`` counts keys for which an output
    different from the committed one was seen (computed here after another run committed the key first, or
    several rows in the table): the committed output is served and the other never stored."""

    items: int
    cache_hits: int
    cache_misses: int
    model_calls: int
    wall_seconds: float
    engine: str
    differing: int = 0
    compacted: bool = False


def item_sampling_hash(spec: SuiteSpec, engine: str) -> str:
    """The sampling part of the key: kind, engine, output format and the sampling params. ``n`` (how many
    samples) is left out: sample k has its own prompt hash and seed, so more samples only add keys."""
    params: dict[str, Any] = {"kind": spec.kind, "engine": engine, "output_format": OUTPUT_FORMAT_VERSION}
    if spec.sampling is not None:
        params["sampling"] = spec.sampling.model_dump(mode="json", exclude={"n"})
    return sampling_hash(params)


def check_engine(backend: ModelBackend, engine: str, checkpoint: str) -> None:
    """Refuse a backend whose engine differs from the one the cache key names."""
    opened = backend.engine
    if opened != engine:
        raise EngineMismatchError(
            f"checkpoint {checkpoint}: the backend opened reports engine {opened!r}, but the cache key names "
            f"{engine!r} (computed from the model runner's settings before loading). Outputs of one engine are "
            "never cached as another's, so nothing was computed. Set the model runner to what the backend really "
            "runs (device, dtype, max_model_len, tensor-parallel size; for a server, the model it serves)."
        )


def item_prompt_hash(spec: SuiteSpec, item: Item, tokenizer_hash: str) -> str:
    """Hash of everything that renders the prompt, as the suite's kind requests it (template version, the
    rendered requests, and for chat prompts the tokenizer: its chat template turns messages into text)."""
    return get_kind(spec.kind).request.prompt_hash(spec, item, tokenizer_hash)


def _compute(backend: ModelBackend, spec: SuiteSpec, items: Sequence[Item]) -> tuple[list[str], int]:
    """Outputs (JSON strings) for items, and the number of model calls made: the kind's model request."""
    return get_kind(spec.kind).request.compute(backend, spec, items)


def predict_suite(
    *,
    checkpoint: str,
    model_hash: str,
    tokenizer_hash: str,
    config_hash: str,
    spec: SuiteSpec,
    items: Sequence[Item],
    cache: PredictionCache,
    engine: str,
    open_backend: Callable[[], ModelBackend],
    chunk_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, PredictionStats]:
    """Predictions for every item, from the cache where possible; misses computed (once per distinct key) and
    cached in chunks, then the model's cache partition compacted when it has grown many files."""
    started = time.perf_counter()
    identity = model_identity(model_hash, tokenizer_hash, config_hash)
    s_hash = item_sampling_hash(spec, engine)
    p_hashes = [item_prompt_hash(spec, item, tokenizer_hash) for item in items]
    found = cache.lookup(identity, s_hash, p_hashes)
    outputs: dict[str, str] = dict(found.outputs)
    differing = len(found.differing)
    cached_flags = [h in outputs for h in p_hashes]
    hits = sum(cached_flags)
    missing: dict[str, Item] = {}
    for item, h in zip(items, p_hashes, strict=True):
        if h not in outputs:
            missing.setdefault(h, item)
    todo = list(missing.items())
    model_calls = 0
    compacted = False

    def emit(phase: Phase, computed: int = 0) -> None:
        emit_progress(Progress(checkpoint, spec.name, phase, len(items), hits, len(todo), computed))

    emit("start")
    if todo:
        emit("loading")
        backend = open_backend()
        emit("loaded")
        try:
            check_engine(backend, engine, checkpoint)
            done = 0
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                chunk_outputs, calls = _compute(backend, spec, [item for _, item in chunk])
                model_calls += calls
                written = cache.write(
                    model_identity=identity,
                    model_hash=model_hash,
                    sampling_hash=s_hash,
                    suite=spec.name,
                    engine=engine,
                    entries=[
                        CachedPrediction(prompt_hash=h, item_id=item.item_id, output=out)
                        for (h, item), out in zip(chunk, chunk_outputs, strict=True)
                    ],
                )
                outputs.update(written.committed)
                differing += len(written.differing)
                done += len(chunk)
                emit("chunk", done)
                if progress is not None:
                    progress(done, len(todo))
        finally:
            backend.close()
        compacted = cache.compact(identity, min_files=COMPACT_MIN_FILES)
    emit("done", len(todo))
    frame = pl.DataFrame(
        {
            "checkpoint": [checkpoint] * len(items),
            "suite": [spec.name] * len(items),
            "item_id": [item.item_id for item in items],
            "model_hash": [model_hash] * len(items),
            "model_identity": [identity] * len(items),
            "prompt_hash": p_hashes,
            "sampling_hash": [s_hash] * len(items),
            "output": [outputs[h] for h in p_hashes],
            "cached": cached_flags,
        },
        schema=PREDICTION_SCHEMA,
    )
    stats = PredictionStats(
        items=len(items),
        cache_hits=hits,
        cache_misses=len(items) - hits,
        model_calls=model_calls,
        wall_seconds=time.perf_counter() - started,
        engine=engine,
        differing=differing,
        compacted=compacted,
    )
    return frame, stats
