"""Scores kept per profile: ``scores_by_profile`` and ``item_scores_by_profile``, Delta tables partitioned by
checkpoint and replaced per (checkpoint, suite, profile).

``scores`` and ``item_scores`` (:mod:`resources.results_store`) hold a checkpoint's latest scores on a suite,
whatever profile made them, so evaluating production on a grown profile replaces its earlier ones. These tables
keep each profile's scores beside the others, with the suite code version they were made with, so the scores a
comparison was made against stay queryable, and a candidate evaluated on an earlier profile can still be
compared with production's scores of that profile (same code version, same weights).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

log = logging.getLogger(__name__)

TABLES = ("scores_by_profile", "item_scores_by_profile")
#: Attempts at a write that loses commit races to concurrent writers (or the table's creation to another).
MAX_ATTEMPTS = 30


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ProfileResults:
    def __init__(self, root: Path) -> None:
        self.root = root

    def table_path(self, table: str) -> Path:
        if table not in TABLES:
            raise ValueError(f"unknown profile results table {table!r}; one of {TABLES}")
        return self.root / table

    def replace(self, table: str, frame: pl.DataFrame, *, checkpoint: str, suite: str, profile: str) -> None:
        """Write the rows of one (checkpoint, suite, profile), replacing what was there for that triple only."""
        for column, value in (("checkpoint", checkpoint), ("suite", suite), ("profile", profile)):
            if column not in frame.columns or set(frame[column].unique().to_list()) - {value}:
                raise ValueError(f"rows for {table} must all have {column} {value!r}")
        path = self.table_path(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        predicate = f"checkpoint = {_quote(checkpoint)} AND suite = {_quote(suite)} AND profile = {_quote(profile)}"
        data = frame.to_arrow()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                if DeltaTable.is_deltatable(str(path)):
                    write_deltalake(
                        str(path), data, mode="overwrite", predicate=predicate, partition_by=["checkpoint"],
                        schema_mode="merge",
                    )  # fmt: skip
                else:
                    write_deltalake(str(path), data, mode="append", partition_by=["checkpoint"])
                return
            except (CommitFailedError, DeltaError) as exc:
                if attempt == MAX_ATTEMPTS:
                    raise
                log.debug("writing %s lost a commit race (%s); attempt %d", path, exc, attempt)
                time.sleep(random.uniform(0, 0.05 * attempt))

    def read(
        self, table: str, *, checkpoint: str | None = None, suite: str | None = None, profile: str | None = None
    ) -> pl.DataFrame:
        path = self.table_path(table)
        if not DeltaTable.is_deltatable(str(path)):
            return pl.DataFrame()
        scan = pl.scan_delta(str(path))
        for column, value in (("checkpoint", checkpoint), ("suite", suite), ("profile", profile)):
            if value is not None:
                scan = scan.filter(pl.col(column) == value)
        return scan.collect()
