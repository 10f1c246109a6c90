"""The demo: a real production baseline and a real damaged checkpoint, evaluated through Dagster.

The damaged checkpoint is SmolLM2-135M-Instruct with Gaussian noise of half each weight matrix's standard
deviation added to ten transformer layers (seeded, so the same bytes every time), saved as safetensors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from eval_assets.datapkgs import SMOLLM2_GGUF, data_file
from eval_assets.hashing import model_hash
from resources.production_ledger import ProductionHead
from resources.results_store import ResultsStore
from resources.runners.base import CheckpointRef
from resources.runners.transformers_backend import ensure_loadable_dir

log = logging.getLogger(__name__)

BASELINE_NAME = "smollm2-135m-instruct"
DAMAGED_NAME = "smollm2-135m-damaged"
DAMAGE_LAYERS = tuple(range(10))
DAMAGE_SCALE = 0.5
DAMAGE_SEED = 1234


def baseline_weights(data_root: Path) -> Path:
    return data_file(SMOLLM2_GGUF, data_root)


def make_damaged_checkpoint(base_gguf: Path, model_cache: Path, target: Path) -> Path:
    """Write the damaged copy to ``target`` (skipped when already there)."""
    if (target / "model.safetensors").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = ensure_loadable_dir(
        CheckpointRef(name="base", path=base_gguf, format="gguf", model_hash=model_hash(base_gguf)),
        model_cache,
    )
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    generator = torch.Generator().manual_seed(DAMAGE_SEED)
    with torch.no_grad():
        for index in DAMAGE_LAYERS:
            for name, parameter in model.model.layers[index].named_parameters():
                if parameter.ndim < 2:
                    continue
                noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
                parameter.add_(noise * parameter.std() * DAMAGE_SCALE)
                log.debug("damaged layer %d %s", index, name)
    staging = target.with_name(target.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(target)
    return target


def demo_verdict(results: ResultsStore, head: ProductionHead | None, baseline: str, damaged: str) -> str:
    """What is wrong with the demo's outcome ("" when the damaged copy is blocked with a reason in numbers and
    the baseline is still production)."""
    import polars as pl

    if head is None or head.checkpoint != baseline:
        return f"production should be {baseline}, is {head.checkpoint if head else 'unset'}"
    decisions = results.read("gate_decisions", checkpoint=damaged)
    if decisions.height == 0:
        return f"no gate decision was recorded for {damaged}"
    failed = decisions.filter(
        pl.col("blocking") & (pl.col("rule") != "promotion") & (pl.col("outcome") == "fail")
    )
    if failed.height == 0:
        return f"{damaged} was not blocked by any rule"
    reason = str(failed["reason"][0])
    if "CI" not in reason:
        return f"{damaged} was blocked without numbers: {reason}"
    return ""
