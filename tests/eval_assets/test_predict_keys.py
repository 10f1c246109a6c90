"""What the prediction cache key covers, with a counting stand-in backend (no model): the tokenizer and config
invalidate it, sample k is keyed and seeded on its own (raising ``n`` runs only new samples), one key is
computed once, and a backend whose engine is not the key's is refused before it computes anything."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from eval_assets.predict import EngineMismatchError, item_sampling_hash, predict_suite
from eval_assets.suites import load_suite_specs
from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem
from eval_assets.suites.loaders import with_samples
from resources.prediction_cache import PredictionCache
from resources.runners.base import LogLikelihood, SamplingParams


class Counting:
    """A backend that answers from its inputs (so outputs are a function of prompt and seed) and counts."""

    def __init__(self, engine: str = "fake") -> None:
        self.engine = engine
        self.prompts: list[str] = []
        self.seeds: list[int | None] = []
        self.requests: list[tuple[str, str]] = []
        self.closed = False

    def loglikelihood(self, requests: Sequence[tuple[str, str]], progress: Any = None) -> list[LogLikelihood]:
        self.requests.extend(requests)
        return [LogLikelihood(-float(len(c)), True) for _, c in requests]

    def render_chat(self, messages: Sequence[tuple[str, str]]) -> str:
        return "\n".join(content for _, content in messages)

    def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        progress: Any = None,
        seeds: Sequence[int] | None = None,
    ) -> list[str]:
        self.prompts.extend(prompts)
        self.seeds.extend(seeds if seeds is not None else [None] * len(prompts))
        return [f"{p}|{s}" for p, s in zip(prompts, seeds or [None] * len(prompts), strict=True)]

    def close(self) -> None:
        self.closed = True


def _predict(
    cache: PredictionCache, spec: Any, items: Sequence[Item], backend: Counting, **hashes: str
) -> Any:
    keys = {"model_hash": "sha256:w", "tokenizer_hash": "sha256:t", "config_hash": "sha256:c"} | hashes
    return predict_suite(
        checkpoint="ckpt", **keys, spec=spec, items=items, cache=cache, engine="fake",  # type: ignore[arg-type]
        open_backend=lambda: backend, chunk_size=3,
    )  # fmt: skip


LIKELIHOOD_ITEMS = [LikelihoodItem(f"q{i}", f"Question {i}?", (" yes", " no"), 0) for i in range(4)]


@pytest.mark.parametrize("changed", ["tokenizer_hash", "config_hash", "model_hash"])
def test_a_changed_tokenizer_or_config_invalidates_the_cache(tmp_path: Path, changed: str) -> None:
    cache = PredictionCache(tmp_path / "cache")
    spec = load_suite_specs()["arc_easy"]
    first = Counting()
    _predict(cache, spec, LIKELIHOOD_ITEMS, first)
    assert len(first.requests) == 8
    again = Counting()
    _, stats = _predict(cache, spec, LIKELIHOOD_ITEMS, again)
    assert (stats.cache_hits, again.requests) == (4, [])
    other = Counting()
    _, stats = _predict(cache, spec, LIKELIHOOD_ITEMS, other, **{changed: "sha256:changed"})
    assert stats.cache_hits == 0 and len(other.requests) == 8, f"a new {changed} is another model"


def _code_items(problems: int, samples: int) -> list[Item]:
    base = [GenerationItem(f"HumanEval/{i}", (("user", f"def f{i}():"),), "") for i in range(problems)]
    return with_samples(base, samples)


def test_raising_n_runs_only_the_new_samples(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "cache")
    spec = load_suite_specs()["humaneval"]
    two = Counting()
    first, _ = _predict(cache, spec, _code_items(3, 2), two)
    assert len(two.prompts) == 6
    more = spec.model_copy(update={"sampling": spec.sampling.model_copy(update={"n": 4})})  # type: ignore[union-attr]
    assert item_sampling_hash(more, "fake") == item_sampling_hash(spec, "fake"), "n is not in the key"
    four = Counting()
    grown, stats = _predict(cache, more, _code_items(3, 4), four)
    assert len(four.prompts) == 6 and stats.model_calls == 6, "2 new calls per item"
    assert (stats.cache_hits, stats.cache_misses) == (6, 6)
    earlier = dict(zip(first["item_id"], first["output"], strict=True))
    now = dict(zip(grown["item_id"], grown["output"], strict=True))
    assert all(now[item] == output for item, output in earlier.items()), (
        "samples 0 and 1 are the ones drawn before"
    )


def test_each_sample_has_its_own_seed_whatever_the_batch(tmp_path: Path) -> None:
    spec = load_suite_specs()["humaneval"]
    items = _code_items(3, 2)
    whole = Counting()
    _predict(PredictionCache(tmp_path / "a"), spec, items, whole)
    assert len(set(whole.seeds)) == 6, "no two samples share a seed"
    reordered = Counting()
    _predict(PredictionCache(tmp_path / "b"), spec, items[::-1], reordered)
    pairs = sorted(zip(whole.prompts, [str(s) for s in whole.seeds], strict=True))
    assert pairs == sorted(zip(reordered.prompts, [str(s) for s in reordered.seeds], strict=True))
    single = Counting()
    _predict(PredictionCache(tmp_path / "c"), spec, items[2:3], single)
    assert single.seeds[0] == whole.seeds[items.index(items[2])]


def test_one_key_is_computed_once(tmp_path: Path) -> None:
    spec = load_suite_specs()["gsm8k"]
    same = [GenerationItem(f"dup{i}", (("user", "2+2?"),), "4") for i in range(3)]
    backend = Counting()
    frame, stats = _predict(PredictionCache(tmp_path / "cache"), spec, same, backend)
    assert backend.prompts == ["2+2?"] and stats.model_calls == 1
    assert frame["output"].n_unique() == 1 and frame.height == 3


def test_a_backend_of_another_engine_is_refused_before_computing(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "cache")
    spec = load_suite_specs()["arc_easy"]
    opened = Counting(engine="vllm-0.10.0/cuda/bfloat16/max_model_len=4096/tp=2")
    with pytest.raises(EngineMismatchError) as raised:
        _predict(cache, spec, LIKELIHOOD_ITEMS, opened)
    message = str(raised.value)
    assert "max_model_len=4096" in message and "'fake'" in message and "nothing was computed" in message
    assert opened.requests == [] and opened.closed
    assert cache.count() == 0


def test_outputs_record_the_model_identity(tmp_path: Path) -> None:
    frame, _ = _predict(
        PredictionCache(tmp_path / "cache"), load_suite_specs()["arc_easy"], LIKELIHOOD_ITEMS, Counting()
    )
    assert frame["model_hash"].unique().to_list() == ["sha256:w"]
    (identity,) = frame["model_identity"].unique().to_list()
    assert identity.startswith("sha256:") and identity != "sha256:w"
    assert json.loads(frame["output"][0])["logprobs"] == [-4.0, -3.0]
