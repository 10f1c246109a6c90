"""A key → JSON-object table in one SQLite file (WAL mode, one connection shared by threads): the embedded
on-disk form of the caches that need no Delta table (sandbox executions, judge verdicts). Rows of another
``schema`` version are not read, so a cache whose entries changed shape starts empty instead of misreading."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any


class SqliteJsonStore:
    """Table ``table`` of ``(key TEXT PRIMARY KEY, schema INTEGER, <value_column> TEXT)``; a key written twice
    keeps the later value."""

    def __init__(self, path: str | Path, *, table: str, value_column: str, schema: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._table, self._value, self._schema = table, value_column, schema
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                f" key TEXT PRIMARY KEY, schema INTEGER NOT NULL, {value_column} TEXT NOT NULL)"
            )

    def get_many(self, keys: Collection[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, {self._value} FROM {self._table} WHERE schema = ? AND key IN ({marks})",
                    [self._schema, *chunk],
                ).fetchall()
                for key, text in rows:
                    found[key] = json.loads(text)
        return found

    def put_many(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        rows = [(key, self._schema, json.dumps(dict(value), sort_keys=True)) for key, value in values.items()]
        with self._lock, self._conn:
            self._conn.executemany(
                f"INSERT OR REPLACE INTO {self._table} (key, schema, {self._value}) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {self._table}").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
