"""Two evaluations of one home at once, as two `evalgate evaluate` processes would run them: every table ends
with exactly its rows, the cache with one row per key, and both agree on every output."""

import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import dagster as dg
    from evalgate_testing import tiny_policy, tiny_specs
    from eval_assets.definitions import build_definitions
    from eval_assets.instance import evaluate_partition
    from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

    defs = build_definitions(
        specs=tiny_specs(arc=8, gsm8k=2, mmlu=0, max_new_tokens=12), policy=tiny_policy(),
        evalgate=EvalgateHome(home={home!r}), suite_settings=SuiteSettings(profile="smoke"),
        model_runner=ModelRunner(batch_size=4),
    )
    result = evaluate_partition(defs, dg.DagsterInstance.get(), sys.argv[1], log_level="ERROR")
    sys.exit(0 if result.success else 1)
    """
)


def test_two_concurrent_evaluations_on_one_home_lose_and_duplicate_nothing(
    tmp_path: Path, baseline_gguf: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from eval_assets.instance import open_instance, register_checkpoint
    from eval_assets.paths import HomeLayout

    layout = HomeLayout(tmp_path / "home")
    layout.root.mkdir()
    layout.model_cache.symlink_to(model_cache, target_is_directory=True)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("EVALGATE_HOME", str(layout.root))
    instance = open_instance(layout)  # create the SQLite storage once, before two processes open it
    for name in ("first", "second"):  # the same weights under two names: both runs compute the same keys
        register_checkpoint(instance, layout.registry, baseline_gguf, name=name)
    script = tmp_path / "evaluate.py"
    script.write_text(SCRIPT.format(tests=str(REPO / "tests"), home=str(layout.root)))
    env = {"PYTHONPATH": str(REPO), "DAGSTER_HOME": str(layout.dagster_home)}
    runs = [
        subprocess.Popen(
            [sys.executable, str(script), name], env=dict(__import__("os").environ) | env, cwd=tmp_path
        )
        for name in ("first", "second")
    ]
    assert [run.wait(timeout=900) for run in runs] == [0, 0]

    cache = pl.read_delta(str(layout.tables / "prediction_cache"))
    keys = ["model_identity", "prompt_hash", "sampling_hash"]
    assert cache.height == cache.select(keys).unique().height == 10, "one row per key (8 ARC + 2 GSM8K items)"
    predictions = pl.read_delta(str(layout.tables / "predictions"))
    by_name = {
        name: predictions.filter(pl.col("checkpoint") == name).sort(["suite", "item_id"])
        for name in ("first", "second")
    }
    assert by_name["first"].height == by_name["second"].height == 10, "no lost or duplicated rows"
    assert by_name["first"]["output"].to_list() == by_name["second"]["output"].to_list(), (
        "one key, one output"
    )
    served = dict(zip(cache["prompt_hash"].to_list(), cache["output"].to_list(), strict=True))
    assert all(served[h] == o for h, o in by_name["first"].select("prompt_hash", "output").iter_rows())
    with dg.DagsterInstance.from_config(str(layout.dagster_home)) as check:
        assert sorted(check.get_dynamic_partitions("checkpoints")) == ["first", "second"]
