"""Results in Delta tables, partitioned by checkpoint, for users to query with polars.

Tables (schemas in README.md): ``predictions``, ``code_executions``, ``item_scores``, ``scores``,
``comparisons`` are replaced per
(checkpoint, suite) on each materialization; ``gate_decisions`` is append-only, the history of every decision.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable, write_deltalake

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
        "run_id": pl.String(),
        "decided_at": pl.Datetime("us", "UTC"),
    }
)

REPLACED_TABLES = ("predictions", "code_executions", "item_scores", "scores", "comparisons")
APPEND_TABLES = ("gate_decisions",)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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
        path = self.table_path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        if DeltaTable.is_deltatable(str(path)):
            write_deltalake(
                str(path),
                frame.to_arrow(),
                mode="overwrite",
                predicate=f"checkpoint = {_quote(checkpoint)} AND suite = {_quote(suite)}",
                partition_by=["checkpoint"],
                schema_mode="merge",
            )
        else:
            write_deltalake(str(path), frame.to_arrow(), mode="append", partition_by=["checkpoint"])

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if table not in APPEND_TABLES:
            raise ValueError(f"{table!r} is not append-only")
        path = self.table_path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(path), frame.to_arrow(), mode="append", partition_by=["checkpoint"], schema_mode="merge")

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
        run_id: str,
        n: int = 0,
        observed: float | None = None,
        ci_low: float | None = None,
        ci_high: float | None = None,
        threshold: float | None = None,
    ) -> None:
        """Append one gate decision (a rule's verdict on one suite, or the promotion outcome with suite '*')."""
        row = {
            "checkpoint": checkpoint, "suite": suite, "rule": rule, "outcome": outcome, "blocking": blocking,
            "observed": observed, "ci_low": ci_low, "ci_high": ci_high, "threshold": threshold, "n": n,
            "reason": reason, "policy_version": policy_version, "run_id": run_id, "decided_at": datetime.now(UTC),
        }  # fmt: skip
        self.append("gate_decisions", pl.DataFrame([row], schema=GATE_DECISION_SCHEMA))

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


class ProductionPointer:
    """Which checkpoint is in production: a small JSON file replaced atomically; every move is also
    recorded in ``gate_decisions``."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def get(self) -> dict[str, Any] | None:
        if not self.file.is_file():
            return None
        value: dict[str, Any] = json.loads(self.file.read_text(encoding="utf-8"))
        return value

    def set(self, checkpoint: str, model_hash: str, reason: str) -> dict[str, Any]:
        record = {
            "checkpoint": checkpoint,
            "model_hash": model_hash,
            "reason": reason,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "previous": (self.get() or {}).get("checkpoint"),
        }
        self.file.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(dir=self.file.parent, prefix=".production-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=2, sort_keys=True)
        os.replace(staging, self.file)
        return record
