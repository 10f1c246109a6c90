"""Sampled generation on the real model (SmolLM2-135M, transformers on CPU): sample k of a HumanEval problem is
the same text whatever the batch size, whether the run was killed halfway and resumed, and however many samples
the profile draws; raising the samples per problem from 2 to 4 makes exactly 2 new calls per problem."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from evalgate_testing import tiny_specs

from eval_assets.hashing import model_hash
from eval_assets.predict import predict_suite
from eval_assets.suites.loaders import load_items
from eval_assets.suites.spec import Profile
from resources.prediction_cache import PredictionCache
from resources.runners.base import CheckpointRef
from resources.runners.transformers_backend import TransformersBackend, engine_id

pytestmark = pytest.mark.slow

PROBLEMS = 2
MAX_NEW_TOKENS = 16


def _spec(samples: int = 2) -> Any:
    """HumanEval's sampling (temperature 0.8, top-p 0.95) without its stop sequences: the small model often
    starts with a line its stops cut to nothing, and whole texts are the stronger comparison."""
    spec = tiny_specs(arc=0, gsm8k=0, humaneval=PROBLEMS, max_new_tokens=MAX_NEW_TOKENS)["humaneval"]
    profiles = spec.profiles | {"smoke": Profile(limit=PROBLEMS, samples=samples)}
    return spec.model_copy(
        update={"profiles": profiles, "sampling": spec.sampling.model_copy(update={"stop": ()})}
    )


@pytest.fixture(scope="module")
def ref(baseline_gguf: Path) -> CheckpointRef:
    return CheckpointRef("base", baseline_gguf, "gguf", model_hash(baseline_gguf))


def _predict(ref: CheckpointRef, cache: PredictionCache, model_cache: Path, data_root: Path, *, batch_size: int,
             samples: int = 2, chunk_size: int = 16) -> tuple[dict[str, str], Any]:  # fmt: skip
    spec = _spec(samples)
    items = load_items(spec, "smoke", data_root)
    frame, stats = predict_suite(
        checkpoint="base", model_hash=ref.model_hash, tokenizer_hash="t", config_hash="c", spec=spec, items=items,
        cache=cache, engine=engine_id("cpu", "float32"), chunk_size=chunk_size,
        open_backend=lambda: TransformersBackend(ref, cache_dir=model_cache, device="cpu", dtype="float32",
                                                 batch_size=batch_size),
    )  # fmt: skip
    return dict(zip(frame["item_id"], frame["output"], strict=True)), stats


@pytest.fixture(scope="module")
def cold(
    ref: CheckpointRef, model_cache: Path, data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A cold run at batch size 4: the reference outputs, and its cache (grown later)."""
    cache = PredictionCache(tmp_path_factory.mktemp("cold") / "cache")
    outputs, stats = _predict(ref, cache, model_cache, data_root, batch_size=4)
    assert stats.model_calls == PROBLEMS * 2
    return outputs, cache


def test_samples_are_identical_across_batch_sizes(cold: Any, ref: CheckpointRef, model_cache: Path, data_root: Path,
                                                  tmp_path: Path) -> None:  # fmt: skip
    reference, _ = cold
    assert len(set(reference.values())) == len(reference), "samples of a problem differ from each other"
    single, stats = _predict(ref, PredictionCache(tmp_path / "cache"), model_cache, data_root, batch_size=1)
    assert stats.model_calls == PROBLEMS * 2
    assert single == reference, "bit-identical texts at batch size 1 and 4"


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    sys.path.insert(0, {here!r})
    from test_sampled_reproducibility import _predict
    from resources.prediction_cache import PredictionCache
    from resources.runners.base import CheckpointRef
    import eval_assets.predict as predict

    ref = CheckpointRef("base", Path({gguf!r}), "gguf", {model_hash!r})
    original = predict.PredictionCache.write
    written = []

    def write_then_die(self, **kwargs):
        result = original(self, **kwargs)
        written.append(1)
        print("chunk written", len(written), flush=True)
        if len(written) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-run: no cleanup, no flush
        return result

    predict.PredictionCache.write = write_then_die
    _predict(ref, PredictionCache(Path({cache!r})), Path({model_cache!r}), Path({data!r}), batch_size=4, chunk_size=1)
    """
)


def test_a_run_killed_halfway_resumes_to_the_same_samples(cold: Any, ref: CheckpointRef, model_cache: Path,
                                                          data_root: Path, tmp_path: Path) -> None:  # fmt: skip
    reference, _ = cold
    cache_path = tmp_path / "cache"
    script = KILLED.format(
        tests=str(Path(__file__).parents[1]), here=str(Path(__file__).parent), gguf=str(ref.path),
        model_hash=ref.model_hash, cache=str(cache_path), model_cache=str(model_cache), data=str(data_root),
    )  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])})  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "chunk written 2" in proc.stdout
    resumed, stats = _predict(ref, PredictionCache(cache_path), model_cache, data_root, batch_size=3)
    assert (stats.cache_hits, stats.model_calls) == (2, PROBLEMS * 2 - 2), (
        "the two finished samples are reused"
    )
    assert resumed == reference, "the samples drawn after the kill are the ones a cold run draws"


def test_growing_samples_from_2_to_4_runs_only_the_new_ones(cold: Any, ref: CheckpointRef, model_cache: Path,
                                                             data_root: Path) -> None:  # fmt: skip
    reference, cache = cold
    grown, stats = _predict(ref, cache, model_cache, data_root, batch_size=4, samples=4)
    assert stats.model_calls == PROBLEMS * 2, "2 new calls per problem"
    assert (stats.cache_hits, stats.cache_misses) == (PROBLEMS * 2, PROBLEMS * 2)
    assert {item: grown[item] for item in reference} == reference
    assert len(set(grown.values())) == len(grown)
