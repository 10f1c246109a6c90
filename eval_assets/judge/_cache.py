"""The judge cache: one verdict per (judge id and version, rubric hash, prompt hash, both answers' hashes, order).

Production's answers do not change between candidates, so a candidate whose answer to a prompt equals one already
judged gets that verdict back without a call; a new judge version or rubric misses everything. Only parsed
verdicts are stored: an error (a failed call, an unparseable reply) is tried again by the next run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval_assets.hashing import hash_value, sha256_text

#: Bump when the stored entry's layout changes.
CACHE_SCHEMA = 1


@dataclass(frozen=True)
class JudgeIdentity:
    """Who judges: ``judge_id`` (backend and pinned model id), ``version`` (what else shapes its verdicts: the
    backend's scoring method, its settings), ``model_hash`` (the weights' hash where known: a judge with the
    candidate's or production's weights is refused) and ``family`` (a shared family is flagged as a
    self-preference risk)."""

    judge_id: str
    version: str
    model_hash: str | None
    family: str


def judge_key(
    identity: JudgeIdentity, rubric: str, question: str, candidate: str, opponent: str, order: str
) -> str:
    """The cache key of one ordered judgement."""
    return hash_value(
        {
            "judge": identity.judge_id,
            "judge_version": identity.version,
            "rubric": rubric,
            "prompt": sha256_text(question),
            "candidate": sha256_text(candidate),
            "opponent": sha256_text(opponent),
            "order": order,
        }
    )


@dataclass(frozen=True)
class CachedVerdict:
    position: str  # "A", "B" or "tie"
    rationale: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JudgeCache:
    """One SQLite file (WAL mode) of ``(key, entry JSON)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, schema INTEGER NOT NULL, entry TEXT NOT NULL)"
            )

    def get_many(self, keys: Collection[str]) -> dict[str, CachedVerdict]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CachedVerdict] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, entry FROM verdicts WHERE schema = ? AND key IN ({marks})",
                    [CACHE_SCHEMA, *chunk],
                ).fetchall()
                for key, text in rows:
                    found[key] = CachedVerdict(**json.loads(text))
        return found

    def put_many(self, entries: Mapping[str, CachedVerdict]) -> None:
        rows = [(key, CACHE_SCHEMA, json.dumps(e.to_dict(), sort_keys=True)) for key, e in entries.items()]
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO verdicts (key, schema, entry) VALUES (?, ?, ?)", rows
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
