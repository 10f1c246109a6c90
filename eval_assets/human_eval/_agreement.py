"""Agreement of people with the judge, with the refusal classifiers, with the automatic scorer, and with each
other: Cohen's kappa (two raters) and Fleiss' kappa (all raters of an item), from :mod:`eval_assets.stats`.

Each function takes frames (``human_labels`` rows and the machine's table) and returns :class:`Agreement`
rows; a kappa that is undefined (one label throughout) or has no items is reported with a note, never NaN.
The human side of judge/classifier/scorer agreement is the raters' consensus per item: the label most of
its raters gave (items whose raters split evenly are left out and counted in ``n_no_consensus``).
These are what judge and classifier validation checks call (``judge_vs_humans`` → kappa > 0.7 to gate).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import combinations

import polars as pl

from eval_assets.human_eval._sampling import combined_verdicts
from eval_assets.human_eval._store import label_family, labels_for, latest_labels
from eval_assets.stats import KappaResult, cohens_kappa, fleiss_kappa, ratings_to_table


@dataclass(frozen=True)
class Agreement:
    """One agreement number: ``what`` (judge_vs_humans, classifier_vs_humans:<name>, scorer_vs_humans,
    raters:<a>|<b>, raters:fleiss) on one checkpoint (``*``: pooled) and suite."""

    what: str
    checkpoint: str
    suite: str
    statistic: str
    n: int
    kappa: float | None
    low: float | None
    high: float | None
    agreement: float | None
    method: str
    note: str = ""
    n_no_consensus: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


AGREEMENT_SCHEMA = {
    "what": pl.String, "checkpoint": pl.String, "suite": pl.String, "statistic": pl.String, "n": pl.Int64,
    "kappa": pl.Float64, "low": pl.Float64, "high": pl.Float64, "agreement": pl.Float64, "method": pl.String,
    "note": pl.String, "n_no_consensus": pl.Int64,
}  # fmt: skip


def agreement_frame(rows: Iterable[Agreement]) -> pl.DataFrame:
    return pl.DataFrame([r.as_dict() for r in rows], schema=AGREEMENT_SCHEMA)


def _row(
    what: str, checkpoint: str, suite: str, statistic: str, compute: object, n: int, skipped: int = 0
) -> Agreement:
    if n == 0:
        return Agreement(
            what, checkpoint, suite, statistic, 0, None, None, None, None, "", "no items", skipped
        )
    try:
        result: KappaResult = compute()  # type: ignore[operator]
    except ValueError as exc:
        return Agreement(what, checkpoint, suite, statistic, n, None, None, None, None, "", str(exc), skipped)
    return Agreement(
        what, checkpoint, suite, statistic, result.n, result.kappa, result.low, result.high, result.agreement,
        result.method, "", skipped,
    )  # fmt: skip


def consensus(labels: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """(checkpoint, suite, item_id, label) by majority of each item's raters (latest label per rater), and
    the number of items left out because their raters split evenly."""
    current = latest_labels(labels)
    rows, split = [], 0
    groups = current.group_by(["checkpoint", "suite", "item_id"], maintain_order=True).agg(pl.col("label"))
    for checkpoint, suite, item_id, votes in groups.iter_rows():
        counts = Counter(votes).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            split += 1
            continue
        rows.append({"checkpoint": checkpoint, "suite": suite, "item_id": item_id, "label": counts[0][0]})
    schema = {"checkpoint": pl.String, "suite": pl.String, "item_id": pl.String, "label": pl.String}
    return pl.DataFrame(rows, schema=schema), split


def _machine_vs_humans(
    what: str, labels: pl.DataFrame, machine: pl.DataFrame, kind: str, *, pooled: bool
) -> list[Agreement]:
    """Cohen's kappa of ``machine`` (checkpoint, suite, item_id, machine_label) against the human consensus,
    per (checkpoint, suite), plus per suite over all checkpoints when ``pooled``."""
    of_kind = labels
    if (
        labels.height
    ):  # stored kinds may be a suite kind (``refusal_harmful``, from a CSV) or its label family
        families = pl.col("kind").map_elements(label_family, return_dtype=pl.String)
        of_kind = labels.filter(families == kind)
    if of_kind.height == 0 or machine.height == 0:
        return []
    humans, _ = consensus(of_kind)
    joined = humans.join(machine, on=["checkpoint", "suite", "item_id"], how="inner")
    declared = labels_for(kind)
    out = []
    groups: list[tuple[str, str, pl.DataFrame]] = [
        (str(c), str(s), joined.filter((pl.col("checkpoint") == c) & (pl.col("suite") == s)))
        for c, s in joined.select("checkpoint", "suite").unique().sort(["checkpoint", "suite"]).iter_rows()
    ]
    if pooled:
        groups += [
            ("*", str(s), joined.filter(pl.col("suite") == s)) for s in sorted(joined["suite"].unique())
        ]
    for checkpoint, suite, part in groups:
        scope = of_kind.filter(pl.col("suite") == suite)
        if checkpoint != "*":
            scope = scope.filter(pl.col("checkpoint") == checkpoint)
        skipped = consensus(scope)[1]
        extra = sorted(set(part["machine_label"].to_list()) - set(declared))
        label_set = list(declared) + extra
        out.append(_row(
            what, checkpoint, suite, "cohen",
            lambda p=part, ls=label_set: cohens_kappa(p["label"].to_list(), p["machine_label"].to_list(), labels=ls),
            part.height, skipped,
        ))  # fmt: skip
    return out


def judge_vs_humans(
    labels: pl.DataFrame, judge_verdicts: pl.DataFrame, *, pooled: bool = True
) -> list[Agreement]:
    """The judge's verdict per item (both orders combined: a tie when they disagree; errored items left out)
    against the human consensus on pairwise items."""
    if judge_verdicts.height == 0:
        return []
    parts = []
    for checkpoint in judge_verdicts["checkpoint"].unique().sort().to_list():
        combined = combined_verdicts(judge_verdicts.filter(pl.col("checkpoint") == checkpoint))
        parts.append(
            combined.filter(pl.col("verdict") != "error").with_columns(pl.lit(checkpoint).alias("checkpoint"))
        )
    machine = pl.concat(parts).select(
        "checkpoint", "suite", "item_id", pl.col("verdict").alias("machine_label")
    )
    return _machine_vs_humans("judge_vs_humans", labels, machine, "pairwise", pooled=pooled)


def classifier_vs_humans(
    labels: pl.DataFrame, refusal_labels: pl.DataFrame, *, pooled: bool = True
) -> list[Agreement]:
    """Each refusal classifier's label (errored items left out) against the human consensus on refusal items.
    Rows name their classifier (long form); a ``second_label`` with its ``second_classifier`` (the
    string-match baseline the red-team stage writes beside the classifier) is measured as a classifier too."""
    if refusal_labels.height == 0:
        return []
    frame = refusal_labels
    if "classifier" not in frame.columns:
        frame = frame.with_columns(pl.lit("classifier").alias("classifier"))
    if "second_label" in frame.columns:
        second = frame.filter(pl.col("second_label").is_not_null())
        name = pl.col("second_classifier") if "second_classifier" in second.columns else pl.lit("second")
        second = second.select(
            "checkpoint", "suite", "item_id", pl.col("second_label").alias("label"),
            name.fill_null("second").alias("classifier"),
        )  # fmt: skip
        frame = pl.concat([frame.select("checkpoint", "suite", "item_id", "label", "classifier"), second])
    out = []
    for classifier in frame["classifier"].unique().sort().to_list():
        rows = frame.filter((pl.col("classifier") == classifier) & (pl.col("label") != "error"))
        machine = rows.select(
            "checkpoint", "suite", pl.col("item_id").cast(pl.String), pl.col("label").alias("machine_label")
        ).unique(["checkpoint", "suite", "item_id"], keep="first")
        out += _machine_vs_humans(
            f"classifier_vs_humans:{classifier}", labels, machine, "refusal", pooled=pooled
        )
    return out


def scorer_vs_humans(
    labels: pl.DataFrame, item_scores: pl.DataFrame, *, pooled: bool = True
) -> list[Agreement]:
    """The automatic scorer (``item_scores.correct``) against the human consensus on generation items."""
    if item_scores.height == 0:
        return []
    machine = item_scores.select(
        "checkpoint", "suite", pl.col("item_id").cast(pl.String),
        pl.when(pl.col("correct")).then(pl.lit("correct")).otherwise(pl.lit("incorrect")).alias("machine_label"),
    )  # fmt: skip
    return _machine_vs_humans("scorer_vs_humans", labels, machine, "generation", pooled=pooled)


def between_raters(labels: pl.DataFrame, *, pooled: bool = True) -> list[Agreement]:
    """Per (checkpoint, suite) and pooled per suite: Cohen's kappa for every pair of raters on the items both
    labelled, and Fleiss' kappa over the items labelled by every rater of that scope (at least two)."""
    current = latest_labels(labels)
    if current.height == 0:
        return []
    out = []
    scopes: list[tuple[str, str, pl.DataFrame]] = [
        (str(c), str(s), current.filter((pl.col("checkpoint") == c) & (pl.col("suite") == s)))
        for c, s in current.select("checkpoint", "suite").unique().sort(["checkpoint", "suite"]).iter_rows()
    ]
    if pooled:
        scopes += [
            ("*", str(s), current.filter(pl.col("suite") == s)) for s in sorted(current["suite"].unique())
        ]
    for checkpoint, suite, part in scopes:
        kind = str(part["kind"][0])
        declared = list(labels_for(kind))
        part = part.with_columns((pl.col("checkpoint") + "/" + pl.col("item_id")).alias("unit"))
        wide = part.pivot(on="rater", index="unit", values="label")
        raters = sorted(c for c in wide.columns if c != "unit")
        if len(raters) < 2:
            continue
        for a, b in combinations(raters, 2):
            both = wide.select(a, b).drop_nulls()
            out.append(_row(
                f"raters:{a}|{b}", checkpoint, suite, "cohen",
                lambda d=both, x=a, y=b, ls=declared: cohens_kappa(d[x].to_list(), d[y].to_list(), labels=ls), both.height,
            ))  # fmt: skip
        complete = wide.select(raters).drop_nulls()
        table_labels = declared + sorted(set(part["label"].to_list()) - set(declared))
        out.append(_row(
            "raters:fleiss", checkpoint, suite, "fleiss",
            lambda d=complete, ls=table_labels: fleiss_kappa(ratings_to_table(d.to_numpy(), ls)[0], labels=ls),
            complete.height,
        ))  # fmt: skip
    return out
