"""Where execution results are cached, by execution key: a small protocol and two implementations.

The protocol is per batch (``get_many`` / ``put_many``) so it maps onto a table (Delta in production) as well as
onto a dict. Implementations must be safe to call from several threads: results are stored as they arrive.
Results with status ``error`` (the infrastructure failed, not the program) are never stored, so they are retried.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Collection, Mapping
from os import PathLike
from pathlib import Path
from typing import Protocol

import polars as pl
from deltalake.exceptions import CommitFailedError

from resources.sqlite_json_store import SqliteJsonStore
from resources.table_location import TableLocation
from sandboxes import ExecutionResult


class ExecutionStore(Protocol):
    def get_many(self, keys: Collection[str]) -> dict[str, ExecutionResult]:
        """The stored results of those ``keys`` that have one."""
        ...

    def put_many(self, results: Mapping[str, ExecutionResult]) -> None:
        """Store results by key (a key stored twice keeps the later result)."""
        ...


class InMemoryExecutionStore:
    """A dict behind a lock: tests, and single-process runs that need no persistence."""

    def __init__(self) -> None:
        self._data: dict[str, ExecutionResult] = {}
        self._lock = threading.Lock()

    def get_many(self, keys: Collection[str]) -> dict[str, ExecutionResult]:
        with self._lock:
            return {key: self._data[key] for key in keys if key in self._data}

    def put_many(self, results: Mapping[str, ExecutionResult]) -> None:
        with self._lock:
            self._data.update(results)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class SqliteExecutionStore:
    """One SQLite file (WAL mode): the embedded on-disk cache. Rows are ``(key, result JSON)``."""

    SCHEMA_VERSION = 1

    def __init__(self, path: str | Path) -> None:
        self._rows = SqliteJsonStore(
            path, table="executions", value_column="result", schema=self.SCHEMA_VERSION
        )
        self.path = self._rows.path

    def get_many(self, keys: Collection[str]) -> dict[str, ExecutionResult]:
        return {key: ExecutionResult.from_dict(value) for key, value in self._rows.get_many(keys).items()}

    def put_many(self, results: Mapping[str, ExecutionResult]) -> None:
        self._rows.put_many({key: result.to_dict() for key, result in results.items()})

    def __len__(self) -> int:
        return len(self._rows)

    def close(self) -> None:
        self._rows.close()


class DeltaExecutionStore:
    """A Delta table of ``(key, schema, result JSON)``: the cache where results live on object storage. A key
    written twice keeps the later result (a ``MERGE`` that updates matches and inserts the rest)."""

    SCHEMA_VERSION = SqliteExecutionStore.SCHEMA_VERSION
    SCHEMA = pl.Schema({"key": pl.String(), "schema": pl.Int64(), "result": pl.String()})
    MAX_COMMIT_ATTEMPTS = 30

    def __init__(self, location: TableLocation | str | PathLike[str]) -> None:
        self.location = TableLocation.of(location)
        self._lock = threading.Lock()

    def get_many(self, keys: Collection[str]) -> dict[str, ExecutionResult]:
        wanted = list(dict.fromkeys(keys))
        if not wanted or not self.location.is_table():
            return {}
        rows = (
            pl.scan_delta(self.location.uri, storage_options=self.location.delta_options())
            .filter((pl.col("schema") == self.SCHEMA_VERSION) & pl.col("key").is_in(wanted))
            .select("key", "result")
            .collect()
        )
        return {key: ExecutionResult.from_dict(json.loads(text)) for key, text in rows.iter_rows()}

    def put_many(self, results: Mapping[str, ExecutionResult]) -> None:
        if not results:
            return
        frame = pl.DataFrame(
            {
                "key": list(results),
                "schema": [self.SCHEMA_VERSION] * len(results),
                "result": [json.dumps(r.to_dict(), sort_keys=True) for r in results.values()],
            },
            schema=self.SCHEMA,
        ).to_arrow()
        from deltalake import DeltaTable, write_deltalake

        with self._lock:
            for attempt in range(1, self.MAX_COMMIT_ATTEMPTS + 1):
                try:
                    if not self.location.is_table():
                        self.location.ensure_parent()
                        options = self.location.delta_options()
                        write_deltalake(self.location.uri, frame, storage_options=options)
                        return
                    (
                        DeltaTable(self.location.uri, storage_options=self.location.delta_options())
                        .merge(frame, predicate="t.key = s.key", source_alias="s", target_alias="t")
                        .when_matched_update_all()
                        .when_not_matched_insert_all()
                        .execute()
                    )
                    return
                except CommitFailedError:
                    if attempt == self.MAX_COMMIT_ATTEMPTS:
                        raise
                    time.sleep(random.uniform(0, 0.02 * attempt))

    def __len__(self) -> int:
        if not self.location.is_table():
            return 0
        scan = pl.scan_delta(self.location.uri, storage_options=self.location.delta_options())
        return int(scan.select(pl.len()).collect().item())


def open_execution_store(tables: TableLocation | str | PathLike[str]) -> ExecutionStore:
    """The execution cache under a results location: SQLite in a local folder, a Delta table on object storage."""
    location = TableLocation.of(tables)
    if location.is_remote:
        return DeltaExecutionStore(location / "code_execution_cache")
    return SqliteExecutionStore(location.local_path / "code_execution_cache.sqlite")
