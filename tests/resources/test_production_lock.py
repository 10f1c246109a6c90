"""The production lock: a flock serialises one host; a PostgreSQL advisory lock (the real server at
127.0.0.1:5432) serialises hosts sharing results on object storage. Each test tries to get two deciders into
the critical section at once."""

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from s3_testing import S3Server, s3_server

from eval_assets.checkpoints import CheckpointManifest
from resources.checkpoint_registry import CheckpointRegistry
from resources.production_ledger import ProductionIntegrityError, ProductionLedger
from resources.production_lock import (
    LOCK_URL_ENV,
    FileLock,
    PostgresAdvisoryLock,
    ProductionLock,
    ProductionLockTimeout,
    production_lock,
)
from resources.results_store import ResultsStore
from resources.table_location import TableLocation

PG_DSN = (
    f"host={os.environ.get('EVALGATE_TEST_PG_HOST', '127.0.0.1')} port={os.environ.get('EVALGATE_TEST_PG_PORT', '5432')} "
    f"user={os.environ.get('EVALGATE_TEST_PG_USER', 'postgres')} dbname={os.environ.get('EVALGATE_TEST_PG_DB', 'test')}"
)


@pytest.fixture(scope="module")
def postgres() -> str:
    import psycopg2

    try:
        psycopg2.connect(PG_DSN, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL unreachable ({PG_DSN}): {str(exc).strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return PG_DSN


def _max_inside(make_lock: Callable[[], ProductionLock], deciders: int = 4, hold_s: float = 0.15) -> int:
    """How many deciders were ever inside the lock at once (each with its own lock object, as separate
    processes or hosts would have)."""
    inside = 0
    most = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def decide() -> None:
        nonlocal inside, most
        try:
            with make_lock().held():
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(hold_s)
                with guard:
                    inside -= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=decide) for _ in range(deciders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return most


def test_file_lock_serialises_deciders_on_one_host(tmp_path: Path) -> None:
    assert _max_inside(lambda: FileLock(tmp_path / "production.lock")) == 1
    assert _max_inside(lambda: FileLock(tmp_path / f"{threading.get_ident()}.lock")) > 1, "the check can fail"


def test_file_lock_waits_with_a_deadline(tmp_path: Path) -> None:
    holder = FileLock(tmp_path / "production.lock")
    waiter = FileLock(tmp_path / "production.lock", timeout_s=0.2)
    with (
        holder.held(),
        pytest.raises(ProductionLockTimeout, match=r"production.lock was held"),
        waiter.held(),
    ):
        pass


def test_advisory_lock_serialises_deciders_across_connections(postgres: str) -> None:
    scope = f"s3://bucket/tables-{time.time_ns()}"
    assert _max_inside(lambda: PostgresAdvisoryLock(postgres, scope)) == 1
    other = [f"s3://bucket/other-{i}-{time.time_ns()}" for i in range(4)]
    assert _max_inside(lambda: PostgresAdvisoryLock(postgres, other.pop())) > 1, "other results, other lock"


def test_advisory_lock_times_out_and_is_released_when_its_holder_goes(postgres: str) -> None:
    import psycopg2

    lock = PostgresAdvisoryLock(postgres, f"s3://bucket/t-{time.time_ns()}", timeout_s=0.3)
    holder = psycopg2.connect(postgres)  # another host's session, which then dies
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (lock.key,))
    with pytest.raises(ProductionLockTimeout, match=r"held by another session"), lock.held():
        pass
    holder.close()
    with lock.held():
        pass


def test_lock_choice_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    for name in (LOCK_URL_ENV, "EVALGATE_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(production_lock(tmp_path / "l", str(tmp_path / "tables")), FileLock)
    with caplog.at_level(logging.WARNING, logger="resources.production_lock"):
        assert isinstance(production_lock(tmp_path / "l", "s3://b/only-this-host", remote=True), FileLock)
    assert "serialises promotions on this host only" in caplog.text
    monkeypatch.setenv(LOCK_URL_ENV, "postgresql://evalgate@db.internal:5432/dagster")
    assert isinstance(production_lock(tmp_path / "l", "s3://b/t", remote=True), PostgresAdvisoryLock)
    monkeypatch.delenv(LOCK_URL_ENV)
    for name, value in (
        ("EVALGATE_INSTANCE", "postgres"),
        ("EVALGATE_PG_HOST", "db"),
        ("EVALGATE_PG_PORT", "5432"),
        ("EVALGATE_PG_USER", "u"),
        ("EVALGATE_PG_DB", "d"),
    ):
        monkeypatch.setenv(name, value)
    chosen = production_lock(tmp_path / "l", "s3://b/t", remote=True)
    assert isinstance(chosen, PostgresAdvisoryLock) and chosen.dsn == "host=db port=5432 user=u dbname=d"
    for url in ("postgresql://u:secret@db/d", "host=db password=secret"):
        with pytest.raises(ValueError, match="carries a password"):
            production_lock(tmp_path / "l", "s3://b/t", url=url)


# -- two homes sharing one history on S3 ------------------------------------------------------------------
def _hash(ch: str) -> str:
    return "sha256:" + ch * 64


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Server, TableLocation]]:
    with s3_server(monkeypatch, tmp_path) as server:
        yield server, TableLocation(server.bucket("shared") + "/tables", server.options)


def _home(root: Path, tables: TableLocation, lock: ProductionLock | None = None) -> ProductionLedger:
    registry = CheckpointRegistry(root / "registry")
    for name in "abcdef":
        registry.add(
            CheckpointManifest(
                name=name,
                path=f"/w/{name}",
                format="hf",
                backend="transformers",
                model_hash=_hash(name),
                tokenizer_hash=_hash("0"),
                source="test",
                registered_at=datetime.now(UTC).isoformat(),
            )
        )
    return ProductionLedger(
        ResultsStore(tables), registry, root / "production.json", lock or FileLock(root / "lock")
    )


def _move(ledger: ProductionLedger, checkpoint: str, predecessor: str | None) -> Any:
    return ledger.move(
        checkpoint=checkpoint,
        model_hash=_hash(checkpoint),
        expected_predecessor=predecessor,
        authority_kind="gate",
        authority="run",
        actor="test",
        reason="test",
        policy_version=1,
        policy_hash="p",
        run_id="r",
    )


def test_homes_sharing_results_see_one_production(
    tmp_path: Path, shared: tuple[S3Server, TableLocation]
) -> None:
    _, tables = shared
    host_a, host_b = _home(tmp_path / "a", tables), _home(tmp_path / "b", tables)
    _move(host_a, "a", None)
    assert host_b.head() is not None and host_b.head().checkpoint == "a"  # type: ignore[union-attr]
    _move(host_a, "b", "a")  # host b's production.json now shows an earlier move: stale, rebuilt
    assert host_b.head().checkpoint == "b"  # type: ignore[union-attr]
    assert json.loads((tmp_path / "b" / "production.json").read_text())["checkpoint"] == "b"
    view = json.loads((tmp_path / "b" / "production.json").read_text())
    (tmp_path / "b" / "production.json").write_text(json.dumps(view | {"checkpoint": "c"}))
    with pytest.raises(ProductionIntegrityError, match="edited by hand"):
        host_b.head()


def test_promotions_from_two_hosts_are_serialised_by_the_advisory_lock(
    tmp_path: Path, postgres: str, shared: tuple[S3Server, TableLocation]
) -> None:
    """Two hosts (own homes, own flocks) decide at once against the shared history: under the advisory lock
    each decides on the production the other left, so every decision's move goes through."""
    _, tables = shared
    hosts = [_home(tmp_path / f"h{i}", tables, PostgresAdvisoryLock(postgres, tables.uri)) for i in range(2)]
    _move(hosts[0], "a", None)
    errors = _promote_at_once(hosts, "bc")
    assert not errors, errors
    moves = hosts[0].moves()
    assert [m["sequence"] for m in moves] == [1, 2, 3]
    assert moves[2]["predecessor"] == moves[1]["checkpoint"], "the second decision saw the first's move"
    # Each host on its own flock: both decide against the same production; the history's compare-and-swap
    # refuses the second move (nothing is promoted on stale evidence, but a decision is wasted).
    flocked = [_home(tmp_path / f"f{i}", tables) for i in range(2)]
    errors = _promote_at_once(flocked, "de")
    assert [type(e).__name__ for e in errors] == ["ProductionMoveError"]
    assert len(hosts[0].moves()) == 4


def _promote_at_once(hosts: list[ProductionLedger], candidates: str) -> list[BaseException]:
    errors: list[BaseException] = []

    def promote(ledger: ProductionLedger, candidate: str) -> None:
        try:
            with ledger.locked():
                head = ledger.head()
                time.sleep(0.3)  # the comparison against that production
                _move(ledger, candidate, head.checkpoint if head else None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(hosts[i], c)) for i, c in enumerate(candidates)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors
