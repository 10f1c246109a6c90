"""Code suites through the graph on the real model: completions → sandboxed executions → pass@k."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from evalgate_testing import tiny_specs

from eval_assets.definitions import build_definitions
from eval_assets.instance import evaluate_partition, register_checkpoint
from eval_assets.paths import HomeLayout
from resources.evalgate import CodeSandbox, EvalgateHome, SuiteSettings
from resources.results_store import ResultsStore

pytestmark = pytest.mark.slow


def _latest(instance: dg.DagsterInstance, key: list[str]) -> dict[str, object]:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=["base"]), limit=1
    ).records[0]
    assert record.asset_materialization is not None
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_code_suites_execute_in_the_sandbox_and_cache(
    tmp_path: Path, baseline_gguf: Path, model_cache: Path
) -> None:
    home = HomeLayout(tmp_path / "home")
    home.root.mkdir()
    home.model_cache.symlink_to(model_cache, target_is_directory=True)
    defs = build_definitions(
        specs=tiny_specs(arc=0, gsm8k=0, humaneval=2, mbpp=1, max_new_tokens=48),
        evalgate=EvalgateHome(home=str(home.root)),
        suite_settings=SuiteSettings(profile="smoke"),
        code_sandbox=CodeSandbox(workers=2),
    )
    with dg.instance_for_test() as instance:
        register_checkpoint(instance, home.registry, baseline_gguf, name="base")
        assert evaluate_partition(defs, instance, "base", log_level="WARNING").success
        store = ResultsStore(home.tables)
        executions = store.read("code_executions", checkpoint="base", suite="humaneval")
        assert executions.height == 4, "2 problems x 2 samples"
        assert set(executions["sample_index"].to_list()) == {0, 1}
        assert set(executions["status"].to_list()) <= {"passed", "failed", "timeout", "memory", "killed"}
        assert executions["sandbox"].str.starts_with("local").all()
        scores = store.read("scores", checkpoint="base", suite="humaneval").row(0, named=True)
        assert scores["metric"] == "pass@1" and scores["n"] == 2
        details = json.loads(scores["details"])
        assert "pass@1" in details and "needs 10 samples" in details["pass@10"]
        item_scores = store.read("item_scores", checkpoint="base", suite="humaneval")
        assert item_scores["score"].is_between(0.0, 1.0).all()
        assert scores["score"] == pytest.approx(item_scores["score"].mean())
        mbpp = store.read("code_executions", checkpoint="base", suite="mbpp")
        assert mbpp.height == 2 and mbpp.filter(pl.col("status") == "error").height == 0
        first = _latest(instance, ["code_executions", "humaneval"])
        assert first["executed"] == 4 - first["cached"]

        assert evaluate_partition(defs, instance, "base", log_level="WARNING").success
        again = _latest(instance, ["code_executions", "humaneval"])
        assert again["executed"] == 0 and again["cached"] == 4
        assert _latest(instance, ["predictions", "humaneval"])["model_calls"] == 0
