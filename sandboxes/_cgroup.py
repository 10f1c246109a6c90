"""A cgroup per run: the kernel's own accounting of every process a run ever had, reaped or not.

Rlimits are per process and the supervisor's ``/proc`` sampling sees only live processes: children reaped
with ``SIGCHLD`` ignored take their CPU time with them, and kernel memory (socket buffers, tmpfs pages) is in no
process's RSS. A cgroup counts both. Each run gets its own, created by the supervisor before the sandbox starts
and joined by the launcher (``sh``, before it ``exec``\\ s bwrap), so every process of the run is born inside:

- **CPU**: cgroup v2 ``cpu.stat`` ``usage_usec`` / v1 ``cpuacct.usage``: the CPU time of every task that was in
  the cgroup, exited and auto-reaped ones included. The supervisor polls it and kills the run once it exceeds
  the budget; the final value is what the result reports.
- **Memory**: v2 ``memory.max`` (``memory.swap.max`` = 0) / v1 ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes`` where swap accounting exists) at ``Limits.memory_mb``. Both charge anonymous
  memory, page cache, tmpfs/shm pages, and kernel memory: slab, page tables, pipe and socket buffers (v1 charges
  Unix socket buffers as kmem, verified by ``tests/sandboxes/test_sandbox_limits.py``). At the limit the
  kernel reclaims what it can, then its OOM killer kills inside the cgroup; the supervisor sees the OOM kill
  counter and ends the run as ``memory``. An OOM kill when the run's own limit was never reached (a global or
  ancestor OOM) is the host's fault, so the run is an ``error``.

Where the parent comes from: v2 (chosen when the unified hierarchy offers the memory controller): the
caller's own cgroup if its children get the memory controller, else, as root, ``evalgate-sandbox`` under the
hierarchy's root. v1: the caller's own cgroup in the ``memory`` and ``cpuacct`` hierarchies. ``parent=`` names
a delegated cgroup instead, writable by the caller (absolute: from each hierarchy's root; relative: from the
caller's own cgroup in each hierarchy): that is how an unprivileged caller gets per-run cgroups. If none can be created, :func:`detect` raises
:class:`CgroupUnavailableError` and the local sandbox refuses to run unless told to run without (and then says
so in every result's ``sandbox``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: Names of per-run cgroups: ``evalgate-<supervisor pid>-<sequence>``.
RUN_PREFIX = "evalgate-"
#: The v2 parent made under the hierarchy root when the caller's own cgroup cannot have controlled children.
V2_PARENT = "evalgate-sandbox"
#: How far below its limit a cgroup's peak may stay when the limit stopped a charge (charges come in batches).
_SLACK = 2 * 1024 * 1024


class CgroupUnavailableError(RuntimeError):
    """No per-run cgroup can be created here; the message says why."""


@dataclass(frozen=True)
class _Mount:
    root: str  # the mount's root inside its hierarchy (field 4 of mountinfo)
    point: Path
    controllers: frozenset[str]


def _mounts() -> tuple[_Mount | None, list[_Mount]]:
    """The cgroup2 mount (``/sys/fs/cgroup`` preferred) and the v1 mounts, from ``/proc/self/mountinfo``."""
    unified: list[_Mount] = []
    legacy: list[_Mount] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None, []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        point = Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup2":
            unified.append(_Mount(fields[3], point, frozenset()))
        elif fstype == "cgroup":
            legacy.append(_Mount(fields[3], point, frozenset(options)))
    unified.sort(key=lambda m: m.point != Path("/sys/fs/cgroup"))
    return (unified[0] if unified else None), legacy


def _own_paths() -> dict[str, str]:
    """Controller (``""`` for v2) -> this process's cgroup path, from ``/proc/self/cgroup``."""
    paths: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                for name in parts[1].split(",") if parts[1] else [""]:
                    paths[name.removeprefix("name=")] = parts[2]
    except OSError:
        pass
    return paths


def _under(mount: _Mount, path: str) -> Path:
    """The directory of cgroup ``path`` (as /proc/self/cgroup names it) in ``mount``."""
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
        path = path[len(mount.root) :]
    return mount.point / path.strip("/")


def _named(mount: _Mount, own: str, parent: str) -> Path:
    """``parent`` in ``mount``: from the hierarchy's root when absolute, else from this process's cgroup."""
    if parent.startswith("/"):
        return mount.point / parent.strip("/")
    return _under(mount, own) / parent


def _read(path: Path) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def _keyed(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            values[key] = int(value)
    return values


_sequence = itertools.count()
_leftovers: set[Path] = set()
_leftovers_lock = threading.Lock()


@dataclass
class RunCgroup:
    """The cgroup(s) of one run. ``join_files``: where the launcher writes its own pid."""

    version: int
    dirs: tuple[Path, ...]
    memory_dir: Path
    cpu_dir: Path
    join_files: tuple[str, ...]
    memory_limit: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of every task the cgroup ever held."""
        try:
            if self.version == 2:
                return _keyed(_read(self.cpu_dir / "cpu.stat")).get("usage_usec", 0) / 1e6
            return int(_read(self.cpu_dir / "cpuacct.usage")) / 1e9
        except (OSError, ValueError):
            return 0.0

    def memory_events(self) -> tuple[int, bool]:
        """(OOM kills in the cgroup, whether the cgroup's own limit was ever reached)."""
        try:
            if self.version == 2:
                events = _keyed(_read(self.memory_dir / "memory.events"))
                return events.get("oom_kill", 0), events.get("max", 0) > 0 or events.get("oom", 0) > 0
            control = _keyed(_read(self.memory_dir / "memory.oom_control"))
            failcnt = int(_read(self.memory_dir / "memory.failcnt"))
            # failcnt is not raised by every kind of charge (kernel memory on recent kernels), but the peak
            # reaches the limit, within one charge batch, whenever the limit is what stopped a charge.
            return control.get("oom_kill", 0), failcnt > 0 or self.peak_bytes() + _SLACK >= self.memory_limit
        except (OSError, ValueError):
            return 0, False

    def peak_bytes(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(self.memory_dir / name))
        except (OSError, ValueError):
            return 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.dirs:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(line) for line in _read(directory / "cgroup.procs").split())
        return sorted(found)

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (v2: ``cgroup.kill``, atomic against forks)."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                _write(self.memory_dir / "cgroup.kill", "1")
                return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until no process is left (killing any that is), so the CPU total is final."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.pids():
                return True
            if time.monotonic() >= deadline:
                return False
            self.kill()
            time.sleep(0.002)

    def remove(self) -> None:
        """Remove the cgroup directories; any that is still busy is retried at the next run."""
        for directory in self.dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                with _leftovers_lock:
                    _leftovers.add(directory)
        _retry_leftovers()


def _retry_leftovers() -> None:
    with _leftovers_lock:
        for directory in list(_leftovers):
            try:
                directory.rmdir()
            except FileNotFoundError:
                _leftovers.discard(directory)
            except OSError:
                continue
            else:
                _leftovers.discard(directory)


def leftover_run_cgroups() -> set[str]:
    """Run cgroups that could not be removed yet (for tests and diagnostics)."""
    _retry_leftovers()
    with _leftovers_lock:
        return {str(d) for d in _leftovers}


@dataclass(frozen=True)
class CgroupHost:
    """Where this process can create per-run cgroups."""

    version: int
    memory_parent: Path
    cpu_parent: Path

    @property
    def name(self) -> str:
        return f"cgroup-v{self.version}"

    def create(self, memory_limit: int) -> RunCgroup:
        """A fresh, empty cgroup (v1: one per hierarchy) with the memory limit set.

        Raises:
            OSError: the cgroup could not be made or configured (an infrastructure failure).
        """
        name = f"{RUN_PREFIX}{os.getpid()}-{next(_sequence)}"
        memory_dir = self.memory_parent / name
        cpu_dir = self.cpu_parent / name
        dirs = (memory_dir,) if cpu_dir == memory_dir else (memory_dir, cpu_dir)
        made: list[Path] = []
        try:
            for directory in dirs:
                directory.mkdir(mode=0o755)
                made.append(directory)
            if self.version == 2:
                _write(memory_dir / "memory.max", str(memory_limit))
                if (memory_dir / "memory.swap.max").exists():
                    _write(memory_dir / "memory.swap.max", "0")
                _write(memory_dir / "memory.oom.group", "1")
            else:
                _write(memory_dir / "memory.limit_in_bytes", str(memory_limit))
                if (memory_dir / "memory.memsw.limit_in_bytes").exists():
                    _write(memory_dir / "memory.memsw.limit_in_bytes", str(memory_limit))
                with contextlib.suppress(OSError):  # absent or refused under some kernels; memsw covers swap
                    _write(memory_dir / "memory.swappiness", "0")
        except OSError:
            for directory in reversed(made):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        joins = tuple(str(d / "cgroup.procs") for d in dirs)
        return RunCgroup(self.version, dirs, memory_dir, cpu_dir, joins, memory_limit)


def _probe(host: CgroupHost) -> CgroupHost:
    """Create and remove one run cgroup, so a host that cannot is found at open, not at the first run."""
    try:
        run = host.create(64 * 1024 * 1024)
    except OSError as exc:
        raise CgroupUnavailableError(
            f"cannot create a {host.name} cgroup under {host.memory_parent}: {exc.strerror or exc}"
        ) from exc
    run.remove()
    _sweep(host)
    return host


def _sweep(host: CgroupHost) -> None:
    """Remove empty run cgroups left by supervisors that died (their pid is gone)."""
    for parent in {host.memory_parent, host.cpu_parent}:
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith(RUN_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            owner = entry.name[len(RUN_PREFIX) :].split("-", 1)[0]
            if owner.isdigit() and int(owner) != os.getpid() and not Path(f"/proc/{owner}").exists():
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)


def _v2(mount: _Mount, own: str | None, parent: str | None) -> CgroupHost:
    def controllers(directory: Path, name: str) -> set[str]:
        try:
            return set(_read(directory / name).split())
        except OSError:
            return set()

    if parent is not None:
        base = _named(mount, own or "/", parent)
        if "memory" not in controllers(base, "cgroup.subtree_control"):
            with contextlib.suppress(OSError):
                _write(base / "cgroup.subtree_control", "+memory")
        if "memory" not in controllers(base, "cgroup.subtree_control"):
            raise CgroupUnavailableError(f"{base} does not give its children the memory controller")
        return _probe(CgroupHost(2, base, base))
    candidates: list[Path] = []
    if own is not None:
        candidates.append(_under(mount, own))
    if os.geteuid() == 0:
        candidates.append(mount.point / V2_PARENT)
    reasons: list[str] = []
    for base in candidates:
        if base.name == V2_PARENT:
            root = base.parent
            try:
                if "memory" not in controllers(root, "cgroup.subtree_control"):
                    _write(root / "cgroup.subtree_control", "+memory")
                base.mkdir(mode=0o755, exist_ok=True)
                if "memory" not in controllers(base, "cgroup.subtree_control"):
                    _write(base / "cgroup.subtree_control", "+memory")
            except OSError as exc:
                reasons.append(f"{base}: {exc.strerror or exc}")
                continue
        elif "memory" not in controllers(base, "cgroup.subtree_control"):
            reasons.append(f"{base}: its children do not get the memory controller")
            continue
        try:
            return _probe(CgroupHost(2, base, base))
        except CgroupUnavailableError as exc:
            reasons.append(str(exc))
    raise CgroupUnavailableError("cgroup v2: " + "; ".join(reasons or ["no candidate parent"]))


def _v1(legacy: list[_Mount], own: dict[str, str], parent: str | None) -> CgroupHost:
    def hierarchy(controller: str) -> Path:
        mount = next((m for m in legacy if controller in m.controllers), None)
        if mount is None:
            raise CgroupUnavailableError(f"cgroup v1: no {controller} hierarchy is mounted")
        if parent is not None:
            return _named(mount, own.get(controller, "/"), parent)
        return _under(mount, own.get(controller, "/"))

    return _probe(CgroupHost(1, hierarchy("memory"), hierarchy("cpuacct")))


def detect(parent: str | None = None) -> CgroupHost:
    """Where per-run cgroups can be made here (v2 preferred, else v1 memory + cpuacct).

    Raises:
        CgroupUnavailableError: neither works (the message says what was tried).
    """
    if not Path("/proc/self/cgroup").exists():
        raise CgroupUnavailableError("this kernel has no cgroups")
    unified, legacy = _mounts()
    own = _own_paths()
    reasons: list[str] = []
    if unified is not None:
        top: set[str] = set()
        with contextlib.suppress(OSError):
            top = set(_read(unified.point / "cgroup.controllers").split())
        if "memory" in top:
            try:
                return _v2(unified, own.get(""), parent)
            except CgroupUnavailableError as exc:
                reasons.append(str(exc))
        else:
            reasons.append(f"cgroup v2: {unified.point} offers no memory controller")
    if any("memory" in m.controllers for m in legacy):
        try:
            return _v1(legacy, own, parent)
        except CgroupUnavailableError as exc:
            reasons.append(str(exc))
    elif unified is None:
        reasons.append("no cgroup filesystem is mounted")
    raise CgroupUnavailableError("; ".join(reasons))
