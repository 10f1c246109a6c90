"""The whole graph materialized in-process on real checkpoints (the SmolLM2 baseline and a damaged copy), and
every way of getting a checkpoint promoted without current evidence against the current production."""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from evalgate_testing import tiny_policy, tiny_specs

from eval_assets.definitions import build_definitions
from eval_assets.defs.promotion import report_production_move
from eval_assets.instance import evaluate_partition, register_checkpoint
from eval_assets.paths import HomeLayout
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings
from resources.results_store import ResultsStore

pytestmark = pytest.mark.slow

SPECS = {"arc": 60, "gsm8k": 2, "mmlu": 2}
SUITES = ("arc_easy", "gsm8k", "mmlu")


def _metadata(instance: dg.DagsterInstance, key: list[str], partition: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {k: v.value for k, v in materialization.metadata.items()}


def _promotion_alone(defs: dg.Definitions, instance: dg.DagsterInstance, partition: str) -> dict[str, Any]:
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key=partition, instance=instance, asset_selection=[dg.AssetKey("promotion")]
    )
    assert result.success
    value: dict[str, Any] = result.output_for_node("promotion")
    return value


def _definitions(home: HomeLayout, **kwargs: Any) -> dg.Definitions:
    return build_definitions(
        specs=kwargs.pop("specs", None) or tiny_specs(**SPECS),
        evalgate=EvalgateHome(home=str(home.root)),
        suite_settings=SuiteSettings(profile="smoke"),
        model_runner=ModelRunner(batch_size=8),
        policy=kwargs.pop("policy", None) or tiny_policy(),
        **kwargs,
    )


@pytest.fixture(scope="module")
def flow(
    tmp_path_factory: pytest.TempPathFactory, baseline_gguf: Path, damaged_checkpoint: Path, model_cache: Path
) -> dict[str, Any]:
    """Register the baseline, a copy of it ("early") and the damaged checkpoint; evaluate the baseline and the
    copy before any production exists; make the baseline production; evaluate the damaged copy."""
    home = HomeLayout(tmp_path_factory.mktemp("home"))
    # the converted baseline is shared with other tests through the session model cache
    home.root.mkdir(exist_ok=True)
    home.model_cache.symlink_to(model_cache, target_is_directory=True)
    instance = dg.DagsterInstance.ephemeral()
    defs = _definitions(home)
    register_checkpoint(instance, home.registry, baseline_gguf, name="base")
    register_checkpoint(instance, home.registry, baseline_gguf, name="early")
    register_checkpoint(instance, home.registry, damaged_checkpoint, name="damaged")
    first_base = evaluate_partition(defs, instance, "base", log_level="WARNING")
    early = evaluate_partition(defs, instance, "early", log_level="WARNING")
    ledger = EvalgateHome(home=str(home.root)).ledger()
    policy = tiny_policy()
    manifest = EvalgateHome(home=str(home.root)).registry().get("base")
    moved = ledger.move(
        checkpoint="base", model_hash=manifest.model_hash, expected_predecessor=None, authority_kind="baseline",
        authority="test", actor="test", reason="test baseline", policy_version=policy.version,
        policy_hash=policy.policy_hash, run_id="test",
    )  # fmt: skip
    report_production_move(instance, moved)
    damaged = evaluate_partition(defs, instance, "damaged", log_level="WARNING")
    return {
        "home": home, "instance": instance, "defs": defs, "first_base": first_base, "early": early,
        "damaged": damaged, "ledger": ledger,
    }  # fmt: skip


def _production(flow: dict[str, Any]) -> str:
    head = flow["ledger"].head()
    assert head is not None
    return str(head.checkpoint)


def test_baseline_run_succeeds_and_awaits_explicit_baseline(flow: dict[str, Any]) -> None:
    assert flow["first_base"].success and flow["early"].success
    decisions = ResultsStore(flow["home"].tables).read("gate_decisions", checkpoint="base")
    promotion = decisions.filter(pl.col("rule") == "promotion")
    assert promotion["outcome"].to_list() == ["awaiting_baseline"]
    assert set(decisions["policy_hash"].drop_nulls()) == {tiny_policy().policy_hash}


def test_damaged_checkpoint_is_blocked_with_numbers(flow: dict[str, Any]) -> None:
    result: dg.ExecuteInProcessResult = flow["damaged"]
    assert not result.success
    checks = {
        e.asset_check_key.asset_key.path[-1]: e
        for e in result.get_asset_check_evaluations()  # type: ignore[attr-defined]
        if e.asset_check_key.name == "no_regression_vs_production"
    }
    arc = checks["arc_easy"]
    assert not arc.passed and arc.severity == dg.AssetCheckSeverity.ERROR
    assert arc.metadata["ci_high"].value < -0.01
    assert arc.metadata["production"].value == "base"
    assert "how_it_decides" in arc.metadata and "policy_hash" in arc.metadata
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["comparison", "arc_easy"]) in materialized
    assert dg.AssetKey("promotion") not in materialized, "a failed blocking check stops promotion in its run"
    assert _production(flow) == "base"
    decisions = ResultsStore(flow["home"].tables).read("gate_decisions", checkpoint="damaged")
    arc_row = decisions.filter(
        (pl.col("suite") == "arc_easy") & (pl.col("rule") == "no_regression_vs_production")
    ).row(0, named=True)
    assert arc_row["outcome"] == "fail" and arc_row["blocking"]
    assert arc_row["n"] == 60 and arc_row["threshold"] == pytest.approx(-0.01)
    assert arc_row["ci_high"] < -0.01 and "regression beyond" in arc_row["reason"]
    assert arc_row["production"] == "base" and arc_row["policy_hash"] == tiny_policy().policy_hash


def test_promotion_run_alone_still_refuses(flow: dict[str, Any]) -> None:
    """Automation can run promotion alone in a later run; it must re-read the failed check itself."""
    outcome = _promotion_alone(flow["defs"], flow["instance"], "damaged")
    assert outcome["outcome"] == "blocked"
    assert "arc_easy" in outcome["reason"]
    assert _production(flow) == "base"


def test_a_checkpoint_compared_before_the_baseline_is_not_promoted_over_it(flow: dict[str, Any]) -> None:
    """Hole 1: `early` was evaluated while there was no production (its checks said `no_production` and
    passed); after the baseline, promotion run alone must not promote it without a comparison against base."""
    outcome = _promotion_alone(flow["defs"], flow["instance"], "early")
    assert outcome["outcome"] == "blocked"
    assert "compared against no production, but production is base" in outcome["reason"]
    assert _production(flow) == "base"


def test_a_policy_changed_without_a_new_version_is_refused(
    flow: dict[str, Any], damaged_checkpoint: Path
) -> None:
    """Hole 6: the margin edited, `version` left alone: the check refuses instead of deciding differently."""
    policy = tiny_policy()
    section = policy.section("no_regression_vs_production").model_copy(update={"margin": 0.2})
    edited = policy.model_copy(update={"rules": policy.rules | {"no_regression_vs_production": section}})
    assert edited.version == policy.version and edited.policy_hash != policy.policy_hash
    defs = _definitions(flow["home"], policy=edited)
    # a copy of the damaged weights (every prediction cached), so that `damaged` keeps its evidence
    register_checkpoint(flow["instance"], flow["home"].registry, damaged_checkpoint, name="damaged-copy")
    result = evaluate_partition(defs, flow["instance"], "damaged-copy", log_level="CRITICAL")
    assert not result.success
    errors = [e for e in result.all_events if e.is_step_failure]
    messages = " ".join(e.event_specific_data.error.to_string() for e in errors)  # type: ignore[union-attr]
    assert "changed without a new version" in messages
    assert _production(flow) == "base"
    # the errored check executions are the latest: an older evaluation must not stand in for them
    outcome = _promotion_alone(flow["defs"], flow["instance"], "damaged-copy")
    assert outcome["outcome"] == "blocked" and "no completed result" in outcome["reason"]


def test_a_check_under_an_older_code_version_does_not_count(flow: dict[str, Any]) -> None:
    """Hole 6: the arc_easy template changed; promotion run alone must not reuse the old verdicts."""
    specs = tiny_specs(**SPECS)
    arc = specs["arc_easy"]
    specs["arc_easy"] = arc.model_copy(update={"template": arc.template.model_copy(update={"version": 99})})
    outcome = _promotion_alone(_definitions(flow["home"], specs=specs), flow["instance"], "early")
    assert outcome["outcome"] == "blocked" and "code version" in outcome["reason"]


def test_an_inconclusive_gate_grows_the_sample_in_planned_stages(
    flow: dict[str, Any], baseline_gguf: Path
) -> None:
    """With growth on, a comparison that 60 ARC-Easy items cannot decide is re-decided at 80 and 100 items of
    the same prefix-stable selection (group-sequential, alpha spent per look). Production's 40 extra items are
    evaluated once; the candidate (the same weights under another name) reuses them from the cache. Still
    undecided at the final look, the suite's policy (`inconclusive: block`) blocks."""
    policy = tiny_policy()
    regression = policy.section("no_regression_vs_production")
    strict = regression.model_copy(
        update={
            "suites": {
                "arc_easy": regression.for_suite("arc_easy").model_copy(update={"inconclusive": "block"})
            }
        }
    )
    grown_policy = policy.model_copy(
        update={
            "version": policy.version + 1,  # new thresholds, new version: the gate refuses otherwise
            "sequential": policy.sequential.model_copy(update={"stages": (80,), "max_items": 100}),
            "rules": policy.rules | {"no_regression_vs_production": strict},
        }
    )
    defs = build_definitions(
        specs=tiny_specs(arc=SPECS["arc"], gsm8k=0, mmlu=0), policy=grown_policy,
        evalgate=EvalgateHome(home=str(flow["home"].root)),
        suite_settings=SuiteSettings(profile="smoke", grow=True), model_runner=ModelRunner(batch_size=8),
    )  # fmt: skip
    register_checkpoint(flow["instance"], flow["home"].registry, baseline_gguf, name="base-grown")
    result = evaluate_partition(defs, flow["instance"], "base-grown", log_level="WARNING")
    errors = [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]  # type: ignore[union-attr]
    assert errors and all("DagsterAssetCheckFailedError" in error for error in errors), errors
    store = ResultsStore(flow["home"].tables)
    row = store.read("comparisons", checkpoint="base-grown", suite="arc_easy").row(0, named=True)
    assert row["production"] == _production(flow) == "base"
    assert row["looks"] == "60: continue, 80: continue, 100: inconclusive"
    assert row["n"] == 100 and row["regressions"] == row["improvements"] == 0
    assert "group-sequential look 3/3" in row["method"] and "O'Brien-Fleming" in row["design"]
    verdict = store.read("gate_decisions", checkpoint="base-grown").filter(
        pl.col("rule") == "no_regression_vs_production"
    )
    assert verdict.select("outcome", "blocking").rows() == [("inconclusive", True)]
    assert "final look" in verdict["reason"][0] and "items would give" in verdict["reason"][0]
    assert _production(flow) == "base"


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
    scores = (
        store.read("scores")
        .filter(pl.col("checkpoint").is_in(["base", "damaged"]))
        .sort(["checkpoint", "suite"])
    )
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
    assert comparison["production_model_hash"] == flow["ledger"].head().model_hash


def test_a_candidate_without_regression_is_promoted(flow: dict[str, Any], baseline_gguf: Path) -> None:
    """The same weights under a new name: every prediction is a cache hit, nothing regresses, the gate passes
    (inconclusive suites warn without blocking) and production moves, with its predecessor and authority."""
    register_checkpoint(flow["instance"], flow["home"].registry, baseline_gguf, name="base-rerelease")
    result = evaluate_partition(flow["defs"], flow["instance"], "base-rerelease", log_level="WARNING")
    assert result.success
    assert _metadata(flow["instance"], ["predictions", "arc_easy"], "base-rerelease")["model_calls"] == 0
    assert result.output_for_node("promotion")["outcome"] == "promoted"
    head = flow["ledger"].head()
    assert head.checkpoint == "base-rerelease" and head.predecessor == "base"
    assert head.authority_kind == "gate" and result.run_id in head.authority
    decisions = ResultsStore(flow["home"].tables).read("gate_decisions", checkpoint="base-rerelease")
    outcomes = set(decisions.filter(pl.col("rule") == "no_regression_vs_production")["outcome"])
    assert outcomes <= {"pass", "inconclusive"}


def test_after_production_moves_older_comparisons_are_stale_and_automation_reruns_only_them(
    flow: dict[str, Any], baseline_gguf: Path
) -> None:
    """Production moved to base-rerelease: damaged's evidence against base is stale, and promotion alone refuses
    it. When production moves again, automation requests exactly the other checkpoints' comparisons, nothing
    upstream of them."""
    assert _production(flow) == "base-rerelease"
    outcome = _promotion_alone(flow["defs"], flow["instance"], "damaged")
    assert outcome["outcome"] == "blocked"
    assert (
        "compared against base" in outcome["reason"]
        and "production is now base-rerelease" in outcome["reason"]
    )

    instance = flow["instance"]
    before = dg.evaluate_automation_conditions(defs=flow["defs"], instance=instance)
    quiet = dg.evaluate_automation_conditions(defs=flow["defs"], instance=instance, cursor=before.cursor)
    assert not quiet.get_requested_partitions(dg.AssetKey(["comparison", "arc_easy"])), "nothing moved yet"
    register_checkpoint(instance, flow["home"].registry, baseline_gguf, name="base-third")
    third = evaluate_partition(flow["defs"], instance, "base-third", log_level="WARNING")
    assert third.output_for_node("promotion")["outcome"] == "promoted"
    after = dg.evaluate_automation_conditions(defs=flow["defs"], instance=instance, cursor=quiet.cursor)
    for suite in SUITES:
        requested = after.get_requested_partitions(dg.AssetKey(["comparison", suite]))
        assert {"damaged", "early", "base", "base-rerelease", "damaged-copy"} <= requested, (suite, requested)
        for upstream in ("predictions", "scores"):
            assert not after.get_requested_partitions(dg.AssetKey([upstream, suite])), (upstream, suite)
    assert not after.get_requested_partitions(dg.AssetKey("checkpoint_manifest"))


def test_a_committed_override_lifts_only_the_rule_it_names(flow: dict[str, Any], tmp_path: Path) -> None:
    """The damaged copy, blocked by the regression rule: a record for other weights is refused; a committed
    record for its weights promotes it through the gate, with the record as the move's authority."""
    import subprocess
    from datetime import date, timedelta

    from eval_assets.overrides import OverrideRecord, write_override

    instance, home = flow["instance"], flow["home"]
    repo = tmp_path / "repo"
    repo.mkdir()
    defs = build_definitions(
        specs=tiny_specs(**SPECS), evalgate=EvalgateHome(home=str(home.root), overrides_dir=str(repo / "overrides")),
        suite_settings=SuiteSettings(profile="smoke"), model_runner=ModelRunner(batch_size=8), policy=tiny_policy(),
    )  # fmt: skip
    rerun = evaluate_partition(
        defs, instance, "damaged", log_level="CRITICAL"
    )  # re-compared against base-third
    assert not rerun.success
    damaged_hash = EvalgateHome(home=str(home.root)).registry().get("damaged").model_hash
    record = OverrideRecord(
        checkpoint="damaged", model_hash="sha256:" + "0" * 64, rules=("no_regression_vs_production",),
        justification="testing that the gate reads the record", pull_request="https://git.example.com/e/pull/1",
        approver="erin", expires=date.today() + timedelta(days=3),
    )  # fmt: skip
    file = write_override(repo / "overrides", record)
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "o"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    refused = _promotion_alone(defs, instance, "damaged")
    assert refused["outcome"] == "blocked" and "is not damaged's weights" in refused["reason"]

    def commit(text: str) -> None:
        file.write_text(text)
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qam", "e"],
            check=True,
        )

    commit(file.read_text().replace("sha256:" + "0" * 64, damaged_hash))
    promoted = _promotion_alone(defs, instance, "damaged")
    assert promoted["outcome"] == "promoted", promoted["reason"]
    head = flow["ledger"].head()
    assert head.checkpoint == "damaged" and head.authority_kind == "override"
    assert str(file) in head.authority and "commit " in head.authority
