"""Production derived from a hash-chained history: every way of moving it behind the gate's back is refused."""

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import write_deltalake

from eval_assets.checkpoints import CheckpointManifest
from resources.checkpoint_registry import CheckpointRegistry
from resources.production_ledger import (
    ProductionIntegrityError,
    ProductionLedger,
    ProductionMoveError,
)
from resources.results_store import ResultsStore


def _hash(ch: str) -> str:
    return "sha256:" + ch * 64


def _ledger(root: Path) -> ProductionLedger:
    registry = CheckpointRegistry(root / "registry")
    for name, ch in (("a", "a"), ("b", "b"), ("c", "c")):
        registry.add(
            CheckpointManifest(
                name=name,
                path=f"/w/{name}",
                format="hf",
                backend="transformers",
                model_hash=_hash(ch),
                tokenizer_hash=_hash("f"),
                source="test",
                registered_at=datetime.now(UTC).isoformat(),
            )
        )
    return ProductionLedger(
        ResultsStore(root / "tables"), registry, root / "production.json", root / "production.lock"
    )


def _move(ledger: ProductionLedger, checkpoint: str, predecessor: str | None, **kw: Any) -> Any:
    return ledger.move(
        checkpoint=checkpoint, model_hash=kw.pop("model_hash", _hash(checkpoint)), expected_predecessor=predecessor,
        authority_kind=kw.pop("kind", "gate"), authority="gate run r1", actor="test", reason="because",
        policy_version=2, policy_hash="p", run_id="r1",
    )  # fmt: skip


def test_moves_form_a_history_with_predecessors_and_authority(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    assert ledger.head() is None
    _move(ledger, "a", None, kind="baseline")
    head = _move(ledger, "b", "a")
    assert (head.checkpoint, head.predecessor, head.sequence, head.authority_kind) == ("b", "a", 2, "gate")
    assert ledger.head() == head
    assert ledger.was_production("a") and not ledger.was_production("c")
    rows = (
        ResultsStore(tmp_path / "tables").read("gate_decisions").filter(pl.col("rule") == "production_move")
    )
    assert rows.sort("sequence").select("checkpoint", "predecessor", "authority").rows() == [
        ("a", None, "gate run r1"), ("b", "a", "gate run r1"),
    ]  # fmt: skip
    view = json.loads((tmp_path / "production.json").read_text())
    assert view["checkpoint"] == "b" and view["previous"] == "a"


def test_a_move_from_a_stale_production_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _move(ledger, "a", None)
    _move(ledger, "b", "a")
    with pytest.raises(ProductionMoveError, match="production is 'b', not 'a'"):
        _move(ledger, "c", "a")
    with pytest.raises(ProductionMoveError, match="registered as"):
        _move(ledger, "c", "b", model_hash=_hash("d"))
    assert ledger.head().checkpoint == "b"  # type: ignore[union-attr]


def test_a_hand_edited_pointer_file_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _move(ledger, "a", None)
    pointer = tmp_path / "production.json"
    view = json.loads(pointer.read_text())
    pointer.write_text(json.dumps(view | {"checkpoint": "c", "model_hash": _hash("c")}))
    with pytest.raises(ProductionIntegrityError, match="edited by hand"):
        ledger.head()
    pointer.unlink()  # the view is rebuilt from the history
    assert ledger.head().checkpoint == "a"  # type: ignore[union-attr]
    assert json.loads(pointer.read_text())["checkpoint"] == "a"


def test_a_pointer_file_without_any_recorded_move_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    (tmp_path / "production.json").write_text(json.dumps({"checkpoint": "a", "model_hash": _hash("a")}))
    with pytest.raises(ProductionIntegrityError, match="no move was ever recorded"):
        ledger.head()


def test_a_hand_edited_registry_manifest_of_production_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _move(ledger, "a", None)
    manifest = tmp_path / "registry" / "a.json"
    manifest.write_text(manifest.read_text().replace(_hash("a"), _hash("e")))
    with pytest.raises(ProductionIntegrityError, match="was edited"):
        ledger.head()


def test_an_edited_history_row_breaks_the_chain(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _move(ledger, "a", None)
    _move(ledger, "b", "a")
    table = tmp_path / "tables" / "gate_decisions"
    rows = pl.read_delta(str(table))
    forged = rows.with_columns(
        pl.when(pl.col("sequence") == 2).then(pl.lit("c")).otherwise(pl.col("checkpoint")).alias("checkpoint")
    )
    forged = forged.with_columns(
        pl.when(pl.col("sequence") == 2)
        .then(pl.lit(_hash("c")))
        .otherwise(pl.col("model_hash"))
        .alias("model_hash")
    )
    write_deltalake(str(table), forged.to_arrow(), mode="overwrite", partition_by=["checkpoint"])
    (tmp_path / "production.json").unlink()
    with pytest.raises(ProductionIntegrityError, match="chain hash"):
        ledger.head()


def test_a_dropped_history_row_is_detected(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    for name, previous in (("a", None), ("b", "a"), ("c", "b")):
        _move(ledger, name, previous)
    table = tmp_path / "tables" / "gate_decisions"
    kept = pl.read_delta(str(table)).filter(pl.col("sequence") != 2)
    write_deltalake(str(table), kept.to_arrow(), mode="overwrite", partition_by=["checkpoint"])
    with pytest.raises(ProductionIntegrityError, match="not contiguous"):
        ledger.head()


def test_concurrent_promotions_against_one_production_promote_one(tmp_path: Path) -> None:
    """Two gates decide at once, each against production `a`: the lock serialises decide-and-move, and the
    second finds production moved and is refused."""
    _move(_ledger(tmp_path), "a", None)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def promote(candidate: str) -> None:
        ledger = _ledger(tmp_path)  # a separate ledger (and lock file handle) per gate run
        barrier.wait()
        with ledger.locked():
            head = ledger.head()
            assert head is not None
            if head.checkpoint != "a":  # what decide_promotion's evidence check sees
                outcomes[candidate] = f"stale: compared against a, production is {head.checkpoint}"
                return
            _move(ledger, candidate, "a")
            outcomes[candidate] = "promoted"

    threads = [threading.Thread(target=promote, args=(name,)) for name in ("b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values())[0] == "promoted"
    assert sum(value == "promoted" for value in outcomes.values()) == 1
    head = _ledger(tmp_path).head()
    assert head is not None and head.sequence == 2 and head.predecessor == "a"
