"""Which checkpoint is in production, derived from an append-only, hash-chained history of moves.

Every move of production (the first baseline, a promotion by the gate, an override record) is one row of
``gate_decisions`` with ``rule = "production_move"``: the checkpoint, its model hash, its predecessor, the
authority (the gate's run id, or the override file's path and hash), who did it and why. Each row carries
``chain_hash = sha256(previous chain_hash, the row's fields)``, so an edited, dropped or reordered row breaks
the chain and is refused. ``production.json`` is only a readable view written after each move; a hand edit of
it, or of the registry's manifest of the production checkpoint, is detected and refused as well.

Moves are serialised by the production lock held while the caller decides and moves
(:meth:`ProductionLedger.locked`; a ``flock`` on the local home, or a PostgreSQL advisory lock across hosts:
:mod:`resources.production_lock` says which guarantee holds where), and a move states the predecessor it
expects (compare-and-swap), so two candidates compared against the same production cannot both be promoted.
The move's row is committed only if no row holds its sequence number (a Delta ``MERGE``, atomic on the table
itself), so even writers under different locks never fork the history: the later one is refused.

With results on object storage the history is shared by several homes, each with its own ``production.json``:
a view that shows an *earlier* move of the verified history is stale (another host moved production), and is
rebuilt; a view that shows no move of the history is still refused as a hand edit.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from eval_assets.hashing import hash_value
from resources.checkpoint_registry import CheckpointRegistry
from resources.production_lock import FileLock, ProductionLock
from resources.results_store import ResultsStore

MOVE_RULE = "production_move"
GENESIS = "sha256:" + "0" * 64

Authority = Literal["baseline", "gate", "override"]


class ProductionIntegrityError(RuntimeError):
    """The production history, its pointer file or the production checkpoint's manifest was altered by hand."""


class ProductionMoveError(ValueError):
    """A move was refused (another move got there first, or the move is not allowed); the message says why."""


@dataclass(frozen=True)
class ProductionHead:
    """The current production checkpoint, as the history says."""

    checkpoint: str
    model_hash: str
    sequence: int
    predecessor: str | None
    authority_kind: str
    authority: str
    actor: str
    reason: str
    moved_at: str
    chain_hash: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _link(previous: str, fields: dict[str, object]) -> str:
    return hash_value({"previous": previous, "move": fields})


def _move_fields(row: dict[str, object]) -> dict[str, object]:
    """The fields of a move row that the chain covers."""
    keys = (
        "checkpoint",
        "model_hash",
        "predecessor",
        "authority_kind",
        "authority",
        "actor",
        "reason",
        "sequence",
    )
    return {key: row.get(key) for key in keys} | {"moved_at": str(row.get("moved_at"))}


def _head(row: dict[str, object]) -> ProductionHead:
    return ProductionHead(
        checkpoint=str(row["checkpoint"]), model_hash=str(row["model_hash"]), sequence=int(str(row["sequence"])),
        predecessor=None if row.get("predecessor") is None else str(row["predecessor"]),
        authority_kind=str(row["authority_kind"]), authority=str(row["authority"]), actor=str(row["actor"]),
        reason=str(row["reason"]), moved_at=str(row["moved_at"]), chain_hash=str(row["chain_hash"]),
    )  # fmt: skip


class ProductionLedger:
    """Reads and appends production moves; the current production is the head of a verified chain."""

    def __init__(
        self,
        results: ResultsStore,
        registry: CheckpointRegistry,
        pointer_file: Path,
        lock_file: Path | ProductionLock,
    ) -> None:
        self.results = results
        self.registry = registry
        self.pointer_file = pointer_file
        self.lock: ProductionLock = FileLock(lock_file) if isinstance(lock_file, Path) else lock_file

    # -- reading -----------------------------------------------------------------------------------------

    def moves(self) -> list[dict[str, object]]:
        """Every move, oldest first, with the chain verified."""
        decisions = self.results.read("gate_decisions")
        if decisions.height == 0 or "chain_hash" not in decisions.columns:
            rows: list[dict[str, object]] = []
        else:
            rows = decisions.filter(pl.col("rule") == MOVE_RULE).sort("sequence").to_dicts()
        previous = GENESIS
        for expected, row in enumerate(rows, start=1):
            if row.get("sequence") != expected:
                raise ProductionIntegrityError(
                    f"the production history in {self.results.table_path('gate_decisions')} is not contiguous "
                    f"(move {expected} is missing or duplicated): it was edited outside evalgate. Restore the "
                    "table from backup; production cannot be derived from a broken history."
                )
            fields = _move_fields(row)
            if row.get("chain_hash") != _link(previous, fields):
                raise ProductionIntegrityError(
                    f"production move {expected} ({row.get('checkpoint')}) does not match its chain hash: the "
                    "history in gate_decisions was edited outside evalgate. Restore the table from backup."
                )
            previous = str(row["chain_hash"])
        return rows

    def head(self) -> ProductionHead | None:
        """The current production, verified against the history's chain, the pointer file and the registry.
        Raises :class:`ProductionIntegrityError` on any mismatch."""
        rows = self.moves()
        if not rows:
            if self.pointer_file.exists():
                raise ProductionIntegrityError(
                    f"{self.pointer_file} names a production checkpoint, but no move was ever recorded: the file "
                    "was written by hand. Production moves only through `evalgate promote --baseline` (first "
                    "time), the gate, or an override record; delete the file and use one of those."
                )
            return None
        head = _head(rows[-1])
        self._verify_pointer(head, rows)
        manifest = self.registry.get(head.checkpoint)
        if manifest.model_hash != head.model_hash:
            raise ProductionIntegrityError(
                f"the registry says production checkpoint {head.checkpoint} is {manifest.model_hash}, but it was "
                f"promoted as {head.model_hash}: {self.registry.root / (head.checkpoint + '.json')} was edited. "
                "Restore the manifest; weights under a registered name must not change."
            )
        return head

    def _verify_pointer(self, head: ProductionHead, rows: list[dict[str, object]]) -> None:
        if not self.pointer_file.is_file():
            self._write_pointer(head)  # a missing view is rebuilt from the history
            return
        try:
            view = json.loads(self.pointer_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ProductionIntegrityError(
                f"{self.pointer_file} is unreadable ({exc}); delete it to rebuild it"
            ) from exc
        expected = self._pointer_view(head)
        if view != expected and self.results.location.is_remote:
            earlier = [self._pointer_view(_head(row)) for row in rows[:-1]]
            if view in earlier:  # another home moved production on the shared history: the view is stale
                self._write_pointer(head)
                return
        if view != expected:
            raise ProductionIntegrityError(
                f"{self.pointer_file} says production is {view.get('checkpoint')!r} ({view.get('model_hash')}), "
                f"but the history says {head.checkpoint!r} ({head.model_hash}, move {head.sequence}): the file was "
                "edited by hand. Production moves only through the gate or an override record; delete the file to "
                "rebuild it from the history."
            )

    def was_production(self, checkpoint: str) -> bool:
        return any(row["checkpoint"] == checkpoint for row in self.moves())

    # -- moving ------------------------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the production lock: decide and move inside it."""
        with self.lock.held():
            yield

    def move(
        self,
        *,
        checkpoint: str,
        model_hash: str,
        expected_predecessor: str | None,
        authority_kind: Authority,
        authority: str,
        actor: str,
        reason: str,
        policy_version: int,
        policy_hash: str,
        run_id: str,
    ) -> ProductionHead:
        """Append a move from ``expected_predecessor`` to ``checkpoint``. Call inside :meth:`locked`. Raises
        :class:`ProductionMoveError` when production is no longer ``expected_predecessor``."""
        rows = self.moves()
        current = str(rows[-1]["checkpoint"]) if rows else None
        if current != expected_predecessor:
            raise ProductionMoveError(
                f"production is {current!r}, not {expected_predecessor!r} as this decision assumed: another move "
                f"got there first. {checkpoint} must be compared against {current!r} before it can be promoted."
            )
        registered = self.registry.get(checkpoint).model_hash
        if registered != model_hash:
            raise ProductionMoveError(
                f"checkpoint {checkpoint} is registered as {registered}, not {model_hash}; nothing was moved"
            )
        previous_chain = str(rows[-1]["chain_hash"]) if rows else GENESIS
        fields: dict[str, object] = {
            "checkpoint": checkpoint, "model_hash": model_hash, "predecessor": current,
            "authority_kind": authority_kind, "authority": authority, "actor": actor, "reason": reason,
            "sequence": len(rows) + 1,
        }  # fmt: skip
        moved_at = datetime.now(UTC)
        fields["moved_at"] = moved_at.isoformat()
        chain = _link(previous_chain, fields)
        appended = self.results.record_decision(
            checkpoint=checkpoint, suite="*", rule=MOVE_RULE, outcome=authority_kind, blocking=False,
            reason=reason, policy_version=policy_version, policy_hash=policy_hash, run_id=run_id,
            extra={
                "model_hash": model_hash, "predecessor": current, "authority_kind": authority_kind,
                "authority": authority, "actor": actor, "sequence": len(rows) + 1, "moved_at": fields["moved_at"],
                "chain_hash": chain,
            },
            unique_on=("rule", "sequence"),
        )  # fmt: skip
        if appended == 0:
            raise ProductionMoveError(
                f"production move {len(rows) + 1} was committed by another writer while {checkpoint} was being "
                f"moved from {current!r}: {checkpoint} must be compared against the new production first"
            )
        head = _head(self.moves()[-1])
        self._write_pointer(head)
        return head

    @staticmethod
    def _pointer_view(head: ProductionHead) -> dict[str, object]:
        return {
            "checkpoint": head.checkpoint, "model_hash": head.model_hash, "sequence": head.sequence,
            "previous": head.predecessor, "authority": f"{head.authority_kind}: {head.authority}",
            "since": head.moved_at, "chain_hash": head.chain_hash,
            "note": "a view of gate_decisions; editing it moves nothing and is refused",
        }  # fmt: skip

    def _write_pointer(self, head: ProductionHead) -> None:
        self.pointer_file.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(
            dir=self.pointer_file.parent, prefix=".production-", suffix=".json"
        )
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(self._pointer_view(head), out, indent=2, sort_keys=True)
        os.replace(staging, self.pointer_file)
