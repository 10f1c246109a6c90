"""Scores kept per profile: ``scores_by_profile`` and ``item_scores_by_profile``, Delta tables partitioned by
checkpoint and replaced per (checkpoint, suite, profile).

``scores`` and ``item_scores`` (:mod:`resources.results_store`) hold a checkpoint's latest scores on a suite,
whatever profile made them, so evaluating production on a grown profile replaces its earlier ones. These tables
keep each profile's scores beside the others, with the suite code version they were made with, so the scores a
comparison was made against stay queryable, and a candidate evaluated on an earlier profile can still be
compared with production's scores of that profile (same code version, same weights).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from resources.results_store import quote, replace_rows

TABLES = ("scores_by_profile", "item_scores_by_profile")


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
        predicate = f"checkpoint = {quote(checkpoint)} AND suite = {quote(suite)} AND profile = {quote(profile)}"
        replace_rows(self.table_path(table), frame, predicate)

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
