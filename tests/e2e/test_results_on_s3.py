"""A whole evaluation in process on the real model with every results table on a local S3-compatible server
(moto): predictions, scores, the prediction cache, the comparison against production and the gate's decisions
are written to the bucket and read back from it; nothing lands in the home's local tables folder."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from evalgate_testing import tiny_policy, tiny_specs
from s3_testing import s3_server

from eval_assets.definitions import build_definitions
from eval_assets.defs.promotion import report_production_move
from eval_assets.instance import evaluate_partition, register_checkpoint
from eval_assets.paths import HomeLayout
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

pytestmark = pytest.mark.slow


def _model_calls(instance: dg.DagsterInstance, partition: str) -> int:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["predictions", "arc_easy"]), asset_partitions=[partition]
        ),
        limit=1,
    ).records[0]
    assert record.asset_materialization is not None
    return int(record.asset_materialization.metadata["model_calls"].value)  # type: ignore[arg-type]


def test_an_evaluation_with_results_on_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline_gguf: Path, model_cache: Path
) -> None:
    home = HomeLayout(tmp_path / "home")
    home.root.mkdir()
    home.model_cache.symlink_to(model_cache, target_is_directory=True)
    with s3_server(monkeypatch, tmp_path) as s3:
        root = s3.bucket("evalgate-results") + "/team/tables"
        evalgate = EvalgateHome(home=str(home.root), results_uri=root, results_storage_options=s3.options)
        defs = build_definitions(
            specs=tiny_specs(arc=4, gsm8k=0),
            evalgate=evalgate,
            suite_settings=SuiteSettings(profile="smoke"),
            model_runner=ModelRunner(batch_size=4),
            policy=tiny_policy(),
        )
        instance = dg.DagsterInstance.ephemeral()
        register_checkpoint(instance, home.registry, baseline_gguf, name="base")
        register_checkpoint(instance, home.registry, baseline_gguf, name="rerelease")
        assert evaluate_partition(defs, instance, "base", log_level="WARNING").success
        policy = tiny_policy()
        moved = evalgate.ledger().move(
            checkpoint="base",
            model_hash=evalgate.registry().get("base").model_hash,
            expected_predecessor=None,
            authority_kind="baseline",
            authority="test",
            actor="test",
            reason="baseline",
            policy_version=policy.version,
            policy_hash=policy.policy_hash,
            run_id="test",
        )
        report_production_move(instance, moved)
        result = evaluate_partition(defs, instance, "rerelease", log_level="WARNING")
        assert result.success

        keys = s3.keys("evalgate-results", "team/tables/")
        for table in (
            "predictions",
            "item_scores",
            "scores",
            "comparisons",
            "gate_decisions",
            "prediction_cache",
        ):
            assert any(key.startswith(f"team/tables/{table}/_delta_log/") for key in keys), table
        for table in ("predictions", "scores", "comparisons", "gate_decisions", "prediction_cache"):
            assert not (home.tables / table).exists(), f"{table} was written to the local tables folder"
        results = evalgate.results()
        assert results.read("predictions", checkpoint="base", suite="arc_easy").height == 4
        comparison = results.read("comparisons", checkpoint="rerelease", suite="arc_easy")
        assert comparison.height == 1
        decisions = results.read("gate_decisions", checkpoint="rerelease")
        regression = decisions.filter(pl.col("rule") == "no_regression_vs_production").row(0, named=True)
        assert regression["production"] == "base" and regression["n"] == 4
        promotion = decisions.filter(pl.col("rule") == "promotion")["outcome"].to_list()
        assert len(promotion) == 1, "the gate's outcome is recorded on S3"
        head = evalgate.ledger().head()
        assert head is not None and head.checkpoint == ("rerelease" if promotion == ["promoted"] else "base")
        # the same weights under another name: every prediction served from the cache on S3
        assert _model_calls(instance, "rerelease") == 0
        commits = s3.log.commits("/evalgate-results/team/tables/")
        assert commits and all(c.if_none_match == "*" for c in commits)
