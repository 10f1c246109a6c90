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
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

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

REPLACED_TABLES = ("predictions", "code_executions", "item_scores", "scores", "comparisons")
APPEND_TABLES = ("gate_decisions",)


def quote(value: str) -> str:
    """A SQL string literal for a Delta predicate."""
    return "'" + value.replace("'", "''") + "'"


def commit_with_retries(path: Path, write: Callable[[], None]) -> None:
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


def replace_rows(path: Path, frame: pl.DataFrame, predicate: str) -> None:
    """Replace the rows matching ``predicate`` with ``frame`` (creating the table, partitioned by checkpoint)."""
    data = frame.to_arrow()

    def write() -> None:
        if DeltaTable.is_deltatable(str(path)):
            write_deltalake(
                str(path), data, mode="overwrite", predicate=predicate, partition_by=["checkpoint"],
                schema_mode="merge",
            )  # fmt: skip
        else:
            write_deltalake(str(path), data, mode="append", partition_by=["checkpoint"])

    path.parent.mkdir(parents=True, exist_ok=True)
    commit_with_retries(path, write)


class ResultsStore:
    """Writes merge schemas: a column added in a later version appears as null in older rows, so tables
    written by an earlier evalgate stay readable and writable."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def table_path(self, table: str) -> Path:
        if table not in REPLACED_TABLES + APPEND_TABLES:
            raise ValueError(f"unknown results table {table!r}")
        return self.root / table

    def replace(self, table: str, frame: pl.DataFrame, *, checkpoint: str, suite: str) -> None:
        """Write the rows of one (checkpoint, suite), replacing what was there for that pair only."""
        if table not in REPLACED_TABLES:
            raise ValueError(f"{table!r} is not replaced per partition")
        if set(frame["checkpoint"].unique().to_list()) - {checkpoint} or set(frame["suite"].unique().to_list()) - {suite}:
            raise ValueError(f"rows for {table} must all belong to checkpoint {checkpoint!r}, suite {suite!r}")
        replace_rows(self.table_path(table), frame, f"checkpoint = {quote(checkpoint)} AND suite = {quote(suite)}")

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if table not in APPEND_TABLES:
            raise ValueError(f"{table!r} is not append-only")
        path = self.table_path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = frame.to_arrow()
        commit_with_retries(
            path, lambda: write_deltalake(str(path), data, mode="append", partition_by=["checkpoint"], schema_mode="merge")
        )

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
    ) -> None:
        """Append one gate decision (a rule's verdict on one suite, the promotion outcome with suite '*', or a
        production move). ``extra`` fills the other columns of :data:`GATE_DECISION_SCHEMA`."""
        unknown = set(extra or {}) - set(GATE_DECISION_SCHEMA)
        if unknown:
            raise ValueError(f"gate_decisions has no column(s) {sorted(unknown)}")
        row = dict.fromkeys(GATE_DECISION_SCHEMA) | {
            "checkpoint": checkpoint, "suite": suite, "rule": rule, "outcome": outcome, "blocking": blocking,
            "observed": observed, "ci_low": ci_low, "ci_high": ci_high, "threshold": threshold, "n": n,
            "reason": reason, "policy_version": policy_version, "policy_hash": policy_hash, "run_id": run_id,
            "decided_at": datetime.now(UTC),
        } | (extra or {})  # fmt: skip
        self.append("gate_decisions", pl.DataFrame([row], schema=GATE_DECISION_SCHEMA))

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
        path = self.table_path(table)
        if not DeltaTable.is_deltatable(str(path)):
            return pl.DataFrame()
        scan = pl.scan_delta(str(path))
        if checkpoint is not None:
            scan = scan.filter(pl.col("checkpoint") == checkpoint)
        if suite is not None:
            scan = scan.filter(pl.col("suite") == suite)
        return scan.collect()
