"""The HTML dashboard of a real evaluation, checked in headless Chromium.

Two checkpoints (SmolLM2 as production, its damaged copy) go through the real Dagster graph on tiny suites
(ARC-Easy 6 items, GSM8K 2): scores, comparisons, gate decisions, ``human_eval_sample`` and the ``dashboard``
asset come from that run. ``judge_verdicts`` and ``refusal_labels`` rows and the human labels are small
frames this test writes (no pairwise or red-team suite runs here). ``evalgate report --html DIR`` then writes
the pages; Chromium opens them from disk: titles, sections, plots present, no failed request, every number
cell equal to its table, a screenshot kept."""

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import write_deltalake
from e2e.chromium_support import chromium
from e2e.e2e_support import make_dagster_home
from evalgate_testing import tiny_policy, tiny_specs
from stage_tables_testing import judge_frame

from eval_assets.cli import main
from eval_assets.definitions import build_definitions
from eval_assets.human_eval import HumanEvalStore
from eval_assets.instance import evaluate_partition, register_checkpoint
from resources.evalgate import EvalgateHome, ModelRunner, SuiteSettings

pytestmark = pytest.mark.slow
#: 6 ARC-Easy items block the damaged copy (difference -0.667, CI [-0.86, -0.11]; greedy, seeded damage).
SPECS = {"arc": 6, "gsm8k": 2, "mmlu": 0, "max_new_tokens": 8}


@dataclass
class Evaluated:
    home: Path
    tables: Path
    html: Path
    dashboard_metadata: Mapping[str, object]


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory, baseline_gguf: Path, damaged_checkpoint: Path, model_cache: Path,
    data_root: Path,
) -> Iterator[Evaluated]:  # fmt: skip
    root = tmp_path_factory.mktemp("dashboard")
    home = root / "home"
    home.mkdir()
    (home / "model_cache").symlink_to(model_cache, target_is_directory=True)
    dagster_home = make_dagster_home(root / "dagster")
    specs, policy = tiny_specs(**SPECS), tiny_policy()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(dagster_home))
        env.setenv("EVALGATE_DATA_DIR", str(data_root))
        env.delenv("EVALGATE_HOME", raising=False)
        defs = build_definitions(
            specs=specs, policy=policy, evalgate=EvalgateHome(home=str(home)),
            suite_settings=SuiteSettings(profile="smoke"), model_runner=ModelRunner(batch_size=8),
        )  # fmt: skip
        preset = {"specs": specs, "gate_policy": policy}
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            register_checkpoint(instance, home / "registry", baseline_gguf, name="base")
            register_checkpoint(instance, home / "registry", damaged_checkpoint, name="damaged")
            assert evaluate_partition(defs, instance, "base", log_level="WARNING").success
            assert main(["--home", str(home), "promote", "--baseline", "base"], preset=preset) == 0
            result = evaluate_partition(defs, instance, "damaged", log_level="WARNING")
            materialized = [m for m in result.asset_materializations_for_node("dashboard")]
            metadata = {k: v.value for k, v in materialized[0].metadata.items()} if materialized else {}
        tables = home / "tables"
        _write_other_stages(tables)
        html = root / "html"
        code = main(["--home", str(home), "report", "--html", str(html)], preset=preset)
        assert code == 0
    yield Evaluated(home=home, tables=tables, html=html, dashboard_metadata=metadata)


def _write_other_stages(tables: Path) -> None:
    """What the judge and red-team stages would have written for ``damaged``, and two raters' labels on its
    real GSM8K sample."""
    judge = judge_frame("damaged", "chat", "base", [("candidate", "candidate"), ("opponent", "opponent"),
                                                     ("candidate", "opponent"), ("tie", "tie")])  # fmt: skip
    write_deltalake(str(tables / "judge_verdicts"), judge.to_arrow(), partition_by=["checkpoint"])
    refusal = pl.DataFrame([
        {"checkpoint": "damaged", "suite": "harmbench", "item_id": f"h{i}", "category": "chemical", "family": "f",
         "label": label, "classifier": "rubric"}
        for i, label in enumerate(["refusal", "compliance", "compliance", "partial"])
    ])  # fmt: skip
    write_deltalake(str(tables / "refusal_labels"), refusal.to_arrow(), partition_by=["checkpoint"])
    store = HumanEvalStore(tables)
    sample = store.read_sample("damaged")
    for rater, flip in (("ann", False), ("bob", True)):
        for n, row in enumerate(sample.iter_rows(named=True)):
            label = "correct" if (n % 2 == 0) != (flip and n == 0) else "incorrect"
            store.add_label(checkpoint="damaged", suite=row["suite"], item_id=row["item_id"], kind=row["kind"],
                            rater=rater, label=label, shown_order="", submit_key=f"{rater}-{row['item_id']}")  # fmt: skip


def test_the_assets_sample_people_items_and_link_the_report(evaluated: Evaluated) -> None:
    sample = HumanEvalStore(evaluated.tables).read_sample()
    assert set(sample["checkpoint"]) == {"base", "damaged"} and set(sample["suite"]) == {
        "gsm8k"
    }  # arc: likelihood
    item_scores = pl.read_delta(str(evaluated.tables / "item_scores")).filter(pl.col("suite") == "gsm8k")
    predictions = pl.read_delta(str(evaluated.tables / "predictions")).filter(pl.col("suite") == "gsm8k")
    for row in sample.iter_rows(named=True):
        scored = item_scores.filter(
            (pl.col("checkpoint") == row["checkpoint"]) & (pl.col("item_id") == row["item_id"])
        )
        assert row["stratum"] == ("scored_correct" if scored["correct"][0] else "scored_incorrect")
        assert row["reference"] == scored["gold"][0] and row["prompt"]
        output = predictions.filter(
            (pl.col("checkpoint") == row["checkpoint"]) & (pl.col("item_id") == row["item_id"])
        )
        assert row["answer"] == json.loads(output["output"][0])["text"]
    assert sample.group_by("checkpoint").len().sort("checkpoint")["len"].to_list() == [2, 2]
    report = evaluated.dashboard_metadata.get("report")
    # the blocked checkpoint's page is rendered by the asset too (it does not wait on the gate)
    assert report and Path(str(report)).is_file() and Path(str(report)).name == "damaged.html"
    assert int(str(evaluated.dashboard_metadata["gate_decisions_shown"])) >= 2


def _cells(page) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        "[data-field]",
        "els => els.map(e => ({table: e.dataset.table, suite: e.dataset.suite, field: e.dataset.field, "
        "value: e.dataset.value, shown: e.textContent.trim()}))",
    )


def test_the_report_in_chromium_shows_the_tables_numbers(evaluated: Evaluated) -> None:
    artifacts = Path(os.environ.get("EVALGATE_TEST_ARTIFACTS", str(evaluated.html)))
    artifacts.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: failed.append(r.url) if not r.url.startswith("file://") else None)
        page.goto((evaluated.html / "index.html").as_uri())
        assert page.title() == "evalgate: checkpoints"
        assert page.locator("#production").inner_text() == "base"  # the damaged copy was blocked
        assert (
            page.locator("#checkpoints tr", has_text="damaged").locator("td.blocked").inner_text()
            == "blocked"
        )
        assert page.locator("figure.chart svg").count() == 2  # arc_easy and gsm8k
        assert page.locator("figure.chart[data-suite=arc_easy] svg path").count() > 0
        page.screenshot(path=str(artifacts / "dashboard-index.png"), full_page=True)
        page.click("text=damaged")
        page.wait_for_url("**/damaged.html")
        assert page.title() == "evalgate: damaged"
        for heading in ("Scores", "Paired comparison with production", "Gate decisions", "Judge diagnostics",
                        "Red-team rates", "Cost", "Human evaluation"):  # fmt: skip
            assert page.get_by_role("heading", name=heading, exact=True).is_visible()
        cells = _cells(page)
        page.screenshot(path=str(artifacts / "dashboard-damaged.png"), full_page=True)
    assert not failed and not errors
    scores = pl.read_delta(str(evaluated.tables / "scores")).filter(pl.col("checkpoint") == "damaged")
    comparisons = pl.read_delta(str(evaluated.tables / "comparisons")).filter(
        pl.col("checkpoint") == "damaged"
    )
    expected = {
        ("scores", r["suite"], f): r[f]
        for r in scores.iter_rows(named=True)
        for f in ("score", "ci_low", "ci_high", "n")
    }
    expected |= {("comparisons", r["suite"], f): r[f] for r in comparisons.iter_rows(named=True)
                 for f in ("difference", "low", "high", "candidate_accuracy", "production_accuracy")}  # fmt: skip
    shown = {(c["table"], c["suite"], c["field"]): c for c in cells}
    assert set(expected) <= set(shown)
    for key, value in expected.items():
        cell = shown[key]
        assert float(cell["value"]) == pytest.approx(value, rel=0, abs=0), key
        if key[2] != "n":
            assert float(cell["shown"]) == pytest.approx(value, abs=5e-4), key
    decisions = pl.read_delta(str(evaluated.tables / "gate_decisions")).filter(
        (pl.col("checkpoint") == "damaged") & (pl.col("suite") == "arc_easy")
        & (pl.col("rule") == "no_regression_vs_production")
    ).sort("decided_at")  # fmt: skip
    latest = decisions.row(-1, named=True)
    gate = shown[("gate_decisions", f"arc_easy/{latest['rule']}", "ci_low")]
    assert float(gate["value"]) == latest["ci_low"]
    assert float(shown[("judge", "chat", "win_rate")]["value"]) == pytest.approx(0.5)
    assert float(shown[("refusal", "harmbench/rubric/chemical", "refusal_rate")]["value"]) == pytest.approx(
        0.25
    )
    # the two raters on the real sample: their Cohen's kappa is on the page (or says why it is undefined)
    assert any(c["table"] == "agreement" and c["suite"].startswith("raters:ann|bob") for c in cells)
