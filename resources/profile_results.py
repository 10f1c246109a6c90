"""Scores kept per profile: ``scores_by_profile`` and ``item_scores_by_profile``, Delta tables partitioned by
checkpoint and replaced per (checkpoint, suite, profile).

``scores`` and ``item_scores`` (:mod:`resources.results_store`) hold a checkpoint's latest scores on a suite,
whatever profile made them, so evaluating production on a grown profile replaces its earlier ones. These tables
keep each profile's scores beside the others, with the suite code version they were made with, so the scores a
comparison was made against stay queryable, and a candidate evaluated on an earlier profile can still be
compared with production's scores of that profile (same code version, same weights).
"""

from __future__ import annotations

from os import PathLike

import polars as pl

from resources.results_store import quote, read_table, replace_rows
from resources.table_location import TableLocation

TABLES = ("scores_by_profile", "item_scores_by_profile")


class ProfileResults:
    def __init__(self, root: TableLocation | str | PathLike[str]) -> None:
        self.location = TableLocation.of(root)

    def table_path(self, table: str) -> TableLocation:
        if table not in TABLES:
            raise ValueError(f"unknown profile results table {table!r}; one of {TABLES}")
        return self.location.child(table)

    def replace(self, table: str, frame: pl.DataFrame, *, checkpoint: str, suite: str, profile: str) -> None:
        """Write the rows of one (checkpoint, suite, profile), replacing what was there for that triple only."""
        for column, value in (("checkpoint", checkpoint), ("suite", suite), ("profile", profile)):
            if column not in frame.columns or set(frame[column].unique().to_list()) - {value}:
                raise ValueError(f"rows for {table} must all have {column} {value!r}")
        predicate = (
            f"checkpoint = {quote(checkpoint)} AND suite = {quote(suite)} AND profile = {quote(profile)}"
        )
        replace_rows(self.table_path(table), frame, predicate)

    def read(
        self,
        table: str,
        *,
        checkpoint: str | None = None,
        suite: str | None = None,
        profile: str | None = None,
    ) -> pl.DataFrame:
        scan = read_table(self.table_path(table))
        if scan is None:
            return pl.DataFrame()
        for column, value in (("checkpoint", checkpoint), ("suite", suite), ("profile", profile)):
            if value is not None:
                scan = scan.filter(pl.col(column) == value)
        return scan.collect()
