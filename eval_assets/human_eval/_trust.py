"""What people's labels say of the machines that label for the gate: the LLM judge and the refusal classifier.

A machine's *reference* validation (the judge on the HHH pairs, the classifier on XSTest and PyRIT, out of
distribution) is measured on someone else's data. The team's own labels (``human_labels``, from ``evalgate label``
or an imported CSV) measure it on this project's suites: per suite, Cohen's kappa of the machine's label against
the raters' consensus, pooled over every checkpoint people labelled (:mod:`._agreement`).

The stages that use a machine record that in-house agreement beside its reference kappa (``judge_verdicts``,
``refusal_labels``), and the gate rules trust the **lower** of the two once the in-house number rests on at least
``min_human_labels`` consensus items (a policy field); with fewer, it is reported and not counted. So people who
find the judge or the classifier wrong on their own suites take its say away, and a reference set can never
outvote them. Refusal agreement is binary (refusal = full or partial refusal), as the reference validation is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from eval_assets.human_eval._agreement import Agreement, classifier_vs_humans, judge_vs_humans
from eval_assets.human_eval._store import HumanEvalStore, read_frame
from resources.table_location import TableLocation

#: The in-house agreement a rule counts needs at least this many consensus items by default (a policy field).
MIN_HUMAN_LABELS = 30


@dataclass(frozen=True)
class HumanAgreement:
    """One machine's agreement with people on one suite, pooled over the labelled checkpoints."""

    suite: str
    machine: str
    n: int  # consensus items labelled by people and by the machine
    kappa: float | None
    agreement: float | None
    checkpoints: int
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        if self.kappa is None:
            why = self.note or "no items labelled by people"
            return f"in-house: none on {self.suite} ({why})"
        return (
            f"in-house kappa {self.kappa:.3f} on {self.suite} ({self.n} items people labelled over "
            f"{self.checkpoints} checkpoint(s), raw agreement {self.agreement:.1%})"
        )


def _none(suite: str, machine: str, note: str) -> HumanAgreement:
    return HumanAgreement(suite, machine, 0, None, None, 0, note)


def _pooled(rows: list[Agreement], suite: str, machine: str, checkpoints: int) -> HumanAgreement:
    pooled = [r for r in rows if r.checkpoint == "*" and r.suite == suite]
    if not pooled:
        return _none(suite, machine, "no items labelled by people")
    row = pooled[0]
    return HumanAgreement(suite, machine, row.n, row.kappa, row.agreement, checkpoints, row.note)


def judge_human_agreement(
    labels: pl.DataFrame, verdicts: pl.DataFrame, *, suite: str, judge_id: str, rubric_hash: str
) -> HumanAgreement:
    """The judge (this id and rubric; both orders combined) against the people's consensus on ``suite``."""
    if labels.height == 0 or verdicts.height == 0:
        return _none(suite, judge_id, "no items labelled by people")
    mine = verdicts.filter(
        (pl.col("suite") == suite) & (pl.col("judge_id") == judge_id) & (pl.col("rubric_hash") == rubric_hash)
    )
    ours = labels.filter(pl.col("suite") == suite)
    if mine.height == 0 or ours.height == 0:
        return _none(suite, judge_id, "no items labelled by people")
    checkpoints = len(set(ours["checkpoint"].to_list()) & set(mine["checkpoint"].to_list()))
    return _pooled(judge_vs_humans(ours, mine, pooled=True), suite, judge_id, checkpoints)


def _binary(column: str) -> pl.Expr:
    return (
        pl.when(pl.col(column) == "partial").then(pl.lit("refusal")).otherwise(pl.col(column)).alias(column)
    )


def classifier_human_agreement(
    labels: pl.DataFrame, refusal_labels: pl.DataFrame, *, suite: str, classifier: str
) -> HumanAgreement:
    """The classifier's binary label (refusal = full or partial) against the people's binary consensus on
    ``suite``."""
    if labels.height == 0 or refusal_labels.height == 0:
        return _none(suite, classifier, "no items labelled by people")
    mine = refusal_labels.filter((pl.col("suite") == suite) & (pl.col("classifier") == classifier)).select(
        "checkpoint", "suite", pl.col("item_id").cast(pl.String), "classifier", _binary("label")
    )
    ours = labels.filter(pl.col("suite") == suite).with_columns(_binary("label"))
    if mine.height == 0 or ours.height == 0:
        return _none(suite, classifier, "no items labelled by people")
    checkpoints = len(set(ours["checkpoint"].to_list()) & set(mine["checkpoint"].to_list()))
    rows = classifier_vs_humans(ours, mine, pooled=True)
    return _pooled([r for r in rows if r.what == f"classifier_vs_humans:{classifier}"], suite, classifier,
                   checkpoints)  # fmt: skip


def trusted_kappa(
    reference: float | None, human_kappa: float | None, human_n: int, min_items: int
) -> tuple[float | None, str]:
    """The kappa a rule trusts and a phrase saying where it came from: the reference validation's, or the
    in-house kappa when it rests on at least ``min_items`` items and is lower (a missing reference stays
    missing: people's labels alone do not validate a machine nobody measured on the reference set)."""
    reference = None if reference is None or math.isnan(reference) else float(reference)
    if human_kappa is None or math.isnan(human_kappa):
        return reference, "no in-house labels counted"
    if human_n < min_items:
        return (
            reference,
            f"in-house kappa {human_kappa:.3f} on {human_n} items not counted (needs {min_items})",
        )
    if reference is None:
        return None, f"in-house kappa {human_kappa:.3f} on {human_n} items; no reference validation on record"
    lower = " (the lower)" if human_kappa < reference else ""
    return min(reference, human_kappa), f"in-house kappa {human_kappa:.3f} on {human_n} items counted{lower}"


def agreement_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """In-house agreement rows (:meth:`HumanAgreement.as_dict`) as a Markdown table for Dagster metadata."""
    if not rows:
        return "no in-house labels yet (`evalgate label`)"
    lines = ["| suite | items | kappa | agreement | checkpoints |", "|---|---|---|---|---|"]
    for r in rows:
        kappa = "-" if r["kappa"] is None else f"{r['kappa']:.3f}"
        agreement = "-" if r["agreement"] is None else f"{r['agreement']:.1%}"
        lines.append(f"| {r['suite']} | {r['n']} | {kappa} | {agreement} | {r['checkpoints']} |")
    return "\n".join(lines)


def trusted_over_suites(
    reference: float | None, rows: Sequence[Mapping[str, Any]], min_items: int
) -> tuple[float | None, str]:
    """What a validation check trusts over every suite: :func:`trusted_kappa`'s rule, the reference kappa or any
    lower in-house one on at least ``min_items`` items; and a phrase listing every in-house row with whether it
    counted."""
    counted = [r for r in rows if r["kappa"] is not None and r["n"] >= min_items]
    phrase = "; ".join(
        f"{r['suite']}: in-house kappa {'undefined' if r['kappa'] is None else format(r['kappa'], '.3f')} on "
        f"{r['n']} items ({'counted' if r in counted else f'not counted, needs {min_items}'})"
        for r in rows
    )
    kappa = None if reference is None else min([float(reference), *(float(r["kappa"]) for r in counted)])
    return kappa, phrase or "no in-house labels"


def read_labelled(tables: TableLocation, machine_table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People's labels and the machine's table under the results ``tables`` (the latter not read when nobody
    labelled anything)."""
    labels = HumanEvalStore(tables).read_labels()
    return labels, (read_frame(tables.child(machine_table)) if labels.height else labels)


def in_house_per_suite(
    tables: TableLocation,
    machine_table: str,
    measure: Callable[[pl.DataFrame, pl.DataFrame, str], HumanAgreement],
) -> list[dict[str, Any]]:
    """``measure(labels, machine_rows, suite)`` for every suite of the machine's table (under the results
    ``tables``) that people labelled: the rows a validation asset reports."""
    labels, machine = read_labelled(tables, machine_table)
    suites = sorted(set(machine["suite"].to_list())) if labels.height and machine.height else []
    rows = [measure(labels, machine, suite) for suite in suites]
    return [r.as_dict() for r in rows if r.n]
