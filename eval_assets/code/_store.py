"""Where execution results are cached, by execution key: a small protocol and two implementations.

The protocol is per batch (``get_many`` / ``put_many``) so it maps onto a table (Delta in production) as well as
onto a dict. Implementations must be safe to call from several threads: results are stored as they arrive.
Results with status ``error`` (the infrastructure failed, not the program) are never stored, so they are retried.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Protocol

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
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS executions ("
                " key TEXT PRIMARY KEY, schema INTEGER NOT NULL, result TEXT NOT NULL)"
            )

    def get_many(self, keys: Collection[str]) -> dict[str, ExecutionResult]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, ExecutionResult] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, result FROM executions WHERE schema = ? AND key IN ({marks})",
                    [self.SCHEMA_VERSION, *chunk],
                ).fetchall()
                for key, text in rows:
                    found[key] = ExecutionResult.from_dict(json.loads(text))
        return found

    def put_many(self, results: Mapping[str, ExecutionResult]) -> None:
        rows = [
            (key, self.SCHEMA_VERSION, json.dumps(r.to_dict(), sort_keys=True)) for key, r in results.items()
        ]
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO executions (key, schema, result) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
