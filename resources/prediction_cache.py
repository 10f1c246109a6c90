"""The prediction cache: one row per (model_hash, prompt_hash, sampling_hash), in a Delta table.

Lookups and writes are per item, and writes happen chunk by chunk as work proceeds, so a run killed halfway
resumes with no finished item recomputed and a grown suite only runs its new items. The key starts with the
model hash: one model's outputs are never served as another's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from deltalake import DeltaTable, write_deltalake

SCHEMA = pl.Schema(
    {
        "model_hash": pl.String(),
        "prompt_hash": pl.String(),
        "sampling_hash": pl.String(),
        "suite": pl.String(),
        "item_id": pl.String(),
        "output": pl.String(),
        "engine": pl.String(),
        "created_at": pl.Datetime("us", "UTC"),
    }
)


@dataclass(frozen=True)
class CachedPrediction:
    prompt_hash: str
    item_id: str
    output: str


class PredictionCache:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _exists(self) -> bool:
        return DeltaTable.is_deltatable(str(self.path))

    def lookup(self, model_hash: str, sampling_hash: str, prompt_hashes: Iterable[str]) -> dict[str, str]:
        """Cached outputs by prompt hash, for the given model and sampling params."""
        wanted = list(set(prompt_hashes))
        if not wanted or not self._exists():
            return {}
        frame = (
            pl.scan_delta(str(self.path))
            .filter(
                (pl.col("model_hash") == model_hash)
                & (pl.col("sampling_hash") == sampling_hash)
                & pl.col("prompt_hash").is_in(wanted)
            )
            .select("prompt_hash", "output")
            .unique(subset="prompt_hash", keep="first")
            .collect()
        )
        return dict(zip(frame["prompt_hash"].to_list(), frame["output"].to_list(), strict=True))

    def write(
        self,
        *,
        model_hash: str,
        sampling_hash: str,
        suite: str,
        engine: str,
        entries: list[CachedPrediction],
    ) -> None:
        """Append one chunk of finished items (one Delta commit)."""
        if not entries:
            return
        now = datetime.now(UTC)
        frame = pl.DataFrame(
            {
                "model_hash": [model_hash] * len(entries),
                "prompt_hash": [e.prompt_hash for e in entries],
                "sampling_hash": [sampling_hash] * len(entries),
                "suite": [suite] * len(entries),
                "item_id": [e.item_id for e in entries],
                "output": [e.output for e in entries],
                "engine": [engine] * len(entries),
                "created_at": [now] * len(entries),
            },
            schema=SCHEMA,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(str(self.path), frame.to_arrow(), mode="append")

    def count(self) -> int:
        return pl.scan_delta(str(self.path)).select(pl.len()).collect().item() if self._exists() else 0

    def compact(self) -> None:
        """Merge the small files that chunked appends leave behind."""
        if self._exists():
            DeltaTable(str(self.path)).optimize.compact()
