"""The human-eval Delta tables: ``human_eval_sample`` (replaced per checkpoint) and ``human_labels``
(insert-only, idempotent on ``submit_key``), with CSV import and export of labels.

A label is committed to Delta before the labelling page is told it was saved, so a crash loses nothing that
was acknowledged; a submission repeated with the same ``submit_key`` (a double press, a retried request, a
re-imported CSV) inserts no second row. A rater who changes their mind adds a new row: the latest per
(checkpoint, suite, item, rater) is their label (:func:`latest_labels`).
"""

from __future__ import annotations

import csv
import hashlib
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from resources.results_store import commit_with_retries, quote, read_table, replace_rows
from resources.table_location import TableLocation

#: Canonical labels by suite kind. Pairwise labels name the checkpoint, never the screen side.
LABELS: dict[str, tuple[str, ...]] = {
    "pairwise": ("candidate", "opponent", "tie"),
    "refusal": ("compliance", "refusal", "partial"),
    "generation": ("correct", "incorrect"),
}
SAMPLE_TABLE = "human_eval_sample"
LABELS_TABLE = "human_labels"

LABEL_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String(),
        "suite": pl.String(),
        "item_id": pl.String(),
        "kind": pl.String(),
        "rater": pl.String(),
        "label": pl.String(),
        "shown_order": pl.String(),
        "submit_key": pl.String(),
        "labelled_at": pl.Datetime("us", "UTC"),
        "source": pl.String(),
    }
)


def label_family(kind: str) -> str:
    """How a suite kind is labelled: ``pairwise``, ``refusal`` (``refusal_harmful``, ``refusal_benign`` ...)
    or ``generation`` (every other kind: right or wrong against the reference)."""
    if kind == "pairwise" or kind.startswith("pairwise_"):
        return "pairwise"
    if kind == "refusal" or kind.startswith("refusal_"):
        return "refusal"
    return "generation"


def labels_for(kind: str) -> tuple[str, ...]:
    return LABELS[label_family(kind)]


def check_label(kind: str, label: str, where: str) -> None:
    allowed = labels_for(kind)
    if label not in allowed:
        raise ValueError(
            f"{where}: field `label`: {label!r} is not a {kind} label; use one of {list(allowed)}"
        )


def derived_submit_key(row: dict[str, object]) -> str:
    """A submit key for a label that came without one (a CSV from elsewhere): the same row gives the same key."""
    parts = [
        str(row.get(c) or "") for c in ("rater", "checkpoint", "suite", "item_id", "label", "labelled_at")
    ]
    return "csv:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class HumanEvalStore:
    """The two tables under ``root``: the home's results tables (a local folder or an object store)."""

    def __init__(self, root: TableLocation | str | PathLike[str]) -> None:
        self.root = TableLocation.of(root)

    @property
    def sample_path(self) -> TableLocation:
        return self.root.child(SAMPLE_TABLE)

    @property
    def labels_path(self) -> TableLocation:
        return self.root.child(LABELS_TABLE)

    # -- the sample -------------------------------------------------------------------------------------
    def write_sample(self, checkpoint: str, sample: pl.DataFrame) -> None:
        if set(sample["checkpoint"].unique().to_list()) - {checkpoint}:
            raise ValueError(f"sample rows must all belong to checkpoint {checkpoint!r}")
        replace_rows(self.sample_path, sample, f"checkpoint = {quote(checkpoint)}")

    def read_sample(self, checkpoint: str | None = None) -> pl.DataFrame:
        return read_frame(self.sample_path, checkpoint)

    # -- labels -----------------------------------------------------------------------------------------
    def _ensure_labels_table(self) -> None:
        location = self.labels_path
        if location.is_table():
            return
        location.ensure_parent()
        arrow_schema = pl.DataFrame(schema=LABEL_SCHEMA).to_arrow().schema

        def create() -> None:
            DeltaTable.create(
                location.uri, schema=arrow_schema, mode="ignore", partition_by=["checkpoint"],
                storage_options=location.delta_options(),
            )  # fmt: skip

        commit_with_retries(self.labels_path, create)

    def add_labels(self, labels: pl.DataFrame) -> int:
        """Insert the rows whose ``submit_key`` is new (one Delta MERGE, retried on commit races). Returns how
        many rows were inserted; a repeated key inserts nothing."""
        frame = labels.select(list(LABEL_SCHEMA)).cast(dict(LABEL_SCHEMA))  # type: ignore[arg-type]
        if frame["submit_key"].null_count() or frame["rater"].null_count() or frame["label"].null_count():
            raise ValueError("human_labels: every label needs a rater, a label and a submit_key")
        frame = frame.unique("submit_key", keep="first", maintain_order=True)
        self._ensure_labels_table()
        data: pa.Table = frame.to_arrow()
        inserted = [0]

        def merge() -> None:
            metrics = (
                self.labels_path.table()
                .merge(data, predicate="t.submit_key = s.submit_key", source_alias="s", target_alias="t")
                .when_not_matched_insert_all()
                .execute()
            )
            inserted[0] = int(metrics.get("num_target_rows_inserted", 0))

        commit_with_retries(self.labels_path, merge)
        return inserted[0]

    def add_label(
        self, *, checkpoint: str, suite: str, item_id: str, kind: str, rater: str, label: str,
        shown_order: str, submit_key: str, source: str = "web",
    ) -> bool:  # fmt: skip
        """One label from the labelling page; False when its ``submit_key`` was already stored."""
        rater = rater.strip()
        if not rater:
            raise ValueError("a label needs a rater name")
        check_label(kind, label, f"{checkpoint}/{suite}/{item_id}")
        row = {"checkpoint": checkpoint, "suite": suite, "item_id": item_id, "kind": kind, "rater": rater,
               "label": label, "shown_order": shown_order, "submit_key": submit_key,
               "labelled_at": datetime.now(UTC), "source": source}  # fmt: skip
        return self.add_labels(pl.DataFrame([row], schema=LABEL_SCHEMA)) == 1

    def read_labels(self, checkpoint: str | None = None) -> pl.DataFrame:
        return read_frame(self.labels_path, checkpoint)

    # -- CSV ----------------------------------------------------------------------------------------------
    def export_csv(self, path: Path, checkpoint: str | None = None) -> int:
        labels = self.read_labels(checkpoint)
        if labels.height == 0:
            labels = pl.DataFrame(schema=LABEL_SCHEMA)
        labels = labels.select(list(LABEL_SCHEMA)).sort(
            ["checkpoint", "suite", "item_id", "rater", "labelled_at"]
        )
        labels.with_columns(pl.col("labelled_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f%:z")).write_csv(path)
        return labels.height

    def import_csv(self, path: Path) -> tuple[int, int]:
        """Validate every row first (one error naming ``file:line`` and the field), then insert.
        Returns (rows read, rows inserted). Columns: checkpoint, suite, item_id, kind, rater, label; optional
        shown_order, submit_key, labelled_at (ISO 8601; default now), source (default ``csv``)."""
        required = ("checkpoint", "suite", "item_id", "kind", "rater", "label")
        try:
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in required if c not in (reader.fieldnames or [])]
                if missing:
                    raise ValueError(
                        f"{path}: missing column(s) {missing}; a labels CSV needs {list(required)}"
                    )
                rows = list(reader)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc}") from exc
        now = datetime.now(UTC)
        parsed = []
        for line, row in enumerate(rows, start=2):
            where = f"{path}:{line}"
            for column in required:
                if not (row.get(column) or "").strip():
                    raise ValueError(f"{where}: field `{column}` is empty")
            check_label(row["kind"], row["label"], where)
            stamp = (row.get("labelled_at") or "").strip()
            try:
                labelled_at = datetime.fromisoformat(stamp) if stamp else now
            except ValueError as exc:
                raise ValueError(f"{where}: field `labelled_at`: {stamp!r} is not an ISO 8601 time") from exc
            if labelled_at.tzinfo is None:
                labelled_at = labelled_at.replace(tzinfo=UTC)
            record = {c: row[c].strip() for c in required} | {
                "shown_order": (row.get("shown_order") or "").strip() or None,
                "labelled_at": labelled_at.astimezone(UTC),
                "source": (row.get("source") or "").strip() or "csv",
            }
            record["submit_key"] = (row.get("submit_key") or "").strip() or derived_submit_key(
                record | {"labelled_at": stamp}
            )
            parsed.append(record)
        if not parsed:
            return 0, 0
        return len(parsed), self.add_labels(pl.DataFrame(parsed, schema=LABEL_SCHEMA))


def latest_labels(labels: pl.DataFrame) -> pl.DataFrame:
    """Each rater's current label per item: their latest row."""
    if labels.height == 0:
        return pl.DataFrame(schema=LABEL_SCHEMA)
    return (
        labels.sort("labelled_at")
        .group_by(["checkpoint", "suite", "item_id", "rater"], maintain_order=True)
        .last()
        .sort(["checkpoint", "suite", "item_id", "rater"])
    )


def read_frame(location: TableLocation | str | PathLike[str], checkpoint: str | None = None) -> pl.DataFrame:
    scan = read_table(TableLocation.of(location))
    if scan is None:
        return pl.DataFrame()
    if checkpoint is not None:
        scan = scan.filter(pl.col("checkpoint") == checkpoint)
    return scan.collect()
