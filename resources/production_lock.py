"""The lock held while the gate decides and moves production (compare → promote), so two candidates compared
against the same production cannot both be promoted.

Which guarantee holds where:

- :class:`FileLock` (the default): an exclusive ``flock`` on ``<home>/production.lock``. It serialises every
  process on this host that uses this home. With results on object storage shared by several hosts it does
  *not* serialise across hosts; the move's compare-and-swap on the history (``expected_predecessor``) still
  refuses a stale move, but two hosts could each decide against the same production. Use the next one there.
- :class:`PostgresAdvisoryLock`: a session-level ``pg_advisory_lock`` on a PostgreSQL server every host
  reaches (the Dagster instance's database will do), keyed by the results location, so every host writing
  the same results tables queues on one lock. A holder that dies loses its connection and with it the lock.
  Chosen by ``EvalgateHome.production_lock_url`` (or ``$EVALGATE_PRODUCTION_LOCK_URL``), else by the Postgres
  instance settings (``EVALGATE_INSTANCE=postgres`` with ``EVALGATE_PG_*``). The password comes from libpq's
  ``PGPASSWORD`` or ``~/.pgpass``, never from the URL in configuration.

Every wait has a deadline (:data:`LOCK_TIMEOUT_SECONDS`); a lock not obtained by then raises
:class:`ProductionLockTimeout` naming the lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

log = logging.getLogger(__name__)

#: How long a decision waits for the production lock before giving up.
LOCK_TIMEOUT_SECONDS = 900.0
#: A libpq connection string or URL of the server holding the advisory lock (no password: PGPASSWORD/pgpass).
LOCK_URL_ENV = "EVALGATE_PRODUCTION_LOCK_URL"


class ProductionLockTimeout(TimeoutError):
    """The production lock was not obtained in time; the message names the lock and its holder's kind."""


class ProductionLock(Protocol):
    def held(self) -> AbstractContextManager[None]:
        """A context manager: the lock is held inside it."""
        ...

    def describe(self) -> str:
        """Where the lock lives (no secrets)."""
        ...


class FileLock:
    """``flock`` on a file of the local home: serialises the processes of this host."""

    def __init__(self, path: Path, timeout_s: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.path = path
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"flock {self.path} (this host only)"

    @contextmanager
    def held(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.timeout_s
        with self.path.open("a+") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ProductionLockTimeout(
                            f"the production lock {self.path} was held by another process for over "
                            f"{self.timeout_s:.0f} s; is a promotion stuck?"
                        ) from None
                    time.sleep(random.uniform(0.01, 0.05))
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def advisory_key(scope: str) -> int:
    """A signed 64-bit advisory-lock key for ``scope`` (the results location)."""
    digest = hashlib.sha256(f"evalgate-production:{scope}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAdvisoryLock:
    """A session-level advisory lock on PostgreSQL: serialises every host whose results share ``scope``."""

    def __init__(self, dsn: str, scope: str, timeout_s: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.dsn = dsn
        self.scope = scope
        self.key = advisory_key(scope)
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"pg_advisory_lock({self.key}) for {self.scope}"

    def _connect(self) -> Any:
        import psycopg2

        try:
            connection = psycopg2.connect(
                self.dsn, connect_timeout=10, application_name="evalgate-production-lock"
            )
        except psycopg2.OperationalError as exc:
            raise ProductionLockTimeout(
                f"cannot reach the PostgreSQL server of the production lock ({str(exc).strip()}); set "
                "EvalgateHome.production_lock_url (or $EVALGATE_PRODUCTION_LOCK_URL) to a reachable server, "
                "PGPASSWORD or ~/.pgpass for its password"
            ) from exc
        connection.autocommit = True
        return connection

    @contextmanager
    def held(self) -> Iterator[None]:
        connection = self._connect()
        try:
            deadline = time.monotonic() + self.timeout_s
            with connection.cursor() as cursor:
                while True:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                    if cursor.fetchone()[0]:
                        break
                    if time.monotonic() > deadline:
                        raise ProductionLockTimeout(
                            f"{self.describe()} was held by another session for over {self.timeout_s:.0f} s; "
                            "is a promotion stuck? (pg_locks shows the holder)"
                        )
                    time.sleep(random.uniform(0.02, 0.1))
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        finally:
            connection.close()


def _instance_dsn() -> str | None:
    """The Postgres instance's server (``EVALGATE_INSTANCE=postgres`` with ``EVALGATE_PG_*``), if selected."""
    if os.environ.get("EVALGATE_INSTANCE", "").strip().lower() != "postgres":
        return None
    names = {
        "host": "EVALGATE_PG_HOST",
        "port": "EVALGATE_PG_PORT",
        "user": "EVALGATE_PG_USER",
        "dbname": "EVALGATE_PG_DB",
    }
    values = {key: os.environ.get(name) for key, name in names.items()}
    if not all(values.values()):
        return None
    return " ".join(f"{key}={value}" for key, value in values.items())


_warned: set[str] = set()


def _has_password(dsn: str) -> bool:
    if "://" in dsn:
        return urlparse(dsn).password is not None or "password=" in urlparse(dsn).query.lower()
    return "password=" in dsn.lower()


def production_lock(
    lock_file: Path, scope: str, *, url: str | None = None, remote: bool = False
) -> ProductionLock:
    """The advisory lock on PostgreSQL when a server is configured (``url``, ``$EVALGATE_PRODUCTION_LOCK_URL``,
    or the Postgres instance's), else the ``flock`` on the local home. ``remote`` (results on object storage)
    with no server logs once that the flock serialises this host only."""
    dsn = url or os.environ.get(LOCK_URL_ENV) or _instance_dsn()
    if dsn:
        if _has_password(dsn):
            raise ValueError(
                "the production lock URL carries a password: remove it and set PGPASSWORD or ~/.pgpass instead"
            )
        return PostgresAdvisoryLock(dsn, scope)
    if remote and scope not in _warned:
        _warned.add(scope)
        log.warning(
            "results are on object storage (%s) but no PostgreSQL server is configured for the production lock: "
            "the flock on %s serialises promotions on this host only; set %s for hosts sharing these results",
            scope, lock_file, LOCK_URL_ENV,
        )  # fmt: skip
    return FileLock(lock_file)
