"""The shape of the Dagster graph, the inbox sensor and declarative automation, without running models."""

import json
from pathlib import Path

import dagster as dg
import pytest

from eval_assets.definitions import build_definitions, defs
from eval_assets.defs.partitions import checkpoints
from eval_assets.defs.sensors import checkpoint_inbox
from resources.evalgate import EvalgateHome

SNAPSHOT = Path(__file__).parent / "definitions_snapshot.json"


def graph_shape(definitions: dg.Definitions) -> dict[str, object]:
    graph = definitions.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    return {
        "assets": {
            key.to_user_string(): {
                "deps": sorted(p.to_user_string() for p in graph.get(key).parent_keys),
                "partitions": getattr(graph.get(key).partitions_def, "name", None),
                "automation": graph.get(key).automation_condition.get_label()
                if graph.get(key).automation_condition
                else None,
            }
            for key in keys
        },
        "checks": sorted(
            f"{c.asset_key.to_user_string()}:{c.name}:blocking={graph.get(c).blocking}"
            for c in graph.asset_check_keys
        ),
        "sensors": sorted(s.name for s in definitions.sensors or []),
        "resources": sorted(definitions.resources or {}),
    }


def test_graph_shape_matches_the_snapshot() -> None:
    """A renamed, dropped or rewired asset shows here. Regenerate deliberately with EVALGATE_UPDATE_SNAPSHOT=1."""
    import os

    shape = graph_shape(defs())
    if os.environ.get("EVALGATE_UPDATE_SNAPSHOT") or (
        not SNAPSHOT.exists() and os.environ.get("CI") != "true"
    ):
        SNAPSHOT.write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), (
        f"{SNAPSHOT} is missing: CI never writes it; regenerate with EVALGATE_UPDATE_SNAPSHOT=1"
    )
    assert shape == json.loads(SNAPSHOT.read_text())


def test_every_asset_is_partitioned_by_checkpoint_and_promotion_is_gated() -> None:
    shape = graph_shape(defs())
    assets = shape["assets"]
    assert isinstance(assets, dict)
    # production and the validations of the judge and the refusal classifier against humans are not per checkpoint
    unpartitioned = {"production", "judge_validation", "refusal_validation"}
    assert all(a["partitions"] == "checkpoints" for key, a in assets.items() if key not in unpartitioned)
    assert assets["production"]["partitions"] is None, "one production for all checkpoints"
    assert assets["promotion"]["automation"] == "gated"
    comparisons = sorted(k for k in assets if k.startswith("comparison/"))
    assert all("production" in assets[k]["deps"] for k in comparisons), "production is part of the lineage"
    assert assets["promotion"]["deps"] == sorted(
        [*comparisons, *(k for k in assets if k.startswith("scores/"))]
    )
    checks = shape["checks"]
    assert isinstance(checks, list)
    assert sorted(c for c in checks if ":no_regression_vs_production:" in c) == [
        f"{k}:no_regression_vs_production:blocking=True" for k in comparisons
    ]
    scores = [k for k in assets if k.startswith("scores/")]  # pairwise suites have scores but no comparison
    assert len([c for c in checks if ":error_rate_within_limit:blocking=False" in c]) == len(scores)
    judged = [c for c in checks if ":judge_win_rate_at_least_parity:" in c]  # the head-to-head suites
    assert len(judged) == len(scores) - len(comparisons) > 0


def test_every_definition_loads() -> None:
    loaded = defs()  # what Dagster loads: built from the configuration when called, not at import
    loaded.resolve_all_job_defs()
    assert loaded.resolve_implicit_global_asset_job_def() is not None


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir(parents=True)
    return tmp_path


def _tick(instance: dg.DagsterInstance, home: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"evalgate": EvalgateHome(home=str(home))}
    )
    result = checkpoint_inbox(context)
    assert isinstance(result, dg.SensorResult)
    return result


def test_inbox_sensor_registers_new_checkpoints_once(home: Path, tmp_path: Path) -> None:
    from weights_testing import tiny_gguf

    weights = tiny_gguf(tmp_path / "w.gguf")
    (home / "inbox" / "a.yaml").write_text(f"name: ckpt-a\npath: {weights}\n")
    (home / "inbox" / "bad.yaml").write_text("name: ckpt-b\nweights: nowhere\n")
    (home / "inbox" / "notes.txt").write_text("ignored")
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        requests = first.dynamic_partitions_requests or []
        assert [(r.partitions_def_name, list(r.partition_keys)) for r in requests] == [
            ("checkpoints", ["ckpt-a"])
        ]
        assert (home / "registry" / "ckpt-a.json").is_file()
        assert not (home / "registry" / "ckpt-b.json").exists(), "a malformed manifest registers nothing"
        instance.add_dynamic_partitions(checkpoints.name, ["ckpt-a"])
        second = _tick(instance, home, first.cursor)
        assert not second.dynamic_partitions_requests, "an unchanged inbox adds nothing"
        (home / "inbox" / "bad.yaml").write_text(f"name: ckpt-b\npath: {weights}\n")
        third = _tick(instance, home, second.cursor)
        assert [list(r.partition_keys) for r in third.dynamic_partitions_requests or []] == [["ckpt-b"]]


def test_inbox_sensor_refuses_a_name_taken_by_other_weights(home: Path, tmp_path: Path) -> None:
    from weights_testing import tiny_gguf

    for name, salt in (("one.gguf", "1"), ("two.gguf", "2")):
        tiny_gguf(tmp_path / name, salt)
    (home / "inbox" / "a.yaml").write_text(f"name: same\npath: {tmp_path / 'one.gguf'}\n")
    with dg.instance_for_test() as instance:
        cursor = _tick(instance, home, None).cursor
        (home / "inbox" / "b.yaml").write_text(f"name: same\npath: {tmp_path / 'two.gguf'}\n")
        result = _tick(instance, home, cursor)
        assert not result.dynamic_partitions_requests
        assert json.loads((home / "registry" / "same.json").read_text())["path"].endswith("one.gguf")


def test_automation_materializes_a_new_partition_once(tmp_path: Path) -> None:
    definitions = build_definitions(evalgate=EvalgateHome(home=str(tmp_path)))
    with dg.instance_for_test() as instance:
        empty = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        assert empty.total_requested == 0
        instance.add_dynamic_partitions(checkpoints.name, ["new-ckpt"])
        result = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=empty.cursor)
        assert result.get_num_requested(dg.AssetKey("checkpoint_manifest")) == 1
        for key in ("predictions/arc_easy", "scores/arc_easy", "comparison/arc_easy"):
            assert result.get_num_requested(dg.AssetKey.from_user_string(key)) == 1, key
        # the gate holds promotion until the blocking checks of this partition have passed
        assert result.get_num_requested(dg.AssetKey("promotion")) == 0
        again = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=result.cursor)
        assert again.get_num_requested(dg.AssetKey("checkpoint_manifest")) == 0, (
            "handled partitions are not re-requested"
        )
