from pathlib import Path

import polars as pl
import pytest

from resources.prediction_cache import CachedPrediction, PredictionCache
from resources.results_store import ResultsStore


def test_cache_is_keyed_on_model_prompt_and_sampling(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "cache")
    assert cache.lookup("m1", "s1", ["p1"]) == {}
    cache.write(model_hash="m1", sampling_hash="s1", suite="x", engine="e",
                entries=[CachedPrediction("p1", "i1", "out1"), CachedPrediction("p2", "i2", "out2")])  # fmt: skip
    assert cache.lookup("m1", "s1", ["p1", "p2", "p3"]) == {"p1": "out1", "p2": "out2"}
    assert cache.lookup("m2", "s1", ["p1"]) == {}, "another model's outputs must never be served"
    assert cache.lookup("m1", "s2", ["p1"]) == {}
    cache.write(model_hash="m1", sampling_hash="s1", suite="x", engine="e", entries=[CachedPrediction("p3", "i3", "o3")])
    assert cache.count() == 3
    cache.compact()
    assert cache.lookup("m1", "s1", ["p3"]) == {"p3": "o3"}


def _frame(checkpoint: str, suite: str, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"checkpoint": [checkpoint] * len(values), "suite": [suite] * len(values), "v": values})


def test_replace_touches_only_its_checkpoint_and_suite(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.replace("scores", _frame("a", "s1", [1, 2]), checkpoint="a", suite="s1")
    store.replace("scores", _frame("a", "s2", [3]), checkpoint="a", suite="s2")
    store.replace("scores", _frame("b", "s1", [4]), checkpoint="b", suite="s1")
    store.replace("scores", _frame("a", "s1", [9]), checkpoint="a", suite="s1")
    table = store.read("scores").sort(["checkpoint", "suite", "v"])
    assert table.select("checkpoint", "suite", "v").rows() == [("a", "s1", 9), ("a", "s2", 3), ("b", "s1", 4)]
    assert (tmp_path / "scores" / "checkpoint=a").is_dir(), "partitioned by checkpoint on disk"
    with pytest.raises(ValueError, match="must all belong"):
        store.replace("scores", _frame("b", "s1", [1]), checkpoint="a", suite="s1")
    with pytest.raises(ValueError, match="unknown results table"):
        store.read("nope")


def test_a_new_column_merges_into_an_existing_table(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.replace("scores", _frame("a", "s1", [1]), checkpoint="a", suite="s1")
    wider = _frame("b", "s1", [2]).with_columns(pl.lit("x").alias("details"))
    store.replace("scores", wider, checkpoint="b", suite="s1")
    table = store.read("scores").sort("checkpoint")
    assert table["details"].to_list() == [None, "x"]
