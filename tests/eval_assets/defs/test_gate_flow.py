"""The whole graph materialized in-process on real checkpoints: the SmolLM2 baseline and a damaged copy."""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from evalgate_testing import tiny_specs

from eval_assets.definitions import build_definitions
from eval_assets.instance import evaluate_partition, register_checkpoint
from eval_assets.paths import HomeLayout
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings
from resources.results_store import ProductionPointer, ResultsStore

pytestmark = pytest.mark.slow


def _metadata(instance: dg.DagsterInstance, key: list[str], partition: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.fixture(scope="module")
def flow(
    tmp_path_factory: pytest.TempPathFactory, baseline_gguf: Path, damaged_checkpoint: Path, model_cache: Path
) -> dict[str, Any]:
    """Register both checkpoints, evaluate the baseline, make it production, evaluate the damaged copy."""
    home = HomeLayout(tmp_path_factory.mktemp("home"))
    # the converted baseline is shared with other tests through the session model cache
    home.root.mkdir(exist_ok=True)
    home.model_cache.symlink_to(model_cache, target_is_directory=True)
    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions(
        specs=tiny_specs(arc=60, gsm8k=2, mmlu=2),
        evalgate=EvalgateHome(home=str(home.root)),
        suite_settings=SuiteSettings(profile="smoke"),
        model_runner=ModelRunner(batch_size=8),
    )
    register_checkpoint(instance, home.registry, baseline_gguf, name="base")
    register_checkpoint(instance, home.registry, damaged_checkpoint, name="damaged")
    first_base = evaluate_partition(defs, instance, "base", log_level="WARNING")
    ProductionPointer(home.production_pointer).set("base", "sha256:-", reason="test baseline")
    damaged = evaluate_partition(defs, instance, "damaged", log_level="WARNING")
    return {"home": home, "instance": instance, "defs": defs, "first_base": first_base, "damaged": damaged}


def test_baseline_run_succeeds_and_awaits_explicit_baseline(flow: dict[str, Any]) -> None:
    assert flow["first_base"].success
    decisions = ResultsStore(flow["home"].tables).read("gate_decisions", checkpoint="base")
    promotion = decisions.filter(pl.col("rule") == "promotion")
    assert promotion["outcome"].to_list() == ["awaiting_baseline"]


def test_damaged_checkpoint_is_blocked_with_numbers(flow: dict[str, Any]) -> None:
    result: dg.ExecuteInProcessResult = flow["damaged"]
    assert not result.success
    checks = {
        e.asset_check_key.asset_key.path[-1]: e
        for e in result.get_asset_check_evaluations()  # type: ignore[attr-defined]
    }
    arc = checks["arc_easy"]
    assert not arc.passed and arc.severity == dg.AssetCheckSeverity.ERROR
    assert arc.metadata["ci_high"].value < -0.01
    assert "how_the_ci_is_used" in arc.metadata
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["comparison", "arc_easy"]) in materialized
    assert dg.AssetKey("promotion") not in materialized, "a failed blocking check stops promotion in its run"
    assert ProductionPointer(flow["home"].production_pointer).get()["checkpoint"] == "base"  # type: ignore[index]
    decisions = ResultsStore(flow["home"].tables).read("gate_decisions", checkpoint="damaged")
    arc_row = decisions.filter(pl.col("suite") == "arc_easy").row(0, named=True)
    assert arc_row["outcome"] == "fail" and arc_row["blocking"]
    assert arc_row["n"] == 60 and arc_row["threshold"] == pytest.approx(-0.01)
    assert arc_row["ci_high"] < -0.01 and "regression beyond" in arc_row["reason"]


def test_promotion_run_alone_still_refuses(flow: dict[str, Any]) -> None:
    """Automation can run promotion alone in a later run; it must re-read the failed check itself."""
    job = flow["defs"].resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key="damaged", instance=flow["instance"], asset_selection=[dg.AssetKey("promotion")]
    )
    assert result.success
    outcome = result.output_for_node("promotion")
    assert outcome["outcome"] == "blocked"
    assert "arc_easy" in outcome["reason"]
    assert ProductionPointer(flow["home"].production_pointer).get()["checkpoint"] == "base"  # type: ignore[index]


def test_reevaluating_an_unchanged_checkpoint_makes_no_model_calls(flow: dict[str, Any]) -> None:
    instance = flow["instance"]
    first = {s: _metadata(instance, ["predictions", s], "base") for s in ("arc_easy", "gsm8k", "mmlu")}
    assert all(m["model_calls"] > 0 for m in first.values())
    again = evaluate_partition(flow["defs"], instance, "base", log_level="WARNING")
    assert again.success
    for suite in ("arc_easy", "gsm8k", "mmlu"):
        meta = _metadata(instance, ["predictions", suite], "base")
        assert meta["model_calls"] == 0, suite
        assert meta["cache_hits"] == first[suite]["items"]
        assert "run_manifest" in meta and meta["run_manifest"]["packages"]["dagster"]


def test_results_tables_are_queryable(flow: dict[str, Any]) -> None:
    store = ResultsStore(flow["home"].tables)
    scores = store.read("scores").sort(["checkpoint", "suite"])
    assert scores.select("checkpoint", "suite").rows() == [
        ("base", "arc_easy"), ("base", "gsm8k"), ("base", "mmlu"),
        ("damaged", "arc_easy"), ("damaged", "gsm8k"), ("damaged", "mmlu"),
    ]  # fmt: skip
    base_arc = scores.filter((pl.col("checkpoint") == "base") & (pl.col("suite") == "arc_easy")).row(
        0, named=True
    )
    assert base_arc["ci_low"] <= base_arc["score"] <= base_arc["ci_high"] and base_arc["n"] == 60
    assert store.read("item_scores", checkpoint="damaged", suite="arc_easy").height == 60
    assert store.read("predictions", checkpoint="base", suite="gsm8k").height == 2
    comparison = store.read("comparisons", checkpoint="damaged", suite="arc_easy").row(0, named=True)
    assert comparison["production"] == "base" and comparison["difference"] < 0


def test_a_candidate_without_regression_is_promoted(flow: dict[str, Any], baseline_gguf: Path) -> None:
    """The same weights under a new name: every prediction is a cache hit, nothing regresses, the gate passes
    (inconclusive suites warn without blocking) and the production pointer moves."""
    register_checkpoint(flow["instance"], flow["home"].registry, baseline_gguf, name="base-rerelease")
    result = evaluate_partition(flow["defs"], flow["instance"], "base-rerelease", log_level="WARNING")
    assert result.success
    assert _metadata(flow["instance"], ["predictions", "arc_easy"], "base-rerelease")["model_calls"] == 0
    assert result.output_for_node("promotion")["outcome"] == "promoted"
    pointer = ProductionPointer(flow["home"].production_pointer).get()
    assert pointer is not None and pointer["checkpoint"] == "base-rerelease" and pointer["previous"] == "base"
    decisions = ResultsStore(flow["home"].tables).read("gate_decisions", checkpoint="base-rerelease")
    assert set(decisions.filter(pl.col("rule") == "no_regression_vs_production")["outcome"]) <= {"pass", "inconclusive"}
