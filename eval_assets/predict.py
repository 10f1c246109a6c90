"""Predictions for a suite on a checkpoint, through the per-item cache. Dagster-free.

The model is opened only when some item misses the cache, so re-evaluating an unchanged checkpoint makes no
model call and loads no weights. Misses are computed and written chunk by chunk: a run killed halfway resumes
from the last written chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from eval_assets.hashing import sampling_hash
from eval_assets.kinds._registry import get_kind
from eval_assets.kinds._requests import sampling_params
from eval_assets.suites.items import Item
from eval_assets.suites.spec import SuiteSpec
from resources.prediction_cache import CachedPrediction, PredictionCache
from resources.runners.base import ModelBackend

__all__ = [
    "OUTPUT_FORMAT_VERSION",
    "PREDICTION_SCHEMA",
    "PredictionStats",
    "item_prompt_hash",
    "item_sampling_hash",
    "predict_suite",
    "sampling_params",
]

#: Bump when the layout of cached outputs changes; it is part of the sampling hash.
OUTPUT_FORMAT_VERSION = 1

PREDICTION_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String,
        "suite": pl.String,
        "item_id": pl.String,
        "model_hash": pl.String,
        "prompt_hash": pl.String,
        "sampling_hash": pl.String,
        "output": pl.String,
        "cached": pl.Boolean,
    }
)


@dataclass(frozen=True)
class PredictionStats:
    items: int
    cache_hits: int
    cache_misses: int
    model_calls: int
    wall_seconds: float
    engine: str


def item_sampling_hash(spec: SuiteSpec, engine: str) -> str:
    params: dict[str, Any] = {"kind": spec.kind, "engine": engine, "output_format": OUTPUT_FORMAT_VERSION}
    if spec.sampling is not None:
        params["sampling"] = spec.sampling.model_dump(mode="json")
    return sampling_hash(params)


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
    spec: SuiteSpec,
    items: Sequence[Item],
    cache: PredictionCache,
    engine: str,
    open_backend: Callable[[], ModelBackend],
    chunk_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, PredictionStats]:
    """Predictions for every item, from the cache where possible; misses computed and cached in chunks."""
    started = time.perf_counter()
    s_hash = item_sampling_hash(spec, engine)
    p_hashes = [item_prompt_hash(spec, item, tokenizer_hash) for item in items]
    outputs: dict[str, str] = cache.lookup(model_hash, s_hash, p_hashes)
    hits = sum(1 for h in p_hashes if h in outputs)
    cached_flags = [h in outputs for h in p_hashes]
    missing = [(item, h) for item, h in zip(items, p_hashes, strict=True) if h not in outputs]
    model_calls = 0
    if missing:
        backend = open_backend()
        try:
            done = 0
            for start in range(0, len(missing), chunk_size):
                chunk = missing[start : start + chunk_size]
                chunk_outputs, calls = _compute(backend, spec, [item for item, _ in chunk])
                model_calls += calls
                cache.write(
                    model_hash=model_hash,
                    sampling_hash=s_hash,
                    suite=spec.name,
                    engine=engine,
                    entries=[
                        CachedPrediction(prompt_hash=h, item_id=item.item_id, output=out)
                        for (item, h), out in zip(chunk, chunk_outputs, strict=True)
                    ],
                )
                for (_, h), out in zip(chunk, chunk_outputs, strict=True):
                    outputs[h] = out
                done += len(chunk)
                if progress is not None:
                    progress(done, len(missing))
        finally:
            backend.close()
    frame = pl.DataFrame(
        {
            "checkpoint": [checkpoint] * len(items),
            "suite": [spec.name] * len(items),
            "item_id": [item.item_id for item in items],
            "model_hash": [model_hash] * len(items),
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
        cache_misses=len(missing),
        model_calls=model_calls,
        wall_seconds=time.perf_counter() - started,
        engine=engine,
    )
    return frame, stats
