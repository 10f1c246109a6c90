"""Per-worker unprivileged uids for the local backend when it runs as root.

Each worker runs its programs under its own uid, so ``RLIMIT_NPROC`` (counted per uid) bounds that worker's
processes alone, and no two concurrent sandboxes share an identity. A uid is leased with an exclusive
``flock`` on a file in a root-only directory, which makes leases unique across every process on the host and
releases them automatically if the holder dies. A uid that names an account or owns a running process is
skipped.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import threading
from dataclasses import dataclass
from pathlib import Path

#: First uid of the default range: far above login and system accounts, below the 2^31 boundary.
DEFAULT_UID_BASE = 1_990_000_000
DEFAULT_UID_COUNT = 4096
DEFAULT_LOCK_DIR = Path("/run/evalgate-sandbox")


class UidUnavailableError(RuntimeError):
    """No uid of the range could be leased."""


@dataclass
class UidLease:
    uid: int
    _fd: int

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1

    def __del__(self) -> None:
        self.release()


_local_lock = threading.Lock()


def _uids_in_use() -> set[int]:
    """Real uids of running processes (a uid owned by a live process is not fresh)."""
    used: set[int] = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                used.add(entry.stat().st_uid)
            except OSError:
                continue
    return used


def _account_exists(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def lease_uid(
    base: int = DEFAULT_UID_BASE, count: int = DEFAULT_UID_COUNT, lock_dir: Path = DEFAULT_LOCK_DIR
) -> UidLease:
    """Lease the first free uid of ``[base, base + count)``. Needs root (the lock dir is root-only)."""
    with _local_lock:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = lock_dir.lstat()
        if not lock_dir.is_dir() or lock_dir.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise UidUnavailableError(
                f"{lock_dir} must be a directory owned by us and not group/world-writable"
            )
        in_use = _uids_in_use()
        for uid in range(base, base + count):
            if uid in in_use or _account_exists(uid):
                continue
            path = lock_dir / f"uid-{uid}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return UidLease(uid, fd)
    raise UidUnavailableError(f"all {count} sandbox uids from {base} are leased or in use")
