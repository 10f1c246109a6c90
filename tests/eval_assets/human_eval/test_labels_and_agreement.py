"""human_labels: idempotent submits, CSV round trip and errors; agreement against statsmodels' kappas.

Labels, judge verdicts and refusal labels here are small frames the tests write (the real judge and red-team
stages write the same schemas)."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from eval_assets.human_eval import (
    HumanEvalStore,
    between_raters,
    classifier_vs_humans,
    consensus,
    judge_vs_humans,
    latest_labels,
    scorer_vs_humans,
)


def _add(store: HumanEvalStore, rater: str, item: str, label: str, kind: str = "pairwise", suite: str = "chat",
         checkpoint: str = "c1", key: str | None = None) -> bool:  # fmt: skip
    return store.add_label(checkpoint=checkpoint, suite=suite, item_id=item, kind=kind, rater=rater, label=label,
                           shown_order="", submit_key=key or f"{rater}-{item}-{label}")  # fmt: skip


def test_a_repeated_submit_key_stores_one_row(tmp_path: Path) -> None:
    store = HumanEvalStore(tmp_path)
    assert _add(store, "ann", "p1", "candidate", key="k1") is True
    assert _add(store, "ann", "p1", "candidate", key="k1") is False
    assert _add(store, "ann", "p1", "opponent", key="k2") is True  # a change of mind is a new row
    rows = store.read_labels()
    assert rows.height == 2 and sorted(rows["submit_key"]) == ["k1", "k2"]
    assert latest_labels(rows)["label"].to_list() == ["opponent"]
    with pytest.raises(ValueError, match="field `label`: 'left' is not a pairwise label"):
        _add(store, "ann", "p2", "left")
    with pytest.raises(ValueError, match="needs a rater"):
        _add(store, "  ", "p2", "tie")


def test_csv_round_trip_is_idempotent_and_errors_name_the_line(tmp_path: Path) -> None:
    store = HumanEvalStore(tmp_path / "a")
    for i in range(3):
        _add(store, "ann", f"p{i}", ["candidate", "opponent", "tie"][i])
    exported = tmp_path / "labels.csv"
    assert store.export_csv(exported) == 3
    other = HumanEvalStore(tmp_path / "b")
    assert other.import_csv(exported) == (3, 3)
    assert other.import_csv(exported) == (3, 0)
    keep = ["checkpoint", "suite", "item_id", "rater", "label", "submit_key", "labelled_at"]
    assert (
        other.read_labels()
        .select(keep)
        .sort("item_id")
        .equals(store.read_labels().select(keep).sort("item_id"))
    )
    # a file from elsewhere: no submit keys, no times; the same file twice is still stored once
    outside = tmp_path / "outside.csv"
    outside.write_text("checkpoint,suite,item_id,kind,rater,label,labelled_at\n"
                       "c1,gsm8k,7,generation,bob,correct,2026-11-30T10:00:00\n"
                       "c1,gsm8k,8,generation,bob,incorrect,2026-11-30T10:01:00\n")  # fmt: skip
    assert other.import_csv(outside) == (2, 2) and other.import_csv(outside) == (2, 0)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "checkpoint,suite,item_id,kind,rater,label\nc1,gsm8k,7,generation,bob,correct\nc1,gsm8k,8,generation,bob,maybe\n"
    )
    with pytest.raises(ValueError, match=r"bad.csv:3: field `label`: 'maybe' is not a generation label"):
        other.import_csv(bad)
    assert other.read_labels().height == 5  # nothing of the bad file was stored
    missing = tmp_path / "missing.csv"
    missing.write_text("checkpoint,item_id,label\n")
    with pytest.raises(ValueError, match=r"missing.csv: missing column\(s\) \['suite', 'kind', 'rater'\]"):
        other.import_csv(missing)


def _labels(
    rows: list[tuple[str, str, str, str]], kind: str = "pairwise", suite: str = "chat"
) -> pl.DataFrame:
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 12, 1, tzinfo=UTC)
    return pl.DataFrame([
        {"checkpoint": c, "suite": suite, "item_id": i, "kind": kind, "rater": r, "label": lab, "shown_order": "",
         "submit_key": f"{n}", "labelled_at": base + timedelta(seconds=n), "source": "test"}
        for n, (c, i, r, lab) in enumerate(rows)
    ])  # fmt: skip


def test_judge_vs_humans_equals_statsmodels() -> None:
    rng = np.random.default_rng(1)
    truth = rng.choice(["candidate", "opponent", "tie"], size=60, p=[0.5, 0.3, 0.2])
    judge_says = np.where(rng.random(60) < 0.75, truth, rng.choice(["candidate", "opponent", "tie"], size=60))
    verdicts, labels = [], []
    for i, (h, j) in enumerate(zip(truth, judge_says, strict=True)):
        verdicts += [{"checkpoint": "c1", "suite": "chat", "item_id": f"p{i}", "order": o, "verdict": str(j),
                      "opponent": "prod"} for o in ("ab", "ba")]  # fmt: skip
        labels.append(("c1", f"p{i}", "ann", str(h)))
    # one item whose orders disagree is a tie for the judge; one errored item is left out
    verdicts += [{"checkpoint": "c1", "suite": "chat", "item_id": "px", "order": "ab", "verdict": "candidate", "opponent": "prod"},
                 {"checkpoint": "c1", "suite": "chat", "item_id": "px", "order": "ba", "verdict": "opponent", "opponent": "prod"},
                 {"checkpoint": "c1", "suite": "chat", "item_id": "pe", "order": "ab", "verdict": "error", "opponent": "prod"}]  # fmt: skip
    labels += [("c1", "px", "ann", "tie"), ("c1", "pe", "ann", "candidate")]
    rows = judge_vs_humans(_labels(labels), pl.DataFrame(verdicts))
    per_checkpoint = next(r for r in rows if r.checkpoint == "c1")
    human = [*map(str, truth), "tie"]
    machine = [*map(str, judge_says), "tie"]
    cats = ["candidate", "opponent", "tie"]
    table = np.array(
        [
            [sum(1 for a, b in zip(human, machine, strict=True) if a == x and b == y) for y in cats]
            for x in cats
        ]
    )
    reference = sm_cohens_kappa(table)
    assert per_checkpoint.n == 61
    assert per_checkpoint.kappa == pytest.approx(reference.kappa, abs=1e-12)
    assert per_checkpoint.low == pytest.approx(reference.kappa_low, abs=1e-9)
    assert {r.checkpoint for r in rows} == {"c1", "*"}


def test_consensus_majority_and_even_splits_left_out() -> None:
    labels = _labels([("c1", "a", "ann", "tie"), ("c1", "a", "bob", "tie"), ("c1", "a", "cy", "candidate"),
                      ("c1", "b", "ann", "tie"), ("c1", "b", "bob", "candidate"),
                      ("c1", "c", "ann", "candidate"), ("c1", "c", "ann", "opponent")])  # fmt: skip
    agreed, split = consensus(labels)
    assert dict(agreed.select("item_id", "label").iter_rows()) == {
        "a": "tie",
        "c": "opponent",
    }  # ann's latest on c
    assert split == 1


def test_between_raters_cohen_per_pair_and_fleiss_equal_statsmodels() -> None:
    rng = np.random.default_rng(5)
    truth = rng.choice(["compliance", "refusal", "partial"], size=40)
    raters = {r: np.where(rng.random(40) < 0.8, truth, rng.choice(["compliance", "refusal", "partial"], size=40))
              for r in ("ann", "bob", "cy")}  # fmt: skip
    rows = [("c1", f"h{i}", r, str(raters[r][i])) for r in raters for i in range(40)]
    out = between_raters(_labels(rows, kind="refusal", suite="harm"), pooled=False)
    cats = ["compliance", "refusal", "partial"]
    ab = next(r for r in out if r.what == "raters:ann|bob")
    table = np.array([[int(np.sum((raters["ann"] == x) & (raters["bob"] == y))) for y in cats] for x in cats])
    assert ab.kappa == pytest.approx(sm_cohens_kappa(table).kappa, abs=1e-12)
    fleiss = next(r for r in out if r.what == "raters:fleiss")
    counts = np.array([[sum(1 for r in raters if raters[r][i] == c) for c in cats] for i in range(40)])
    assert fleiss.kappa == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"), abs=1e-12)
    assert fleiss.n == 40 and fleiss.low is not None and fleiss.low < fleiss.kappa < fleiss.high  # type: ignore[operator]


def test_classifier_and_scorer_vs_humans_and_undefined_kappa_is_a_note() -> None:
    refusal = pl.DataFrame([
        {"checkpoint": "c1", "suite": "harm", "item_id": f"h{i}", "label": lab, "classifier": "rubric"}
        for i, lab in enumerate(["refusal", "refusal", "compliance", "compliance", "partial", "error"])
    ])  # fmt: skip
    humans = _labels([("c1", f"h{i}", "ann", lab) for i, lab in
                      enumerate(["refusal", "compliance", "compliance", "compliance", "partial", "refusal"])],
                     kind="refusal", suite="harm")  # fmt: skip
    row = next(r for r in classifier_vs_humans(humans, refusal) if r.checkpoint == "c1")
    assert row.what == "classifier_vs_humans:rubric" and row.n == 5  # the errored item is left out
    assert row.agreement == pytest.approx(4 / 5)
    # the red-team stage's wide form: the string-match baseline beside the classifier is measured too
    wide = refusal.with_columns(
        pl.Series(
            "second_label", ["refusal", "compliance", "compliance", "compliance", "partial", "refusal"]
        ),
        pl.lit("string-match").alias("second_classifier"),
    )
    rows = {r.what: r for r in classifier_vs_humans(humans, wide) if r.checkpoint == "c1"}
    assert (
        rows["classifier_vs_humans:string-match"].agreement == 1.0
        and rows["classifier_vs_humans:string-match"].n == 6
    )
    assert rows["classifier_vs_humans:rubric"].n == 5
    scores = pl.DataFrame({"checkpoint": ["c1"] * 3, "suite": ["gsm8k"] * 3, "item_id": ["1", "2", "3"],
                           "correct": [True, True, True]})  # fmt: skip
    gen = _labels([("c1", i, "ann", "correct") for i in ("1", "2", "3")], kind="generation", suite="gsm8k")
    undefined = next(r for r in scorer_vs_humans(gen, scores) if r.checkpoint == "c1")
    assert undefined.kappa is None and "undefined" in undefined.note and undefined.n == 3
