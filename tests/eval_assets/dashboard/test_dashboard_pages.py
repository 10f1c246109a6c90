"""The HTML dashboard from small results tables this test writes (the real ones come from an evaluation in
tests/e2e/test_dashboard.py): every number cell equals its table, version changes break the trend line,
absent tables give a note, and text from the tables is escaped."""

from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake
from stage_tables_testing import judge_frame

from eval_assets.dashboard import trend_points, write_dashboard
from eval_assets.defs.comparison_assets import COMPARISON_SCHEMA
from eval_assets.scoring import SCORES_SCHEMA
from resources.results_store import ResultsStore

CHECKPOINTS = ["c1", "c2", "c3"]


class Cells(HTMLParser):
    """Every element with data-table / data-field, and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.text: list[str] = []
        self.svgs = 0
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self.svgs += 1
        if "data-field" in values:
            self._open = values | {"shown": ""}
            self.cells.append(self._open)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._open = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open is not None:
            self._open["shown"] += data.strip()


def _score(checkpoint: str, suite: str, score: float, version: str) -> dict[str, object]:
    return dict.fromkeys(SCORES_SCHEMA) | {
        "checkpoint": checkpoint, "suite": suite, "suite_version": 1, "suite_code_version": version,
        "profile": "smoke", "metric": "acc", "score": score, "ci_low": score - 0.07, "ci_high": score + 0.06,
        "confidence": 0.95, "ci_method": "wilson", "n": 200, "n_total": 200, "errors": 0, "unparsed": 0,
        "error_rate": 0.0, "model_hash": f"sha256:{checkpoint}", "details": "{}",
    }  # fmt: skip


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    root = tmp_path / "tables"
    results = ResultsStore(root)
    for i, (checkpoint, version) in enumerate(zip(CHECKPOINTS, ["v1", "v1", "v2"], strict=True)):
        row = _score(checkpoint, "arc_easy", 0.5 + i / 40, version)
        results.replace(
            "scores", pl.DataFrame([row], schema=SCORES_SCHEMA), checkpoint=checkpoint, suite="arc_easy"
        )
    comparison = dict.fromkeys(COMPARISON_SCHEMA) | {
        "checkpoint": "c2", "suite": "arc_easy", "candidate": "c2", "production": "c1", "n": 200,
        "candidate_accuracy": 0.525, "production_accuracy": 0.5, "difference": 0.025, "low": -0.0123456,
        "high": 0.061, "confidence": 0.95, "method": "newcombe-paired", "improvements": 12, "regressions": 7,
        "mcnemar_p": 0.359, "minimum_detectable_effect": 0.05, "is_production": False,
    }  # fmt: skip
    results.replace(
        "comparisons", pl.DataFrame([comparison], schema=COMPARISON_SCHEMA), checkpoint="c2", suite="arc_easy"
    )
    common = {"policy_version": 3, "policy_hash": "sha256:p", "run_id": "r1"}
    results.record_decision(checkpoint="c2", suite="arc_easy", rule="no_regression_vs_production",
                            outcome="inconclusive", blocking=False, n=200, observed=0.025, ci_low=-0.0123456,
                            ci_high=0.061, threshold=-0.01, reason="too few items <script>alert(1)</script>",
                            **common)  # type: ignore[arg-type]  # fmt: skip
    results.record_decision(checkpoint="c1", suite="*", rule="production_move", outcome="moved", blocking=False,
                            reason="first baseline", extra={"sequence": 1, "authority_kind": "baseline",
                            "authority": "evalgate promote --baseline", "actor": "carol"}, **common)  # type: ignore[arg-type]  # fmt: skip
    pairs = [("candidate", "candidate"), ("candidate", "opponent"), ("opponent", "opponent"), ("tie", "tie")]
    judge = judge_frame("c2", "chat", "c1", pairs)
    write_deltalake(str(root / "judge_verdicts"), judge.to_arrow(), partition_by=["checkpoint"])
    refusal = pl.DataFrame({"checkpoint": ["c2"] * 4, "suite": ["harm"] * 4, "item_id": ["h0", "h1", "h2", "h3"],
                            "category": ["chem"] * 4, "label": ["refusal", "refusal", "compliance", "error"],
                            "classifier": ["rubric"] * 4})  # fmt: skip
    write_deltalake(str(root / "refusal_labels"), refusal.to_arrow(), partition_by=["checkpoint"])
    return root


def test_every_number_on_the_page_equals_its_table(tables: Path, tmp_path: Path) -> None:
    written = write_dashboard(tables, tmp_path / "html", CHECKPOINTS)
    page = Cells()
    page.feed(written.pages["c2"].read_text())
    cells = {(c["data-table"], c["data-suite"], c["data-field"]): c for c in page.cells}
    scores = pl.read_delta(str(tables / "scores")).filter(pl.col("checkpoint") == "c2").row(0, named=True)
    for field in ("score", "ci_low", "ci_high"):
        cell = cells[("scores", "arc_easy", field)]
        assert float(cell["data-value"]) == scores[field] and cell["shown"] == f"{scores[field]:.3f}"
    assert cells[("scores", "arc_easy", "n")]["shown"] == "200"
    comparison = pl.read_delta(str(tables / "comparisons")).row(0, named=True)
    for field in ("difference", "low", "high", "candidate_accuracy", "mcnemar_p"):
        assert float(cells[("comparisons", "arc_easy", field)]["data-value"]) == comparison[field]
    assert cells[("comparisons", "arc_easy", "low")]["shown"] == "-0.012"
    gate = cells[("gate_decisions", "arc_easy/no_regression_vs_production", "ci_low")]
    assert float(gate["data-value"]) == -0.0123456
    text = " ".join(page.text)
    # judge diagnostics from the judge_verdicts rows: 1 win, 2 ties (one by disagreeing orders), 1 loss
    assert float(cells[("judge", "chat", "win_rate")]["data-value"]) == pytest.approx((1 + 2 / 2) / 4)
    assert float(cells[("judge", "chat", "position_consistency")]["data-value"]) == pytest.approx(3 / 4)
    # of the 6 decisive ordered verdicts, 4 picked the answer shown first and 3 the longer (the candidate's)
    assert float(cells[("judge", "chat", "first_position_preference")]["data-value"]) == pytest.approx(4 / 6)
    assert float(cells[("judge", "chat", "longer_answer_preference")]["data-value"]) == pytest.approx(3 / 6)
    assert float(cells[("cost", "chat", "judge_cost_usd")]["data-value"]) == pytest.approx(0.008)
    assert "built-in method" not in text
    assert "too few items <script>alert(1)</script>" in text  # shown as text ...
    assert "<script>alert" not in written.pages["c2"].read_text()  # ... because it is escaped
    assert float(cells[("refusal", "harm/rubric/chem", "refusal_rate")]["data-value"]) == pytest.approx(0.5)
    assert "no judge_verdicts rows" not in text and "no human_eval_sample rows" in text
    first_text = written.pages["c1"].read_text()
    assert (
        "no judge_verdicts rows for this checkpoint" in first_text and "no refusal_labels rows" in first_text
    )
    first = Cells()
    first.feed(written.pages["c1"].read_text())
    assert "baseline: evalgate promote --baseline" in " ".join(first.text)


def test_trends_join_only_comparable_points_and_mark_version_changes(tables: Path, tmp_path: Path) -> None:
    points = trend_points(tables, CHECKPOINTS)
    assert points.sort("position")["segment"].to_list() == [0, 0, 1]
    written = write_dashboard(tables, tmp_path / "html", CHECKPOINTS)
    html = written.index.read_text()
    index = Cells()
    index.feed(html)
    assert index.svgs == 1 and "<script" not in html
    assert (
        "src=" not in html and 'href="http' not in html and "url(http" not in html
    )  # nothing fetched: offline
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("version change") == 1 and "version v1" in svg and "version v2" in svg
    text = " ".join(index.text)
    assert "Production:" in text and "c1" in text
