"""The local isolation backend (the embedded default): bubblewrap + setpriv + seccomp + rlimits.

Each run is a fresh sandbox:

- namespaces: new pid, net (loopback only, and no socket but ``AF_UNIX`` may be created), ipc, uts (hostname
  ``sandbox``), cgroup where available; as an unprivileged caller also a user namespace with nested user
  namespaces disabled;
- filesystem: a read-only ``/usr``, the interpreter's executable and standard library only (no site-packages),
  staged by :mod:`._runtime` and bound at ``/opt/python`` so no host path of it shows in the mount table, a
  synthetic ``/etc/passwd``, a new ``/proc`` (only the sandbox's processes), a minimal ``/dev``; size-capped
  private tmpfs mounts at ``/sandbox`` (the work dir, holding ``main.py`` and the given files), ``/tmp`` and
  ``/dev/shm`` are the only writable places; the root is remounted read-only. Nothing of the host's home,
  ``/etc``, ``/tmp`` or the repository is visible;
- identity: as root, ``setpriv`` switches to the worker's own unprivileged uid (leased, see :mod:`._uids`),
  clears groups, empties every capability set including the bounding set and sets no_new_privs; as an
  unprivileged caller the user namespace gives no capabilities to begin with;
- seccomp: the deny-list of :mod:`._seccomp`, loaded by bwrap just before the program's chain executes;
- rlimits via ``prlimit``: address space, CPU seconds, processes (threads count), file size, open files, no
  core dumps; the program runs at a lower scheduling priority (``nice``) so the host stays responsive;
- environment: cleared and replaced by a fixed minimal one (``PYTHONHASHSEED=0`` for reproducible runs);
- process lifetime: pid 1 of the sandbox is a trusted ``sh`` that waits for the program and exits with its
  status; when pid 1 exits, the kernel kills every process left in the pid namespace, setsid daemons
  included. bwrap and pid 1 carry ``--die-with-parent``, so a killed supervisor leaves nothing behind;
- accounting by the kernel: every run gets its own cgroup (:mod:`._cgroup`; v2, or v1 ``memory`` +
  ``cpuacct``), joined by the launcher before bwrap starts. Its CPU total (every process the run ever had,
  auto-reaped children included) decides ``timeout``; its memory limit (``Limits.memory_mb``) charges
  anonymous memory, tmpfs pages, page tables and kernel buffers, socket buffers included, and an OOM kill in it
  ends the run as ``memory``;
- supervision from outside: a wall-clock backstop and the cgroup's CPU and OOM counters; at any limit pid 1
  and bwrap are SIGKILLed and ``run`` returns only once every process of the run's cgroup is gone (as root,
  any process still under the worker's uid is killed too).

If bwrap, setpriv, prlimit or libseccomp is missing, no per-run cgroup can be made, or the self-test at
:meth:`LocalSandbox.open` shows that any layer did not take effect, :class:`IsolationUnavailableError` is
raised. There is no unisolated fallback. ``require_cgroup=False`` runs without a cgroup (rlimits and ``/proc``
sampling only: CPU of auto-reaped children, socket buffers and tmpfs are then *not* bounded by the limits),
and every result's ``sandbox`` then ends in ``+nocgroup``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sandboxes import _cgroup
from sandboxes._cgroup import CgroupHost, CgroupUnavailableError, RunCgroup
from sandboxes._interface import (
    DEFAULT_LIMITS,
    ExecutionResult,
    IsolationUnavailableError,
    Limits,
    Sandbox,
    SandboxError,
    Status,
    validate_relpath,
)
from sandboxes._proctree import tree_pss_bytes, tree_usage
from sandboxes._runtime import SANDBOX_PREFIX, RuntimeUnavailableError, StagedPython, stage_interpreter
from sandboxes._seccomp import POLICY_FINGERPRINT, SeccompUnavailableError, filter_bpf
from sandboxes._status import classify_exit, setup_failure
from sandboxes._uids import DEFAULT_LOCK_DIR, DEFAULT_UID_BASE, DEFAULT_UID_COUNT, UidLease, lease_uid

#: Bump when the isolation recipe changes anything a program can observe or do: it is part of cache keys.
RECIPE_VERSION = "2"

WORKDIR = "/sandbox"
MAIN_FILE = "main.py"
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
_INSTALL_HINT = (
    "Install the isolation tools: `apt-get install -y bubblewrap util-linux libseccomp2` (Debian/Ubuntu) and "
    "`pip install pyseccomp==0.1.2`."
)
_USERNS_HINT = (
    "Run as root, or allow unprivileged user namespaces (Debian: `sysctl kernel.unprivileged_userns_clone=1`; "
    "Ubuntu 24.04+: an AppArmor profile for bwrap or `sysctl kernel.apparmor_restrict_unprivileged_userns=0`; "
    "in Docker: `--security-opt seccomp=unconfined --security-opt apparmor=unconfined` or `--privileged`)."
)
_CONTAINER_HINT = (
    "As root, bwrap creates namespaces directly; inside a container that needs CAP_SYS_ADMIN and no seccomp or "
    "AppArmor profile blocking mount/unshare (Docker: `--privileged`, or `--cap-add SYS_ADMIN --security-opt "
    "seccomp=unconfined --security-opt apparmor=unconfined`)."
)
_CGROUP_HINT = (
    "Run as root (per-run cgroups are made under this process's own cgroup), or pass `cgroup_parent=` a cgroup "
    "delegated to this user (v1: a directory in the memory and cpuacct hierarchies owned by it; v2: one with the "
    "memory controller in its cgroup.subtree_control), or `require_cgroup=False` to run with rlimits only "
    "(then CPU of auto-reaped children, socket buffers and tmpfs are not bounded)."
)
#: How long after the start the supervisor first samples, and how often after that (cgroup counters are two
#: small reads; the /proc tree walk of the no-cgroup mode is dearer).
_WATCH_START_S = 0.05
_WATCH_EVERY_S = 0.05
_WATCH_EVERY_NO_CGROUP_S = 0.1
#: The launcher: joins the run's cgroup(s) (one ``cgroup.procs`` path per argument up to ``--``), then becomes
#: bwrap, so that every process of the run is born inside the cgroup.
_JOIN_SCRIPT = 'for f do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"'
_JOIN_NAME = "evalgate-join"
#: After the sandbox's root process is gone, how long to wait for its output pipes to close.
_DRAIN_GRACE_S = 2.0


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the host binaries the backend drives."""

    bwrap: str
    setpriv: str
    prlimit: str
    nice: str
    sh: str


def find_tools() -> Tools:
    """Locate bwrap, setpriv, prlimit and nice on the system path; raise with the install line if missing."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in ("bwrap", "setpriv", "prlimit", "nice", "sh"):
        path = shutil.which(name, path=_SYSTEM_PATH)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise IsolationUnavailableError(
            f"cannot isolate untrusted code: {', '.join(missing)} not found. {_INSTALL_HINT}"
        )
    return Tools(**found)


def default_interpreter() -> Path:
    """The base interpreter of the running Python (not a venv's shim: sandboxes see no site-packages)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Path(base).resolve()


class _Capture:
    """Keeps the head and a tail of a stream, counting what it drops."""

    def __init__(self, limit: int) -> None:
        self.tail_limit = min(4096, limit // 4)
        self.head_limit = limit - self.tail_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.tail_limit
            if excess > 0:
                self.dropped += excess
                del self.tail[:excess]

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped} bytes dropped ...]\n{tail}"
        return head + tail


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _is_symlink_to(path: Path, target: str) -> bool:
    return path.is_symlink() and os.readlink(path) in {target, "/" + target}


class LocalSandbox(Sandbox):
    """One worker of the local backend. ``privileged=None`` means "as root if we are root".

    Args:
        interpreter: Python to run programs with; its executable and standard library are staged and bound
            read-only at ``/opt/python``. Default: the base interpreter of the running Python.
        privileged: run with a per-worker uid via setpriv (needs root), or inside a user namespace (not root).
        uid: a fixed worker uid (root only); default: lease one from ``[uid_base, uid_base + uid_count)``.
        nice: scheduling niceness of sandboxed programs.
        extra_ro_paths: more host paths to bind read-only at the same place (e.g. a data directory).
        require_cgroup: refuse to open when no per-run cgroup can be made (default). ``False`` runs with rlimits
            and ``/proc`` sampling only, and says so in :attr:`version` and every result (``+nocgroup``).
        cgroup_parent: a cgroup path (from each hierarchy's root) under which to make the per-run cgroups,
            e.g. one delegated to an unprivileged caller. Default: this process's own cgroup.
        runtime_dir: where the staged interpreter is kept (default: ``/var/cache/evalgate-sandbox`` as root).
    """

    backend = "local-bwrap"

    def __init__(
        self,
        *,
        interpreter: str | os.PathLike[str] | None = None,
        privileged: bool | None = None,
        uid: int | None = None,
        uid_base: int = DEFAULT_UID_BASE,
        uid_count: int = DEFAULT_UID_COUNT,
        lock_dir: Path = DEFAULT_LOCK_DIR,
        nice: int = 10,
        extra_ro_paths: Sequence[str | os.PathLike[str]] = (),
        require_cgroup: bool = True,
        cgroup_parent: str | None = None,
        runtime_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._interpreter = Path(interpreter).resolve() if interpreter is not None else default_interpreter()
        self._privileged_request = privileged
        self._fixed_uid = uid
        self._uid_base = uid_base
        self._uid_count = uid_count
        self._lock_dir = lock_dir
        self._nice = nice
        self._extra_ro = [Path(p).resolve() for p in extra_ro_paths]
        self._require_cgroup = require_cgroup
        self._cgroup_parent = cgroup_parent
        self._runtime_dir = Path(runtime_dir) if runtime_dir is not None else None
        self._cgroups: CgroupHost | None = None
        self._cgroup_note = ""
        self._staged: StagedPython | None = None
        self._last_cgroup_cpu: float | None = None
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # one run at a time per worker: its uid's process limit is its own
        self._opened = False
        self._tools: Tools | None = None
        self._lease: UidLease | None = None
        self._privileged = False
        self._uid = 0
        self._gid = 0
        self._seccomp = b""
        self._python_version = ""
        self._static_args: list[str] = []
        self._env: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def version(self) -> str:
        if not self._python_version:
            raise SandboxError("the sandbox version is known only after open()")
        return f"{self.backend}/{RECIPE_VERSION}-{POLICY_FINGERPRINT}+python{self._python_version}+{self._accounting_tag}"

    @property
    def _accounting_tag(self) -> str:
        return f"cgroup{self._cgroups.version}" if self._cgroups is not None else "nocgroup"

    @property
    def accounting(self) -> str:
        """How CPU and memory are accounted: ``cgroup-v1``, ``cgroup-v2``, or ``rlimits`` (no cgroup)."""
        return self._cgroups.name if self._cgroups is not None else "rlimits"

    @property
    def accounting_note(self) -> str:
        """Where per-run cgroups are made, or why none could be (``require_cgroup=False``)."""
        if self._cgroups is not None:
            return f"per-run cgroups under {self._cgroups.memory_parent}"
        return f"no per-run cgroup ({self._cgroup_note}): CPU of reaped children, socket buffers and tmpfs unbounded"

    @property
    def _label(self) -> str:
        return self.version if self._python_version else f"{self.backend}/{RECIPE_VERSION}"

    @property
    def uid(self) -> int:
        """The uid programs run as (host uid as root; the caller's uid otherwise)."""
        return self._uid

    @property
    def privileged(self) -> bool:
        return self._privileged

    def open(self) -> None:
        with self._lock:
            if self._opened:
                return
            if not sys.platform.startswith("linux"):
                raise IsolationUnavailableError(
                    "the local sandbox needs Linux namespaces; use the Modal backend"
                )
            tools = find_tools()
            try:
                self._seccomp = filter_bpf()
            except SeccompUnavailableError as exc:
                raise IsolationUnavailableError(f"cannot isolate untrusted code: {exc}") from exc
            if not self._interpreter.is_file() or not os.access(self._interpreter, os.X_OK):
                raise IsolationUnavailableError(f"interpreter {self._interpreter} is not an executable file")
            try:
                self._staged = stage_interpreter(self._interpreter, self._runtime_dir)
            except RuntimeUnavailableError as exc:
                raise IsolationUnavailableError(f"cannot isolate untrusted code: {exc}") from exc
            try:
                self._cgroups = _cgroup.detect(self._cgroup_parent)
            except CgroupUnavailableError as exc:
                if self._require_cgroup:
                    raise IsolationUnavailableError(
                        f"cannot account CPU and memory per run: {exc}. {_CGROUP_HINT}"
                    ) from exc
                self._cgroups = None
                self._cgroup_note = str(exc)
            is_root = os.geteuid() == 0
            privileged = is_root if self._privileged_request is None else self._privileged_request
            if privileged and not is_root:
                raise IsolationUnavailableError("privileged mode (a per-worker uid) needs root")
            if is_root and not privileged:
                raise ValueError(
                    "as root the local sandbox always runs programs under a per-worker uid; "
                    "privileged=False is for callers that are not root"
                )
            self._tools = tools
            self._privileged = privileged
            if privileged:
                if self._fixed_uid is not None:
                    if self._fixed_uid <= 0:
                        raise ValueError("the worker uid must be an unprivileged uid (> 0)")
                    self._uid = self._fixed_uid
                else:
                    self._lease = lease_uid(self._uid_base, self._uid_count, self._lock_dir)
                    self._uid = self._lease.uid
                self._gid = self._uid
            else:
                if self._fixed_uid is not None:
                    raise ValueError("a fixed worker uid needs privileged mode (root)")
                self._uid, self._gid = os.getuid(), os.getgid()
            self._static_args = self._build_static_args()
            assert self._staged is not None
            self._env = {
                "PATH": f"{self._staged.bin_dir}:{_SYSTEM_PATH}",
                "HOME": WORKDIR,
                "TMPDIR": "/tmp",
                "USER": "sandbox",
                "LOGNAME": "sandbox",
                "LANG": "C.UTF-8",
                "LC_ALL": "C.UTF-8",
                "PYTHONHASHSEED": "0",
                "MALLOC_ARENA_MAX": "2",
            }
            if self._staged.shared_lib:
                self._env["LD_LIBRARY_PATH"] = self._staged.lib_dir
            try:
                self._self_test()
            except BaseException:
                self._release()
                raise
            self._opened = True

    def close(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        self._opened = False

    # -- command line ----------------------------------------------------------------------------------

    def _ro_bind_with_parents(self, path: Path) -> list[str]:
        """Bind ``path`` read-only, creating its missing parents as 0755 (bwrap would copy the host's modes,
        and a 0700 home would hide an interpreter under it from the worker uid)."""
        args: list[str] = []
        for parent in reversed(path.parents):
            if parent == Path("/") or parent == Path("/usr") or Path("/usr") in parent.parents:
                continue
            args += ["--perms", "0755", "--dir", str(parent)]
        return [*args, "--ro-bind", str(path), str(path)]

    def _build_static_args(self) -> list[str]:
        assert self._tools is not None
        args = [
            self._tools.bwrap,
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            # SIGKILL for bwrap itself and for the sandbox's pid 1 when their parent dies: a killed supervisor
            # leaves nothing running (tested).
            "--die-with-parent",
            "--new-session",
            # No bwrap reaper: our own pid 1 (below) keeps --die-with-parent's SIGKILL (a uid change would drop
            # it), so killing bwrap ends the namespace, and bwrap reaps it, so its CPU time reaches wait4().
            "--as-pid-1",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        if self._privileged:
            # Keep only what setpriv needs to switch to the worker uid; setpriv then drops everything.
            args += [
                "--cap-drop",
                "ALL",
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
                "--cap-add",
                "CAP_SETPCAP",
            ]
        else:
            args += ["--unshare-user", "--disable-userns"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / top
            if _is_symlink_to(host, f"usr/{top}"):
                args += ["--symlink", f"usr/{top}", f"/{top}"]
            elif host.is_dir() and not host.is_symlink():
                args += ["--ro-bind", str(host), str(host)]
        args += ["--perms", "0755", "--dir", "/etc", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        assert self._staged is not None
        # The interpreter's own files only (no site-packages), from a stage whose host path says nothing.
        args += ["--perms", "0755", "--dir", str(Path(SANDBOX_PREFIX).parent)]
        args += ["--ro-bind", str(self._staged.host_dir), SANDBOX_PREFIX]
        for path in self._extra_ro:
            args += self._ro_bind_with_parents(path)
        args += ["--proc", "/proc", "--dev", "/dev"]
        return args

    def _passwd(self) -> tuple[bytes, bytes]:
        users = f"root:x:0:0:root:/:/usr/sbin/nologin\nsandbox:x:{self._uid}:{self._gid}:sandbox:{WORKDIR}:/bin/sh\n"
        users += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        groups = f"root:x:0:\nsandbox:x:{self._gid}:\nnogroup:x:65534:\n"
        return users.encode(), groups.encode()

    def _command(self, limits: Limits, files: Mapping[str, bytes], fds: list[int]) -> list[str]:
        """The full argv of one run; opens memfds (appended to ``fds``) that the child must inherit."""
        assert self._tools is not None
        tmpfs = str(limits.tmpfs_mb * 1024 * 1024)
        args = list(self._static_args)
        args += ["--perms", "1777", "--size", tmpfs, "--tmpfs", "/dev/shm"]
        args += ["--perms", "1777", "--size", tmpfs, "--tmpfs", "/tmp"]
        args += ["--perms", "1777", "--size", tmpfs, "--tmpfs", WORKDIR]
        passwd, group = self._passwd()
        for dest, data in (("/etc/passwd", passwd), ("/etc/group", group)):
            fd = _memfd("evalgate-etc", data)
            fds.append(fd)
            args += ["--perms", "0644", "--ro-bind-data", str(fd), dest]
        made_dirs: set[str] = set()
        for name, data in files.items():
            parts = name.split("/")
            for depth in range(1, len(parts)):
                sub = "/".join(parts[:depth])
                if sub not in made_dirs:
                    made_dirs.add(sub)
                    args += ["--perms", "1777", "--dir", f"{WORKDIR}/{sub}"]
            fd = _memfd("evalgate-file", data)
            fds.append(fd)
            args += ["--perms", "0666", "--file", str(fd), f"{WORKDIR}/{name}"]
        seccomp_fd = _memfd("evalgate-seccomp", self._seccomp)
        fds.append(seccomp_fd)
        args += [
            "--remount-ro",
            "/",
            "--remount-ro",
            "/dev",
            "--chdir",
            WORKDIR,
            "--seccomp",
            str(seccomp_fd),
            "--",
            # pid 1 of the sandbox: waits for the program (fork, not exec: `exit $?` comes after it) and exits
            # with its status; when pid 1 exits the kernel kills every process left in the pid namespace.
            self._tools.sh,
            "-c",
            '"$@"; exit $?',
            "sandbox-init",
        ]
        if self._privileged:
            args += [
                self._tools.setpriv,
                f"--reuid={self._uid}",
                f"--regid={self._gid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        memory = limits.memory_mb * 1024 * 1024
        fsize = limits.max_file_mb * 1024 * 1024
        cpu = limits.cpu_rlimit
        args += [self._tools.nice, "-n", str(self._nice)]
        args += [
            self._tools.prlimit,
            f"--as={memory}:{memory}",
            f"--cpu={cpu}:{cpu + 1}",
            f"--nproc={limits.max_processes}:{limits.max_processes}",
            f"--fsize={fsize}:{fsize}",
            "--nofile=512:512",
            "--core=0:0",
            "--",
            self._staged.executable if self._staged is not None else str(self._interpreter),
            "-S",  # no site: no site-packages, nothing of the host's Python environment
            "-s",
            "-B",
            MAIN_FILE,
        ]
        return args

    # -- running ---------------------------------------------------------------------------------------

    def run(
        self,
        program: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        stdin: bytes = b"",
    ) -> ExecutionResult:
        if not self._opened:
            self.open()
        encoded: dict[str, bytes] = {MAIN_FILE: program.encode("utf-8")}
        for name, data in (files or {}).items():
            safe = validate_relpath(name)
            if safe == MAIN_FILE:
                raise ValueError(f"{MAIN_FILE} is the program itself; pass it as `program`")
            encoded[safe] = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self._run_lock:
            return self._execute(encoded, limits, stdin)

    def _execute(self, files: Mapping[str, bytes], limits: Limits, stdin: bytes) -> ExecutionResult:
        start = time.monotonic()
        cgroup: RunCgroup | None = None
        if self._cgroups is not None:
            try:
                cgroup = self._cgroups.create(limits.memory_mb * 1024 * 1024)
            except OSError as exc:
                return self._result(
                    Status.ERROR, None, detail=f"could not create the run's cgroup: {exc}", start=start
                )
        fds: list[int] = []
        status_r, status_w = os.pipe()
        try:
            argv = self._command(limits, files, fds)
            assert self._tools is not None
            bwrap_at = argv.index(self._tools.bwrap) + 1
            argv[bwrap_at:bwrap_at] = ["--json-status-fd", str(status_w)]
            if cgroup is not None:
                argv = [self._tools.sh, "-c", _JOIN_SCRIPT, _JOIN_NAME, *cgroup.join_files, "--", *argv]
            stdin_fd = _memfd("evalgate-stdin", stdin)
            fds.append(stdin_fd)
            proc = subprocess.Popen(
                argv,
                stdin=stdin_fd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=[*fds, status_w],
                env=self._env,
                cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            os.close(status_r)
            if cgroup is not None:
                cgroup.remove()
            return self._result(Status.ERROR, None, detail=f"could not start bwrap: {exc}", start=start)
        finally:
            for fd in fds:
                os.close(fd)
            os.close(status_w)
        try:
            with os.fdopen(status_r, "rb") as status_pipe:
                return self._supervise(proc, limits, start, status_pipe.fileno(), cgroup)
        finally:
            if cgroup is not None:
                cgroup.drain()
                cgroup.remove()

    def _watch(
        self, proc: subprocess.Popen[bytes], limits: Limits, cgroup: RunCgroup | None
    ) -> tuple[float, tuple[Status, str] | None]:
        """(CPU seconds so far, why to stop the run now or None)."""
        if cgroup is not None:
            cpu = cgroup.cpu_seconds()
            if cpu > limits.cpu_seconds:
                return cpu, (
                    Status.TIMEOUT,
                    f"CPU budget of {limits.cpu_seconds:g} s spent by the run's processes",
                )
            return cpu, _oom_verdict(cgroup, limits)
        usage = tree_usage(proc.pid)
        if usage.cpu_seconds > limits.cpu_seconds:
            return usage.cpu_seconds, (
                Status.TIMEOUT,
                f"CPU budget of {limits.cpu_seconds:g} s spent by the process tree",
            )
        memory_limit = limits.memory_mb * 1024 * 1024
        if usage.rss_bytes > memory_limit:
            pss = tree_pss_bytes(usage.pids)
            if pss > memory_limit:
                return usage.cpu_seconds, (
                    Status.MEMORY,
                    f"process tree resident memory {pss / 2**20:.0f} MiB > {limits.memory_mb} MiB",
                )
        return usage.cpu_seconds, None

    def _supervise(
        self,
        proc: subprocess.Popen[bytes],
        limits: Limits,
        start: float,
        status_fd: int,
        cgroup: RunCgroup | None,
    ) -> ExecutionResult:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _Capture(limits.max_output_bytes), _Capture(limits.max_output_bytes)
        status_buf = bytearray()
        kill_reason: tuple[Status, str] | None = None
        peak_cpu = 0.0
        pidfd = os.pidfd_open(proc.pid)
        exited_at: float | None = None
        killed_at: float | None = None
        deadline = start + limits.wall_backstop
        next_watch = start + _WATCH_START_S
        every = _WATCH_EVERY_S if cgroup is not None else _WATCH_EVERY_NO_CGROUP_S
        with selectors.DefaultSelector() as sel:
            streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
            for fd in streams:
                os.set_blocking(fd, False)
                sel.register(fd, selectors.EVENT_READ)
            os.set_blocking(status_fd, False)
            sel.register(status_fd, selectors.EVENT_READ)
            sel.register(pidfd, selectors.EVENT_READ)
            open_pipes = 3
            try:
                while open_pipes or exited_at is None:
                    now = time.monotonic()
                    if exited_at is None and kill_reason is None:
                        if now >= deadline:
                            kill_reason = (
                                Status.TIMEOUT,
                                f"wall-clock backstop of {limits.wall_backstop:g} s reached",
                            )
                        elif now >= next_watch:
                            next_watch = now + every
                            cpu_now, kill_reason = self._watch(proc, limits, cgroup)
                            peak_cpu = max(peak_cpu, cpu_now)
                        if kill_reason is not None:
                            killed_at = now
                            _kill_sandbox(proc.pid, status_buf)
                            if cgroup is not None:
                                cgroup.kill()
                    if exited_at is None and killed_at is not None and now - killed_at > 30:
                        raise SandboxError(f"bwrap (pid {proc.pid}) survived SIGKILL for 30 s")
                    if exited_at is not None:
                        wait_for = exited_at + _DRAIN_GRACE_S - now
                        if wait_for <= 0:
                            break  # a process we cannot see still holds a pipe; it dies with the namespace
                    elif kill_reason is not None:
                        wait_for = 1.0
                    else:
                        wait_for = min(deadline, next_watch) - now
                    for key, _ in sel.select(max(wait_for, 0.0)):
                        fd = int(key.fd)
                        if fd == pidfd:
                            sel.unregister(pidfd)
                            exited_at = time.monotonic()
                            continue
                        try:
                            chunk = os.read(fd, 65536)
                        except BlockingIOError:
                            continue
                        if not chunk:
                            sel.unregister(fd)
                            open_pipes -= 1
                        elif fd == status_fd:
                            status_buf += chunk[: 65536 - len(status_buf)]
                        else:
                            streams[fd].feed(chunk)
            finally:
                os.close(pidfd)
                if exited_at is None:
                    _kill_sandbox(proc.pid, status_buf)
                    if cgroup is not None:
                        cgroup.kill()
                _, wait_status, rusage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(wait_status)
                proc.stdout.close()
                proc.stderr.close()
                if killed_at is not None or exited_at is None:
                    self._await_teardown(status_buf)
        cpu = max(peak_cpu, rusage.ru_utime + rusage.ru_stime)
        if cgroup is not None:
            cgroup.drain()  # every process of the run is gone: the cgroup's CPU total is final
            self._last_cgroup_cpu = cgroup.cpu_seconds()
            cpu = max(cpu, self._last_cgroup_cpu)
            if kill_reason is None:
                # A limit crossed between the last sample and the end still decides the verdict.
                if cpu > limits.cpu_seconds:
                    kill_reason = (
                        Status.TIMEOUT,
                        f"CPU budget of {limits.cpu_seconds:g} s spent by the run's processes",
                    )
                else:
                    kill_reason = _oom_verdict(cgroup, limits)
        wall = time.monotonic() - start
        base = ExecutionResult(
            status=Status.ERROR,
            exit_code=None,
            stdout=out.text(),
            stderr=err.text(),
            stdout_truncated=out.truncated,
            stderr_truncated=err.truncated,
            cpu_seconds=round(cpu, 4),
            wall_seconds=round(wall, 4),
            sandbox=self._label,
        )
        if kill_reason is not None:
            return replace(base, status=kill_reason[0], detail=kill_reason[1])
        code = proc.returncode
        if code < 0:  # bwrap itself was killed, not by us: the host's doing
            return replace(base, detail=f"bwrap killed by signal {-code} (not by a limit of the run)")
        if code == 125 and cgroup is not None and b'"child-pid"' not in status_buf:
            return replace(
                base, exit_code=code, detail="could not join the run's cgroup: " + base.stderr[-2000:]
            )
        if b'"exit-code"' not in status_buf:
            return replace(base, exit_code=code, detail="sandbox setup failed: " + base.stderr[-2000:])
        setup = setup_failure(code, base.stderr)
        if setup:
            return replace(base, exit_code=code, detail=setup)
        status, detail = classify_exit(code, cpu, limits, base.stderr)
        return replace(base, status=status, exit_code=code, detail=detail)

    def _await_teardown(self, status: bytes | bytearray) -> None:
        """After a kill, return only once the sandbox's processes are gone: its pid 1 is a zombie or reaped
        (the kernel reaps the rest of the namespace before pid 1 finishes exiting). As root, also SIGKILL any
        process still running under the worker's uid, which belongs to this worker alone."""
        match = _CHILD_PID.search(status)
        deadline = time.monotonic() + 5.0
        if match is not None:
            stat_path = f"/proc/{int(match.group(1))}/stat"
            while time.monotonic() < deadline:
                try:
                    with open(stat_path, encoding="ascii", errors="replace") as handle:
                        state = handle.read().rsplit(")", 1)[1].split()[0]
                except (OSError, IndexError):
                    break
                if state in {"Z", "X"}:
                    break
                time.sleep(0.005)
        if self._privileged:
            while time.monotonic() < deadline:
                survivors = _live_pids_of_uid(self._uid)
                if not survivors:
                    break
                for pid in survivors:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.005)

    def _result(self, status: Status, code: int | None, *, detail: str, start: float) -> ExecutionResult:
        return ExecutionResult(
            status=status,
            exit_code=code,
            detail=detail,
            wall_seconds=round(time.monotonic() - start, 4),
            sandbox=self._label,
        )

    # -- self-test -------------------------------------------------------------------------------------

    def _self_test(self) -> None:
        """Run a probe in the sandbox and check, from what it reports, that every layer took effect."""
        probe_limits = Limits(cpu_seconds=10, wall_seconds=30, max_processes=8)
        self._last_cgroup_cpu = None
        result = self._execute({MAIN_FILE: _PROBE.encode()}, probe_limits, b"")
        if result.status is not Status.PASSED:
            hint = _USERNS_HINT if not self._privileged else _CONTAINER_HINT
            raise IsolationUnavailableError(
                f"the sandbox could not start ({result.status}: {result.detail or result.stderr[-1000:]}). {hint}"
            )
        try:
            report = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise IsolationUnavailableError(
                f"sandbox self-test gave no report: {result.stdout[-500:]!r}"
            ) from exc
        problems = []
        if (
            report["uid"] != self._uid
            or report["euid"] != self._uid
            or (report["uid"] == 0 and self._privileged)
        ):
            problems.append(f"runs as uid {report['uid']}/{report['euid']}, expected {self._uid}")
        if any(int(report["caps"][k], 16) for k in ("CapPrm", "CapEff", "CapAmb")):
            problems.append(f"capabilities left: {report['caps']}")
        if self._privileged and int(report["caps"]["CapBnd"], 16):
            problems.append(f"bounding set not empty: {report['caps']['CapBnd']}")
        if report["no_new_privs"] != "1":
            problems.append("no_new_privs is not set")
        if report["seccomp"] != "2":
            problems.append("no seccomp filter")
        if report["inet_socket"] != "denied":
            problems.append(f"AF_INET socket: {report['inet_socket']}")
        if report["pid"] > 3:
            problems.append(f"not in a fresh pid namespace (pid {report['pid']})")
        if report["hostname"] != "sandbox":
            problems.append("not in a fresh uts namespace")
        if report["net_devices"] != ["lo"]:
            problems.append(f"network devices visible: {report['net_devices']}")
        if report["root_writable"] or report["shadow_visible"]:
            problems.append("host filesystem exposed")
        if report["nproc"] != probe_limits.max_processes:
            problems.append(f"RLIMIT_NPROC is {report['nproc']}")
        if report["prefix"] != SANDBOX_PREFIX or any("site-packages" in p for p in report["sys_path"]):
            problems.append(
                f"interpreter not the staged one: prefix {report['prefix']}, path {report['sys_path']}"
            )
        if self._cgroups is not None and not self._last_cgroup_cpu:
            problems.append(f"the run's {self._cgroups.name} cgroup accounted no CPU time")
        if problems:
            raise IsolationUnavailableError(
                "sandbox self-test failed, refusing to run: " + "; ".join(problems)
            )
        self._python_version = str(report["python"])


def _live_pids_of_uid(uid: int) -> list[int]:
    """Processes (not zombies) whose real uid is ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 -1").split()[0]) == uid and not fields.get(
            "State", ""
        ).strip().startswith(("Z", "X")):
            found.append(int(entry.name))
    return found


_CHILD_PID = re.compile(rb'"child-pid"\s*:\s*(\d+)')


def _oom_verdict(cgroup: RunCgroup, limits: Limits) -> tuple[Status, str] | None:
    """``memory`` when the kernel's OOM killer ran in the run's cgroup because the run reached its own limit;
    ``error`` when it ran there although the run never reached its limit (host or ancestor memory pressure)."""
    kills, at_limit = cgroup.memory_events()
    if not kills:
        return None
    if at_limit:
        peak = cgroup.peak_bytes()
        return (
            Status.MEMORY,
            f"memory limit of {limits.memory_mb} MiB reached by the run's processes (peak {peak / 2**20:.0f} MiB, "
            "counting tmpfs files and kernel buffers such as sockets): the kernel's OOM killer ended a process",
        )
    return (
        Status.ERROR,
        "a process of the run was killed by the host's OOM killer while the run was under its own memory limit",
    )


def _kill_sandbox(bwrap_pid: int, status: bytes | bytearray) -> None:
    """SIGKILL the sandbox's pid 1 (the kernel then kills its whole pid namespace) and bwrap's process group."""
    match = _CHILD_PID.search(status)
    if match is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(match.group(1)), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(bwrap_pid, signal.SIGKILL)


_PROBE = r"""
import json, os, resource, socket, sys
status = {}
with open("/proc/self/status") as handle:
    for line in handle:
        key, _, value = line.partition(":")
        status[key] = value.strip()
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    inet = "allowed"
except PermissionError:
    inet = "denied"
except OSError as exc:
    inet = f"errno {exc.errno}"
with open("/proc/net/dev") as handle:
    devices = sorted(line.split(":")[0].strip() for line in handle.readlines()[2:])
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "pid": os.getpid(), "hostname": socket.gethostname(),
    "caps": {k: status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
    "no_new_privs": status.get("NoNewPrivs"), "seccomp": status.get("Seccomp"), "inet_socket": inet,
    "net_devices": devices, "root_writable": os.access("/", os.W_OK), "shadow_visible": os.path.exists("/etc/shadow"),
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0], "python": sys.version.split()[0],
    "prefix": sys.prefix, "sys_path": sys.path,
}))
"""


def iter_tools_versions() -> Iterator[tuple[str, str]]:
    """(tool, version line) for the run manifest."""
    tools = find_tools()
    for name, path in (("bwrap", tools.bwrap), ("setpriv", tools.setpriv), ("prlimit", tools.prlimit)):
        try:
            line = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            line = f"unavailable: {exc}"
        yield name, line
