"""Predictions through the cache on the real small model (SmolLM2-135M, transformers on CPU)."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from evalgate_testing import tiny_specs

from eval_assets.hashing import model_hash
from eval_assets.predict import predict_suite
from eval_assets.scoring import score_items
from eval_assets.suites.loaders import load_items
from resources.prediction_cache import PredictionCache
from resources.runners.base import CheckpointRef, ModelBackend
from resources.runners.transformers_backend import TransformersBackend, engine_id

pytestmark = pytest.mark.slow


class Opener:
    """Counts how often the model is opened (the real backend, just counted)."""

    def __init__(self, ref: CheckpointRef, cache_dir: Path) -> None:
        self.ref, self.cache_dir, self.opened = ref, cache_dir, 0

    def __call__(self) -> ModelBackend:
        self.opened += 1
        return TransformersBackend(self.ref, cache_dir=self.cache_dir, batch_size=4)


@pytest.fixture(scope="module")
def ref(baseline_gguf: Path) -> CheckpointRef:
    return CheckpointRef("base", baseline_gguf, "gguf", model_hash(baseline_gguf))


def _run(
    spec_name: str, ref: CheckpointRef, cache: PredictionCache, opener: Opener, data_root: Path, **kw: int
):  # type: ignore[no-untyped-def]
    spec = tiny_specs(**kw)[spec_name]
    items = load_items(spec, "smoke", data_root)
    frame, stats = predict_suite(
        checkpoint="base", model_hash=ref.model_hash, tokenizer_hash="t", config_hash="c", spec=spec, items=items,
        cache=cache, engine=engine_id("auto", "auto"), open_backend=opener, chunk_size=2,
    )  # fmt: skip
    return spec, items, frame, stats


def test_second_run_makes_no_model_calls(
    ref: CheckpointRef, model_cache: Path, data_root: Path, tmp_path: Path
) -> None:
    cache = PredictionCache(tmp_path / "cache")
    opener = Opener(ref, model_cache)
    spec, items, first, stats = _run("arc_easy", ref, cache, opener, data_root)
    assert stats.cache_misses == 6 and stats.cache_hits == 0
    assert stats.model_calls == sum(len(i.continuations) for i in items)
    _, _, second, again = _run("arc_easy", ref, cache, opener, data_root)
    assert again.model_calls == 0 and again.cache_hits == 6
    assert opener.opened == 1, "a fully cached run must not even load the model"
    assert second["output"].to_list() == first["output"].to_list()
    scores = score_items(spec, items, second)
    assert scores.height == 6 and scores["parsed"].all()


def test_grown_suite_runs_only_new_items(
    ref: CheckpointRef, model_cache: Path, data_root: Path, tmp_path: Path
) -> None:
    cache = PredictionCache(tmp_path / "cache")
    opener = Opener(ref, model_cache)
    _run("arc_easy", ref, cache, opener, data_root, arc=4)
    _, _, _, stats = _run("arc_easy", ref, cache, opener, data_root, arc=7)
    assert (stats.cache_hits, stats.cache_misses) == (4, 3)


def test_generation_is_reproducible_across_caches(
    ref: CheckpointRef, model_cache: Path, data_root: Path, tmp_path: Path
) -> None:
    outputs = []
    for run in range(2):
        _, _, frame, stats = _run(
            "gsm8k", ref, PredictionCache(tmp_path / f"c{run}"), Opener(ref, model_cache), data_root
        )
        assert stats.model_calls == 2
        outputs.append(frame["output"].to_list())
    assert outputs[0] == outputs[1]
    assert all('"text"' in o for o in outputs[0])


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from evalgate_testing import tiny_specs
    from eval_assets.predict import predict_suite
    from eval_assets.suites.loaders import load_items
    from resources.prediction_cache import PredictionCache
    from resources.runners.base import CheckpointRef
    from resources.runners.transformers_backend import TransformersBackend, engine_id

    ref = CheckpointRef("base", Path({gguf!r}), "gguf", {model_hash!r})
    spec = tiny_specs(arc=10)["arc_easy"]
    items = load_items(spec, "smoke", Path({data!r}))

    def progress(done, total):
        print("chunk written", done, flush=True)
        if done >= 4:
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-run: no cleanup, no flush

    predict_suite(checkpoint="base", model_hash=ref.model_hash, tokenizer_hash="t", config_hash="c", spec=spec, items=items,
                  cache=PredictionCache(Path({cache!r})), engine=engine_id("auto", "auto"),
                  open_backend=lambda: TransformersBackend(ref, cache_dir=Path({model_cache!r}), batch_size=4),
                  chunk_size=2, progress=progress)
    """
)


def test_killed_run_resumes_without_recomputing(
    ref: CheckpointRef, model_cache: Path, data_root: Path, tmp_path: Path
) -> None:
    cache_path = tmp_path / "cache"
    script = KILLED_RUN.format(
        tests=str(Path(__file__).parents[1]), gguf=str(ref.path), model_hash=ref.model_hash,
        data=str(data_root), cache=str(cache_path), model_cache=str(model_cache),
    )  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])})  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "chunk written 4" in proc.stdout
    opener = Opener(ref, model_cache)
    _, items, frame, stats = _run("arc_easy", ref, PredictionCache(cache_path), opener, data_root, arc=10)
    assert stats.cache_hits == 4, "the two chunks written before the kill are reused"
    assert stats.cache_misses == 6
    assert frame["cached"].to_list() == [True] * 4 + [False] * 6
    assert stats.model_calls == sum(len(i.continuations) for i in items[4:])
