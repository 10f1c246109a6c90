"""Scores kept per profile: evaluating production on a grown profile leaves its earlier profile's scores
queryable, and a comparison made with that profile's code version still finds them."""

from pathlib import Path

import polars as pl
import pytest

from eval_assets.defs.comparison_assets import _production_scores
from resources.profile_results import ProfileResults
from resources.results_store import ResultsStore


def _summary(checkpoint: str, profile: str, version: str, model_hash: str = "sha256:p") -> pl.DataFrame:
    return pl.DataFrame([{"checkpoint": checkpoint, "suite": "s", "profile": profile, "suite_code_version": version,
                          "model_hash": model_hash, "score": 0.5}])  # fmt: skip


def _items(checkpoint: str, profile: str, version: str, n: int) -> pl.DataFrame:
    return pl.DataFrame({"checkpoint": [checkpoint] * n, "suite": ["s"] * n, "item_id": [f"i{k}" for k in range(n)],
                         "score": [1.0] * n, "profile": [profile] * n, "suite_code_version": [version] * n})  # fmt: skip


def _evaluate(store: ResultsStore, kept: ProfileResults, profile: str, version: str, n: int) -> None:
    """What scores/<suite> writes for production under one profile."""
    store.replace("scores", _summary("prod", profile, version), checkpoint="prod", suite="s")
    store.replace("item_scores", _items("prod", profile, version, n).drop("profile", "suite_code_version"),
                  checkpoint="prod", suite="s")  # fmt: skip
    kept.replace(
        "scores_by_profile", _summary("prod", profile, version), checkpoint="prod", suite="s", profile=profile
    )
    kept.replace("item_scores_by_profile", _items("prod", profile, version, n), checkpoint="prod", suite="s",
                 profile=profile)  # fmt: skip


def test_each_profiles_scores_are_kept(tmp_path: Path) -> None:
    kept = ProfileResults(tmp_path)
    store = ResultsStore(tmp_path)
    _evaluate(store, kept, "smoke", "v-smoke", 4)
    _evaluate(store, kept, "full", "v-full", 9)
    _evaluate(store, kept, "smoke", "v-smoke", 4)  # again: replaced, not duplicated
    table = kept.read("scores_by_profile", checkpoint="prod").sort("profile")
    assert table.select("profile", "suite_code_version").rows() == [("full", "v-full"), ("smoke", "v-smoke")]
    assert kept.read("item_scores_by_profile", checkpoint="prod", profile="full").height == 9
    assert kept.read("item_scores_by_profile", checkpoint="prod", profile="smoke").height == 4
    with pytest.raises(ValueError, match="must all have profile 'full'"):
        kept.replace(
            "scores_by_profile", _summary("prod", "smoke", "v"), checkpoint="prod", suite="s", profile="full"
        )


def test_a_comparison_of_an_earlier_profile_still_finds_productions_scores(tmp_path: Path) -> None:
    kept = ProfileResults(tmp_path)
    store = ResultsStore(tmp_path)
    _evaluate(store, kept, "smoke", "v-smoke", 4)
    _evaluate(store, kept, "full", "v-full", 9)  # production re-evaluated on the grown profile
    scores = _production_scores(store, "s", "v-smoke", "prod", "sha256:p", kept, "smoke")
    assert scores.height == 4 and set(scores.columns) >= {"item_id", "score"}
    assert _production_scores(store, "s", "v-full", "prod", "sha256:p", kept, "full").height == 9
    with pytest.raises(ValueError, match="re-evaluate production"):
        _production_scores(store, "s", "v-smoke", "prod", "sha256:other", kept, "smoke")
    with pytest.raises(ValueError, match="not comparable"):
        _production_scores(store, "s", "v-template-2", "prod", "sha256:p", kept, "smoke")
