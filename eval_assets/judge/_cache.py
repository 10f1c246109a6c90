"""The judge cache: one verdict per (judge id and version, rubric hash, prompt hash, both answers' hashes, order).

Production's answers do not change between candidates, so a candidate whose answer to a prompt equals one already
judged gets that verdict back without a call; a new judge version or rubric misses everything. Only parsed
verdicts are stored: an error (a failed call, an unparseable reply) is tried again by the next run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval_assets.hashing import hash_value, sha256_text
from resources.sqlite_json_store import SqliteJsonStore

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
        self._rows = SqliteJsonStore(path, table="verdicts", value_column="entry", schema=CACHE_SCHEMA)
        self.path = self._rows.path

    def get_many(self, keys: Collection[str]) -> dict[str, CachedVerdict]:
        return {key: CachedVerdict(**value) for key, value in self._rows.get_many(keys).items()}

    def put_many(self, entries: Mapping[str, CachedVerdict]) -> None:
        self._rows.put_many({key: entry.to_dict() for key, entry in entries.items()})

    def close(self) -> None:
        self._rows.close()
