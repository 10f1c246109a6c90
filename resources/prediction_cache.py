"""The prediction cache: one row per (model_identity, prompt_hash, sampling_hash), in a Delta table.

Lookups and writes are per item, and writes happen chunk by chunk as work proceeds, so a run killed halfway
resumes with no finished item recomputed and a grown suite only runs its new items. The key starts with the
model identity (weights, tokenizer and config): one model's outputs are never served as another's.

Safe for concurrent runs on one home (two ``evalgate evaluate`` processes, the daemon and a CLI run):

- **Creation**: the first writers race to create the table; a writer that loses the commit of version 0 finds
  the table there and goes on.
- **One key, one row, first committed wins**: a chunk is written as a Delta ``MERGE`` that inserts only keys
  not already present. Two writers of the same key conflict at commit; the loser re-runs its merge on the new
  version, finds the key taken and inserts nothing, so the row committed first is the only one. Where the
  loser had computed a different output for a key, that is a *differing duplicate*: it is logged, counted
  (:attr:`CacheWrite.differing`) and never stored, and the run serves the committed output, so every run
  agrees with the cache. Should a table still hold several rows of one key (written by another tool), lookups
  serve the earliest written one and report the key when the rows differ.
- **Pruned lookups**: the table is partitioned by ``model_prefix`` (two hex digits of the model identity) and
  lookups read only that partition's files.
- **Compaction**: :meth:`PredictionCache.compact` merges a partition's small files (each chunk adds one) and
  vacuums files tombstoned past the retention period; predictions call it after a run that wrote to the cache.

A table written by an evalgate before this layout (keyed on the weights hash alone, unpartitioned) is moved
aside to ``<path>.legacy-v1`` on first use: none of its keys can be hit under the new key, and nothing is
deleted. (Local folders only: object-store locations postdate that layout; one found there is refused.)

The table lives at a :class:`~resources.table_location.TableLocation`: a local folder or an object store.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError

from resources.results_store import quote
from resources.table_location import TableLocation, TableLocationError

log = logging.getLogger(__name__)

#: Bump with a change of the table's key or layout; older tables are moved aside (see the module docstring).
CACHE_LAYOUT_VERSION = 2
PARTITION = "model_prefix"
KEY = ("model_identity", "prompt_hash", "sampling_hash")

SCHEMA = pl.Schema(
    {
        PARTITION: pl.String(),
        "model_identity": pl.String(),
        "prompt_hash": pl.String(),
        "sampling_hash": pl.String(),
        "model_hash": pl.String(),
        "suite": pl.String(),
        "item_id": pl.String(),
        "output": pl.String(),
        "engine": pl.String(),
        "writer": pl.String(),
        "created_at": pl.Datetime("us", "UTC"),
    }
)

#: A commit that loses a race is re-run this many times (with jittered backoff) before giving up.
MAX_COMMIT_ATTEMPTS = 60
#: A partition is compacted once it holds at least this many files.
COMPACT_MIN_FILES = 8
#: Files tombstoned by compaction are vacuumed after this long (Delta's default; readers of older versions
#: keep working until then).
VACUUM_RETENTION_HOURS = 168


def model_prefix(model_identity: str) -> str:
    """The partition of a model identity: its first two hex digits."""
    return model_identity.removeprefix("sha256:")[:2]


@dataclass(frozen=True)
class CachedPrediction:
    prompt_hash: str
    item_id: str
    output: str


@dataclass(frozen=True)
class Differing:
    """A key for which two outputs were produced: the committed one is served, the other was not stored."""

    prompt_hash: str
    item_id: str
    committed: str
    other: str


@dataclass
class CacheLookup:
    """Committed outputs by prompt hash, and keys the table holds several differing rows of (earliest served)."""

    outputs: dict[str, str]
    differing: list[Differing] = field(default_factory=list)


@dataclass
class CacheWrite:
    """What a chunk write did: rows inserted, the committed output of every key written (another writer's
    where it committed first), and the keys whose committed output differs from the one offered."""

    inserted: int
    committed: dict[str, str]
    differing: list[Differing] = field(default_factory=list)
    attempts: int = 1


class CacheCommitError(RuntimeError):
    """A cache write kept losing commit races; the message says how often."""


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))


class PredictionCache:
    def __init__(self, path: TableLocation | str | PathLike[str]) -> None:
        self.path = TableLocation.of(path)
        self.writer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._ready = False
        self._layout_checked = False

    # -- the table --------------------------------------------------------------------------------------------
    def _exists(self) -> bool:
        return self.path.is_table()

    def _table(self) -> DeltaTable:
        return self.path.table()

    def _is_current(self, table: DeltaTable) -> bool:
        names = set(table.schema().to_arrow().names)
        return set(SCHEMA.names()) <= names and table.metadata().partition_columns == [PARTITION]

    def _move_legacy_aside(self) -> None:
        """A table of an older layout goes to ``<path>.legacy-v1`` (or a numbered sibling), never deleted.
        Checked once per instance."""
        if self._layout_checked:
            return
        self._layout_checked = True
        if not self._exists() or self._is_current(self._table()):
            return
        if self.path.is_remote:
            raise TableLocationError(
                f"prediction cache {self.path} has an older layout (keyed on the weights hash alone); move or "
                "delete it: its outputs cannot be served under the current key"
            )
        local = self.path.local_path
        target = local.with_name(f"{local.name}.legacy-v1")
        number = 1
        while target.exists():
            number += 1
            target = local.with_name(f"{local.name}.legacy-v1.{number}")
        try:
            os.rename(local, target)
        except FileNotFoundError:
            return  # another process moved it first
        log.warning(
            "prediction cache %s was written by an older evalgate (keyed on the weights hash alone); "
            "its outputs cannot be served under the current key, so it was moved to %s. Delete it when no "
            "longer needed.",
            self.path,
            target,
        )

    def _ensure(self) -> None:
        """The table exists with the current layout; creation races between processes are settled here."""
        if self._ready:
            return
        self._move_legacy_aside()
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            if self._exists():
                self._ready = True
                return
            try:
                self.path.ensure_parent()
                DeltaTable.create(
                    self.path.uri, SCHEMA.to_arrow(), mode="ignore", partition_by=[PARTITION],
                    storage_options=self.path.delta_options(),
                )  # fmt: skip
            except (DeltaError, OSError) as exc:
                # Another writer committed version 0 first; the table is there on the next look.
                log.debug("creating %s lost a race (%s); attempt %d", self.path, exc, attempt)
                _backoff(attempt)
        if not self._exists():
            raise CacheCommitError(f"could not create the prediction cache table at {self.path}")
        self._ready = True

    def _partition_files(self, prefix: str) -> list[str]:
        return self._table().file_uris(file_pruning_predicate=[(PARTITION, "=", prefix)])

    # -- reads -----------------------------------------------------------------------------------------------
    def _rows(self, model_identity: str, sampling_hash: str, prompt_hashes: Sequence[str]) -> pl.DataFrame:
        files = self._partition_files(model_prefix(model_identity))
        columns = ["prompt_hash", "item_id", "output", "created_at", "writer"]
        if not files:
            return pl.DataFrame(schema={name: SCHEMA[name] for name in columns})
        return (
            pl.scan_parquet(files, storage_options=self.path.read_options())
            .filter(
                (pl.col("model_identity") == model_identity)
                & (pl.col("sampling_hash") == sampling_hash)
                & pl.col("prompt_hash").is_in(list(prompt_hashes))
            )
            .select(columns)
            .collect()
        )

    def _resolve(self, rows: pl.DataFrame) -> CacheLookup:
        """One output per key: the earliest written row; keys with differing rows are reported."""
        ordered = rows.sort(["prompt_hash", "created_at", "writer", "output"])
        first = ordered.unique(subset="prompt_hash", keep="first", maintain_order=True)
        outputs = dict(zip(first["prompt_hash"].to_list(), first["output"].to_list(), strict=True))
        differing: list[Differing] = []
        if ordered.height != first.height:
            for prompt_hash, item_id, output in ordered.select(
                "prompt_hash", "item_id", "output"
            ).iter_rows():
                if output != outputs[prompt_hash] and all(d.prompt_hash != prompt_hash for d in differing):
                    differing.append(Differing(prompt_hash, item_id, outputs[prompt_hash], output))
            if differing:
                log.warning(
                    "prediction cache %s holds differing rows for %d key(s) (e.g. item %s); serving the earliest "
                    "written of each",
                    self.path,
                    len(differing),
                    differing[0].item_id,
                )
        return CacheLookup(outputs=outputs, differing=differing)

    def lookup(self, model_identity: str, sampling_hash: str, prompt_hashes: Iterable[str]) -> CacheLookup:
        """Committed outputs by prompt hash, for the given model identity and sampling params."""
        wanted = sorted(set(prompt_hashes))
        if not wanted or not self._exists():
            return CacheLookup(outputs={})
        self._move_legacy_aside()
        if not self._exists():
            return CacheLookup(outputs={})
        return self._resolve(self._rows(model_identity, sampling_hash, wanted))

    # -- writes ----------------------------------------------------------------------------------------------
    def write(
        self,
        *,
        model_identity: str,
        model_hash: str,
        sampling_hash: str,
        suite: str,
        engine: str,
        entries: Sequence[CachedPrediction],
    ) -> CacheWrite:
        """Insert one chunk of finished items whose keys are not yet in the table (one Delta commit)."""
        unique: dict[str, CachedPrediction] = {}
        for entry in entries:
            unique.setdefault(entry.prompt_hash, entry)
        if not unique:
            return CacheWrite(inserted=0, committed={})
        self._ensure()
        prefix = model_prefix(model_identity)
        rows = list(unique.values())
        now = datetime.now(UTC)
        frame = pl.DataFrame(
            {
                PARTITION: [prefix] * len(rows),
                "model_identity": [model_identity] * len(rows),
                "prompt_hash": [e.prompt_hash for e in rows],
                "sampling_hash": [sampling_hash] * len(rows),
                "model_hash": [model_hash] * len(rows),
                "suite": [suite] * len(rows),
                "item_id": [e.item_id for e in rows],
                "output": [e.output for e in rows],
                "engine": [engine] * len(rows),
                "writer": [self.writer] * len(rows),
                "created_at": [now] * len(rows),
            },
            schema=SCHEMA,
        ).to_arrow()
        predicate = (
            f"t.{PARTITION} = {quote(prefix)} AND t.model_identity = s.model_identity "
            "AND t.sampling_hash = s.sampling_hash AND t.prompt_hash = s.prompt_hash"
        )
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            try:
                metrics = (
                    self._table()
                    .merge(frame, predicate=predicate, source_alias="s", target_alias="t")
                    .when_not_matched_insert_all()
                    .execute()
                )
                break
            except CommitFailedError as exc:
                log.debug("cache write lost a commit race (%s); attempt %d", exc, attempt)
                _backoff(attempt)
        else:
            raise CacheCommitError(
                f"prediction cache {self.path}: a chunk of {len(rows)} rows lost {MAX_COMMIT_ATTEMPTS} commit races "
                "in a row; too many concurrent writers?"
            )
        inserted = int(metrics.get("num_target_rows_inserted", 0))
        offered = {e.prompt_hash: e.output for e in rows}
        if inserted == len(rows):
            return CacheWrite(inserted=inserted, committed=offered, attempts=attempt)
        # Some keys were committed by another writer first: theirs is the output; report where it differs.
        committed = self._resolve(self._rows(model_identity, sampling_hash, list(offered))).outputs
        differing = [
            Differing(e.prompt_hash, e.item_id, committed[e.prompt_hash], e.output)
            for e in rows
            if e.prompt_hash in committed and committed[e.prompt_hash] != e.output
        ]
        if differing:
            log.warning(
                "prediction cache %s: %d output(s) differ from the ones another run committed first for the same "
                "key (e.g. item %s of suite %s); the committed ones are kept and served, these were not stored",
                self.path,
                len(differing),
                differing[0].item_id,
                suite,
            )
        missing = sorted(set(offered) - set(committed))
        if missing:  # pragma: no cover - a merge that neither inserted nor found a key
            raise CacheCommitError(
                f"prediction cache {self.path}: keys neither inserted nor present: {missing[:3]}"
            )
        return CacheWrite(inserted=inserted, committed=committed, differing=differing, attempts=attempt)

    # -- maintenance -----------------------------------------------------------------------------------------
    def count(self) -> int:
        if not self._exists():
            return 0
        scan = pl.scan_delta(self.path.uri, storage_options=self.path.delta_options())
        return int(scan.select(pl.len()).collect().item())

    def files(self, model_identity: str) -> list[str]:
        """The data files of a model identity's partition (what a lookup reads)."""
        return self._partition_files(model_prefix(model_identity)) if self._exists() else []

    def compact(self, model_identity: str | None = None, *, min_files: int = 1) -> bool:
        """Merge the small files that chunked writes leave behind (one partition, or all), then vacuum files
        tombstoned past the retention period. Skipped below ``min_files`` files; a compaction that loses
        commit races to concurrent writers is left for the next run (it never fails one). Returns whether it
        compacted."""
        if not self._exists():
            return False
        filters = [(PARTITION, "=", model_prefix(model_identity))] if model_identity is not None else None
        if len(self._table().file_uris(file_pruning_predicate=filters)) < min_files:
            return False
        for attempt in range(1, 4):
            try:
                self._table().optimize.compact(partition_filters=filters)
                break
            except CommitFailedError as exc:
                log.info(
                    "compacting %s lost a race to a concurrent writer (%s); attempt %d",
                    self.path,
                    exc,
                    attempt,
                )
                _backoff(attempt)
        else:
            return False
        try:
            self._table().vacuum(retention_hours=VACUUM_RETENTION_HOURS, dry_run=False)
        except DeltaError as exc:  # pragma: no cover - vacuum is best effort
            log.info("vacuuming %s failed (%s); left for the next run", self.path, exc)
        return True
