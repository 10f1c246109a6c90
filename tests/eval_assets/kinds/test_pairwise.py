"""The pairwise kind end to end through Dagster in-process on the real models: SmolLM2 answers (cached
predictions), the embedded Gemma judge in both orders, production's answers reused, verdicts cached, the gate
saying plainly that the judge is not validated; and the refusal of a judge that would judge itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from eval_assets.definitions import build_definitions
from eval_assets.instance import evaluate_partition, register_checkpoint
from eval_assets.judge import JudgeIdentity, JudgeNotIndependentError, check_independence
from eval_assets.paths import HomeLayout
from eval_assets.suites.spec import load_suite_spec
from resources.evalgate import EvalgateHome, SuiteSettings
from resources.judge import JudgeResource
from resources.results_store import ResultsStore

pytestmark = pytest.mark.slow

SPEC = """
name: tiny_pairwise
version: 1
description: "two prompts"
kind: pairwise
loader: file
metric: win_rate
scorer_version: 1
template: {version: 1, chat: true, format: "{question}"}
sampling: {temperature: 0.0, max_new_tokens: 12, stop: ["<|im_end|>"], seed: 0}
data:
  file: {path: tiny.jsonl, sha256: "SHA"}
  fields: {id: id, question: prompt, category: category, reference: reference}
profiles:
  smoke: {}
  full: {}
"""
ROWS = [
    {
        "id": "capital",
        "category": "factual",
        "prompt": "What is the capital of France?",
        "reference": "Paris.",
    },
    {"id": "sum", "category": "math", "prompt": "What is 2 + 3?", "reference": "2 + 3 = 5."},
]


def _ok(result: dg.ExecuteInProcessResult) -> None:
    failures = [str(e.step_failure_data.error.message) for e in result.all_events if e.is_step_failure]  # type: ignore[union-attr]
    assert result.success, failures


def _metadata(instance: dg.DagsterInstance, key: list[str], partition: str) -> dict[str, Any]:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1
    ).records[0]
    assert record.asset_materialization is not None
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def _decision(store: ResultsStore, rule: str, checkpoint: str) -> dict[str, Any]:
    """The latest gate decision of ``rule`` on the suite for ``checkpoint`` (what the check recorded)."""
    rows = store.read("gate_decisions", checkpoint=checkpoint).filter(
        (pl.col("rule") == rule) & (pl.col("suite") == "tiny_pairwise")
    )
    assert rows.height, f"no {rule} decision for {checkpoint}"
    return rows.row(rows.height - 1, named=True)


def test_candidate_judged_against_production_in_both_orders(
    tmp_path: Path, baseline_gguf: Path, model_cache: Path
) -> None:
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    digest = hashlib.sha256((tmp_path / "tiny.jsonl").read_bytes()).hexdigest()
    (tmp_path / "tiny_pairwise.yaml").write_text(SPEC.replace("SHA", digest))
    spec = load_suite_spec(tmp_path / "tiny_pairwise.yaml")
    home = HomeLayout(tmp_path / "home")
    home.root.mkdir()
    home.model_cache.symlink_to(model_cache, target_is_directory=True)
    defs = build_definitions(
        specs={spec.name: spec}, evalgate=EvalgateHome(home=str(home.root)),
        suite_settings=SuiteSettings(profile="smoke"), resources={"judge": JudgeResource()},
    )  # fmt: skip
    graph = defs.resolve_asset_graph()
    assert (
        dg.AssetKey(["comparison", "tiny_pairwise"]) not in graph.get_all_asset_keys()
    )  # head to head already
    store = ResultsStore(home.tables)
    with dg.instance_for_test() as instance:
        register_checkpoint(instance, home.registry, baseline_gguf, name="base")
        register_checkpoint(instance, home.registry, baseline_gguf, name="cand")
        # before any production: the opponent is the reference answers
        _ok(evaluate_partition(defs, instance, "base", log_level="WARNING"))
        first = store.read("judge_verdicts", checkpoint="base", suite="tiny_pairwise")
        assert first.height == 4 and sorted(first["order"].to_list()) == ["ab", "ab", "ba", "ba"]
        assert set(first["opponent"]) == {"reference"} and set(first["judge_id"]) == {
            "embedded:gemma-3-270m-q4_k_m"
        }
        assert set(first["verdict"]) <= {"candidate", "opponent", "tie"}  # the likelihood judge always parses
        assert first["rationale"].str.contains("log-probabilities").all()
        assert (first["input_tokens"] > 100).all() and (first["cost_usd"] == 0).all()
        assert _decision(store, "judge_win_rate", "base")["outcome"] == "no_production"

        home_resource = EvalgateHome(home=str(home.root))
        manifest = home_resource.registry().get("base")
        from eval_assets.gate import load_gate_policy

        policy = load_gate_policy()
        home_resource.ledger().move(
            checkpoint="base", model_hash=manifest.model_hash, expected_predecessor=None, authority_kind="baseline",
            authority="test", actor="test", reason="test baseline", policy_version=policy.version,
            policy_hash=policy.policy_hash, run_id="test",
        )  # fmt: skip
        # the candidate against production: production's cached answers, judged in both orders
        _ok(evaluate_partition(defs, instance, "cand", log_level="WARNING"))
        verdicts = store.read("judge_verdicts", checkpoint="cand", suite="tiny_pairwise")
        assert verdicts.height == 4 and set(verdicts["opponent"]) == {"base"}
        base_answers = store.read("predictions", checkpoint="base", suite="tiny_pairwise")
        assert (
            _metadata(instance, ["predictions", "tiny_pairwise"], "cand")["model_calls"] == 0
        )  # same weights
        lengths = dict(zip(verdicts["item_id"], verdicts["opponent_length"], strict=False))
        for item, output in base_answers.select("item_id", "output").iter_rows():
            assert lengths[item] == len(json.loads(output)["text"].strip())
        scores = store.read("scores", checkpoint="cand", suite="tiny_pairwise").row(0, named=True)
        details = json.loads(scores["details"])
        assert scores["metric"] == "win_rate" and scores["n_total"] == 2 and scores["errors"] == 0
        assert details["production"] == "base" and details["judge_kappa"] is None
        assert {"position_consistency", "first_position_preference", "length_controlled_win_rate"} <= set(
            details
        )
        gate = _decision(store, "judge_win_rate", "cand")
        assert gate["outcome"] == "inconclusive" and not gate["blocking"]  # warn: unvalidated does not decide
        assert "judge not validated (kappa = none on record" in gate["reason"]
        assert _decision(store, "error_rate", "cand")["outcome"] == "pass"

        # again: every verdict comes from the judge cache
        _ok(evaluate_partition(defs, instance, "cand", log_level="WARNING"))
        again = _metadata(instance, ["judge_verdicts", "tiny_pairwise"], "cand")
        assert again["cached"] == 4 and again["judgements"] == 4


def test_a_judge_with_a_sides_weights_is_refused_and_a_shared_family_flagged() -> None:
    judge = JudgeIdentity("embedded:smollm2-135m", "1", "sha256:abc", "smollm")
    with pytest.raises(JudgeNotIndependentError, match=r"same weights .* as the production base"):
        check_independence(
            judge, sides={"candidate": ("cand", "sha256:def"), "production": ("base", "sha256:abc")}
        )
    flagged = check_independence(judge, sides={"candidate": ("smollm2-135m-damaged", "sha256:def")})
    assert flagged.self_preference_risk and "smollm" in flagged.note
    other = check_independence(JudgeIdentity("embedded:gemma", "1", "sha256:g", "gemma"),
                               sides={"candidate": ("smollm2-135m-damaged", "sha256:def")})  # fmt: skip
    assert not other.self_preference_risk
