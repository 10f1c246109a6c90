"""Results in Delta tables, partitioned by checkpoint, for users to query with polars.

Tables (schemas in README.md): ``predictions``, ``code_executions``, ``item_scores``, ``scores``,
``comparisons`` are replaced per
(checkpoint, suite) on each materialization; ``gate_decisions`` is append-only, the history of every decision.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from os import PathLike
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from resources.table_location import TableLocation

log = logging.getLogger(__name__)

#: Attempts at a write that loses commit races to concurrent writers (or the table's creation to another).
MAX_ATTEMPTS = 30

GATE_DECISION_SCHEMA = pl.Schema(
    {
        "checkpoint": pl.String(),
        "suite": pl.String(),
        "rule": pl.String(),
        "outcome": pl.String(),
        "blocking": pl.Boolean(),
        "observed": pl.Float64(),
        "ci_low": pl.Float64(),
        "ci_high": pl.Float64(),
        "threshold": pl.Float64(),
        "n": pl.Int64(),
        "reason": pl.String(),
        "policy_version": pl.Int64(),
        "policy_hash": pl.String(),
        "run_id": pl.String(),
        "decided_at": pl.Datetime("us", "UTC"),
        # the evidence a rule's verdict rests on: which production it was compared against
        "production": pl.String(),
        "production_model_hash": pl.String(),
        # production moves (rule = "production_move"): see resources/production_ledger.py
        "model_hash": pl.String(),
        "predecessor": pl.String(),
        "authority_kind": pl.String(),
        "authority": pl.String(),
        "actor": pl.String(),
        "sequence": pl.Int64(),
        "moved_at": pl.String(),
        "chain_hash": pl.String(),
    }
)

REPLACED_TABLES = (
    "predictions", "code_executions", "judge_verdicts", "refusal_labels", "item_scores", "scores", "comparisons",
)  # fmt: skip
APPEND_TABLES = ("gate_decisions",)


def quote(value: str) -> str:
    """A SQL string literal for a Delta predicate."""
    return "'" + value.replace("'", "''") + "'"


def commit_with_retries(path: object, write: Callable[[], None]) -> None:
    """Run ``write`` (one Delta commit to ``path``) until it wins its commit: concurrent runs on one home (two
    ``evalgate evaluate`` processes, the daemon and a CLI run) race to create a table or to commit to it."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            write()
            return
        except (CommitFailedError, DeltaError) as exc:
            if attempt == MAX_ATTEMPTS:
                raise
            log.debug("writing %s lost a commit race (%s); attempt %d", path, exc, attempt)
            time.sleep(random.uniform(0, 0.05 * attempt))


def replace_rows(path: TableLocation | str | PathLike[str], frame: pl.DataFrame, predicate: str) -> None:
    """Replace the rows matching ``predicate`` with ``frame`` (creating the table, partitioned by checkpoint)."""
    location = TableLocation.of(path)
    data = frame.to_arrow()

    def write() -> None:
        options = location.delta_options()
        if location.is_table():
            write_deltalake(
                location.uri, data, mode="overwrite", predicate=predicate, partition_by=["checkpoint"],
                schema_mode="merge", storage_options=options,
            )  # fmt: skip
        else:
            write_deltalake(
                location.uri, data, mode="append", partition_by=["checkpoint"], storage_options=options
            )

    location.ensure_parent()
    commit_with_retries(location, write)


def read_table(location: TableLocation) -> pl.LazyFrame | None:
    """A lazy scan of the Delta table at ``location``, or ``None`` when there is none yet."""
    if not location.is_table():
        return None
    return pl.scan_delta(location.uri, storage_options=location.delta_options())


class ResultsStore:
    """Writes merge schemas: a column added in a later version appears as null in older rows, so tables
    written by an earlier evalgate stay readable and writable."""

    def __init__(self, root: TableLocation | str | PathLike[str]) -> None:
        self.location = TableLocation.of(root)

    @property
    def root(self) -> str:
        """The tables' root: a local folder or an object-store URI."""
        return self.location.uri

    def table_path(self, table: str) -> TableLocation:
        if table not in REPLACED_TABLES + APPEND_TABLES:
            raise ValueError(f"unknown results table {table!r}")
        return self.location.child(table)

    def replace(self, table: str, frame: pl.DataFrame, *, checkpoint: str, suite: str) -> None:
        """Write the rows of one (checkpoint, suite), replacing what was there for that pair only."""
        if table not in REPLACED_TABLES:
            raise ValueError(f"{table!r} is not replaced per partition")
        if set(frame["checkpoint"].unique().to_list()) - {checkpoint} or set(
            frame["suite"].unique().to_list()
        ) - {suite}:
            raise ValueError(
                f"rows for {table} must all belong to checkpoint {checkpoint!r}, suite {suite!r}"
            )
        replace_rows(
            self.table_path(table), frame, f"checkpoint = {quote(checkpoint)} AND suite = {quote(suite)}"
        )

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if table not in APPEND_TABLES:
            raise ValueError(f"{table!r} is not append-only")
        path = self.table_path(table)
        path.ensure_parent()
        data = frame.to_arrow()
        options = path.delta_options()
        commit_with_retries(
            path,
            lambda: write_deltalake(
                path.uri,
                data,
                mode="append",
                partition_by=["checkpoint"],
                schema_mode="merge",
                storage_options=options,
            ),
        )

    def append_if_absent(self, table: str, frame: pl.DataFrame, key: tuple[str, ...]) -> int:
        """Append the rows of ``frame`` whose ``key`` columns match no row of the table, as one Delta ``MERGE``
        (insert when not matched): of two writers of one key, the one that commits first inserts; the other's
        merge conflicts, re-runs on the new version, finds the key and inserts nothing. Returns rows inserted.
        An atomic compare-and-swap on the table itself, whatever lock the writers hold (or not)."""
        if table not in APPEND_TABLES:
            raise ValueError(f"{table!r} is not append-only")
        path = self.table_path(table)
        data = frame.to_arrow()
        predicate = " AND ".join(f"t.{column} = s.{column}" for column in key)
        inserted = 0

        def write() -> None:
            nonlocal inserted
            options = path.delta_options()
            if not path.is_table():
                path.ensure_parent()
                DeltaTable.create(
                    path.uri, GATE_DECISION_SCHEMA.to_arrow(), mode="ignore", partition_by=["checkpoint"],
                    storage_options=options,
                )  # fmt: skip
            metrics = (
                DeltaTable(path.uri, storage_options=options)
                .merge(data, predicate=predicate, source_alias="s", target_alias="t", merge_schema=True)
                .when_not_matched_insert_all()
                .execute()
            )
            inserted = int(metrics.get("num_target_rows_inserted", 0))

        commit_with_retries(path, write)
        return inserted

    def record_decision(
        self,
        *,
        checkpoint: str,
        suite: str,
        rule: str,
        outcome: str,
        blocking: bool,
        reason: str,
        policy_version: int,
        policy_hash: str,
        run_id: str,
        n: int = 0,
        observed: float | None = None,
        ci_low: float | None = None,
        ci_high: float | None = None,
        threshold: float | None = None,
        extra: dict[str, Any] | None = None,
        unique_on: tuple[str, ...] | None = None,
    ) -> int:
        """Append one gate decision (a rule's verdict on one suite, the promotion outcome with suite '*', or a
        production move). ``extra`` fills the other columns of :data:`GATE_DECISION_SCHEMA`. With ``unique_on``
        the row is appended only if no row has its values in those columns (:meth:`append_if_absent`).
        Returns rows appended (1, or 0 when ``unique_on`` found the key taken)."""
        unknown = set(extra or {}) - set(GATE_DECISION_SCHEMA)
        if unknown:
            raise ValueError(f"gate_decisions has no column(s) {sorted(unknown)}")
        row = dict.fromkeys(GATE_DECISION_SCHEMA) | {
            "checkpoint": checkpoint, "suite": suite, "rule": rule, "outcome": outcome, "blocking": blocking,
            "observed": observed, "ci_low": ci_low, "ci_high": ci_high, "threshold": threshold, "n": n,
            "reason": reason, "policy_version": policy_version, "policy_hash": policy_hash, "run_id": run_id,
            "decided_at": datetime.now(UTC),
        } | (extra or {})  # fmt: skip
        frame = pl.DataFrame([row], schema=GATE_DECISION_SCHEMA)
        if unique_on is not None:
            return self.append_if_absent("gate_decisions", frame, unique_on)
        self.append("gate_decisions", frame)
        return 1

    def policy_hashes(self) -> dict[int, set[str]]:
        """Every policy hash recorded under each policy version (a version must name one content)."""
        decisions = self.read("gate_decisions")
        if decisions.height == 0 or "policy_hash" not in decisions.columns:
            return {}
        pairs = decisions.select("policy_version", "policy_hash").drop_nulls().unique().rows()
        seen: dict[int, set[str]] = {}
        for version, digest in pairs:
            seen.setdefault(int(version), set()).add(str(digest))
        return seen

    def read(self, table: str, *, checkpoint: str | None = None, suite: str | None = None) -> pl.DataFrame:
        scan = read_table(self.table_path(table))
        if scan is None:
            return pl.DataFrame()
        if checkpoint is not None:
            scan = scan.filter(pl.col("checkpoint") == checkpoint)
        if suite is not None:
            scan = scan.filter(pl.col("suite") == suite)
        return scan.collect()
