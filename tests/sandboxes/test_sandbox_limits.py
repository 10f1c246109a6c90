"""Attacks on the sandbox's *limits* (not its isolation): CPU hidden in auto-reaped children, memory hidden in
kernel socket buffers and in tmpfs, and what the mount table tells a program about the host.

Each attack is run through the local sandbox and judged from outside it. They all passed unnoticed before the
per-run cgroup (see ``sandboxes/_cgroup.py``): the CPU attack ended ``passed`` reporting about a third of the CPU
it used, the socket attack ended ``passed`` holding 1 GiB of kernel memory under a 512 MiB limit.
"""

from __future__ import annotations

import json
import os
import site
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxes import ExecutionResult, IsolationUnavailableError, Limits, LocalSandbox, Status, _cgroup

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox() as box:
        yield box


def _report(result: ExecutionResult) -> dict[str, object]:
    assert result.status is Status.PASSED, (result.status, result.detail, result.stderr[-2000:])
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# -- CPU -----------------------------------------------------------------------------------------------

#: Twelve children of 0.5 s CPU each, auto-reaped (SIGCHLD ignored), two at a time: no process ever comes near
#: RLIMIT_CPU, the live tree never holds more than ~1 s, and nobody's cutime sees the rest (6 s in all).
REAPED_CHILDREN_BURN = """
import os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

started = 0
for _ in range(6):
    for _ in range(2):
        if os.fork() == 0:
            burn(0.5)
            os._exit(0)
        started += 1
    try:
        os.wait()  # SIGCHLD ignored: blocks until both children are gone, then ECHILD (nothing to collect)
    except ChildProcessError:
        pass
print("burned about", started * 0.5, "s of CPU in children")
"""


def test_cpu_of_auto_reaped_children_counts_against_the_budget(sandbox: LocalSandbox) -> None:
    limits = Limits(cpu_seconds=2, wall_seconds=30)
    result = sandbox.run(REAPED_CHILDREN_BURN, limits=limits)
    assert result.status is Status.TIMEOUT, result
    assert result.cpu_seconds >= limits.cpu_seconds, result
    assert "burned" not in result.stdout


def test_cpu_reported_for_a_passing_run_includes_reaped_children(sandbox: LocalSandbox) -> None:
    program = REAPED_CHILDREN_BURN.replace("range(6)", "range(2)")  # ~2 s of CPU, under a 5 s budget
    result = sandbox.run(program, limits=Limits(cpu_seconds=5, wall_seconds=30))
    assert result.status is Status.PASSED, result
    assert result.cpu_seconds >= 1.8, result


# -- memory ------------------------------------------------------------------------------------------

#: 1 GiB queued in Unix socket pairs: the buffers are kernel memory, in no process's RSS or address space.
SOCKET_BUFFER_HOARD = """
import json, resource, socket, time
pairs, queued = [], 0
chunk = b"x" * 65536
try:
    while queued < (1 << 30) and len(pairs) < 400:
        a, b = socket.socketpair()
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 30)
        a.setblocking(False)
        pairs.append((a, b))
        while queued < (1 << 30):
            try:
                queued += a.send(chunk)
            except BlockingIOError:
                break
except OSError as exc:
    print("stopped:", exc)
time.sleep(1.0)
print(json.dumps({"pairs": len(pairs), "queued_mib": queued >> 20,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10}))
"""


def test_socket_buffers_count_against_the_memory_limit(sandbox: LocalSandbox) -> None:
    result = sandbox.run(SOCKET_BUFFER_HOARD, limits=Limits(cpu_seconds=10, wall_seconds=30, memory_mb=512))
    assert result.status in (Status.MEMORY, Status.KILLED), result
    assert '"queued_mib": 1024' not in result.stdout


def test_tmpfs_counts_against_the_memory_limit(sandbox: LocalSandbox) -> None:
    """256 MiB written to /tmp (room enough on the tmpfs itself) under a 128 MiB memory limit."""
    program = """
with open('/tmp/fill', 'wb') as handle:
    for _ in range(256):
        handle.write(b'x' * (1 << 20))
print('filled')
"""
    limits = Limits(cpu_seconds=10, wall_seconds=30, memory_mb=128, tmpfs_mb=1024, max_file_mb=1024)
    result = sandbox.run(program, limits=limits)
    assert result.status is not Status.PASSED, result
    assert result.status in (Status.MEMORY, Status.FAILED), result
    assert "filled" not in result.stdout


def test_tmpfs_mounts_together_stay_within_the_memory_limit(sandbox: LocalSandbox) -> None:
    """Three capped tmpfs mounts (/tmp, /dev/shm, the work dir) each filled to 60 MiB: 180 MiB under 128."""
    program = """
for path in ('/tmp/a', '/dev/shm/b', '/sandbox/c'):
    with open(path, 'wb') as handle:
        for _ in range(60):
            handle.write(b'x' * (1 << 20))
print('filled')
"""
    limits = Limits(cpu_seconds=10, wall_seconds=30, memory_mb=128, tmpfs_mb=64, max_file_mb=64)
    result = sandbox.run(program, limits=limits)
    assert result.status in (Status.MEMORY, Status.FAILED), result
    assert "filled" not in result.stdout


def test_memory_under_the_limit_still_passes(sandbox: LocalSandbox) -> None:
    program = "block = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(block), 4096):\n    block[i] = 1\n"
    program += "for name in 'abc':\n    open('/tmp/' + name, 'wb').write(b'x' * (12 << 20))\nprint('ok')"
    result = sandbox.run(program, limits=Limits(cpu_seconds=10, wall_seconds=30))
    assert result.status is Status.PASSED, result


# -- what the mount table shows ---------------------------------------------------------------------------

MOUNT_PROBE = """
import json, os, sys
with open('/proc/self/mountinfo') as handle:
    mountinfo = handle.read()
with open('/proc/self/cgroup') as handle:
    cgroup = handle.read()
def listing(path):
    try:
        return sorted(os.listdir(path))[:5]
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({"mountinfo": mountinfo, "cgroup": cgroup, "prefix": sys.prefix, "executable": sys.executable,
                  "path": sys.path, "probe": {p: listing(p) for p in PATHS}}))
"""


def _host_site_dirs() -> list[str]:
    dirs = {*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    dirs |= {
        str(
            Path(sys.base_prefix)
            / "lib"
            / f"python{sys.version_info[0]}.{sys.version_info[1]}"
            / "site-packages"
        )
    }
    return sorted(d for d in dirs if Path(d).is_dir())


def test_mount_table_reveals_neither_host_prefix_nor_site_packages(sandbox: LocalSandbox) -> None:
    host_prefix = str(Path(sys.base_prefix).resolve())
    site_dirs = _host_site_dirs()
    probes = [host_prefix, *site_dirs, str(Path(sys.prefix).resolve())]
    result = sandbox.run(MOUNT_PROBE.replace("PATHS", repr(probes)), limits=Limits(cpu_seconds=5))
    report = _report(result)
    mountinfo = str(report["mountinfo"])
    assert "site-packages" not in mountinfo and "dist-packages" not in mountinfo, mountinfo
    if not host_prefix.startswith("/usr/"):
        assert host_prefix not in mountinfo, mountinfo
        assert not str(report["prefix"]).startswith(host_prefix)
        assert not str(report["executable"]).startswith(host_prefix)
    assert str(Path.home()) not in mountinfo or str(Path.home()) == "/"
    assert not any("site-packages" in p for p in report["path"])  # type: ignore[attr-defined]
    probe = report["probe"]
    assert isinstance(probe, dict)
    for path in site_dirs:
        if not path.startswith("/usr/"):
            assert probe[path] == "FileNotFoundError", (path, probe[path])
    # the cgroup namespace is rooted at the run's own cgroup: no host cgroup path shows
    assert all(line.endswith(":/") for line in str(report["cgroup"]).strip().splitlines()), report["cgroup"]


def test_stdlib_and_subprocesses_work_from_the_staged_interpreter(sandbox: LocalSandbox) -> None:
    program = """
import json, subprocess, sys, sqlite3, ssl, decimal, ctypes, zlib
out = subprocess.run([sys.executable, '-c', 'import sys; print(sys.prefix)'], capture_output=True, text=True)
py3 = subprocess.run(['python3', '-c', 'print(7 * 6)'], capture_output=True, text=True)
print(json.dumps({"child_prefix": out.stdout.strip(), "prefix": sys.prefix, "py3": py3.stdout.strip(),
                  "err": out.stderr[-300:] + py3.stderr[-300:]}))
"""
    report = _report(sandbox.run(program, limits=Limits(cpu_seconds=5, wall_seconds=30)))
    assert report["child_prefix"] == report["prefix"], report
    assert report["py3"] == "42", report


# -- accounting mode --------------------------------------------------------------------------------------


def test_version_names_the_accounting(sandbox: LocalSandbox) -> None:
    assert "+cgroup" in sandbox.version
    assert sandbox.accounting in ("cgroup-v1", "cgroup-v2")


def test_no_cgroup_refuses_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*args: object, **kwargs: object) -> _cgroup.CgroupHost:
        raise _cgroup.CgroupUnavailableError("no cgroup hierarchy is writable here")

    monkeypatch.setattr(_cgroup, "detect", unavailable)
    with pytest.raises(IsolationUnavailableError, match="cgroup"):
        LocalSandbox().open()


def test_no_cgroup_opt_out_says_so_in_every_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*args: object, **kwargs: object) -> _cgroup.CgroupHost:
        raise _cgroup.CgroupUnavailableError("no cgroup hierarchy is writable here")

    monkeypatch.setattr(_cgroup, "detect", unavailable)
    with LocalSandbox(require_cgroup=False) as box:
        result = box.run("print('hi')")
        assert result.status is Status.PASSED
        assert box.accounting == "rlimits"
        assert result.sandbox.endswith("+nocgroup") and "+nocgroup" in box.version


def test_run_cgroups_are_removed_after_each_run(sandbox: LocalSandbox) -> None:
    before = _cgroup.leftover_run_cgroups()
    for program in ("print(1)", "while True: pass", "x = bytearray(2 * 1024**3)"):
        sandbox.run(program, limits=Limits(cpu_seconds=1, wall_seconds=10))
    assert _cgroup.leftover_run_cgroups() <= before
    assert not any(f"evalgate-{os.getpid()}-" in path for path in _cgroup.leftover_run_cgroups())


# -- whose fault: the program's (killed) or ours (error) ------------------------------------------------


def test_seccomp_and_file_size_kills_stay_killed(sandbox: LocalSandbox) -> None:
    """Signals the program brought on itself are its own fault: ``killed``, not ``error``."""
    fsize = "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\nopen('/tmp/big', 'wb').write(b'x' * (8 << 20))"
    result = sandbox.run(fsize, limits=Limits(cpu_seconds=5, max_file_mb=1))
    assert (result.status, "SIGXFSZ" in result.detail) == (Status.KILLED, True), result
    seccomp = "import ctypes\nctypes.CDLL(None).syscall(0x40000000 | 272, 0x10000000)"  # x32 call: bad arch
    if os.uname().machine == "x86_64":
        result = sandbox.run(seccomp, limits=Limits(cpu_seconds=5))
        assert result.status is Status.KILLED, result
    crash = "import ctypes\nctypes.string_at(0)"
    assert sandbox.run(crash, limits=Limits(cpu_seconds=5)).status is Status.KILLED


def test_a_cgroup_that_cannot_be_made_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalSandbox() as box:
        assert box._cgroups is not None

        def refuse(self: _cgroup.CgroupHost, memory_limit: int) -> _cgroup.RunCgroup:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(_cgroup.CgroupHost, "create", refuse)
        result = box.run("print('never runs')")
    assert result.status is Status.ERROR and "cgroup" in result.detail, result
    assert result.stdout == ""


def test_a_broken_launch_chain_is_an_error_not_a_failure() -> None:
    from dataclasses import replace

    with LocalSandbox() as box:
        assert box._staged is not None
        box._staged = replace(box._staged, exe_name="python-that-is-not-there")
        result = box.run("print('never runs')")
    assert result.status is Status.ERROR, result
    assert "launch chain" in result.detail, result


def test_bwrap_killed_by_the_host_is_an_error(sandbox: LocalSandbox) -> None:
    import signal
    import threading
    import time

    results: list[ExecutionResult] = []
    runner = threading.Thread(
        target=lambda: results.append(
            sandbox.run("import time\ntime.sleep(30)", limits=Limits(cpu_seconds=5))
        )
    )
    runner.start()
    deadline = time.monotonic() + 10
    victim = None
    while victim is None and time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)
                with open(f"/proc/{entry}/comm", encoding="ascii", errors="replace") as handle:
                    comm = handle.read().strip()
            except OSError:
                continue
            if comm == "bwrap" and int(fields[1].split()[1]) == os.getpid():
                victim = int(entry)
                break
        time.sleep(0.02)
    assert victim is not None, "no bwrap child seen"
    time.sleep(0.3)
    os.kill(victim, signal.SIGKILL)
    runner.join(timeout=30)
    (result,) = results
    assert result.status is Status.ERROR, result
    assert "bwrap killed by signal 9" in result.detail


def test_oom_verdict_blames_the_run_only_when_it_reached_its_limit() -> None:
    import sandboxes.local as local_module

    class FakeCgroup:
        def __init__(self, kills: int, at_limit: bool) -> None:
            self.events = (kills, at_limit)

        def memory_events(self) -> tuple[int, bool]:
            return self.events

        def peak_bytes(self) -> int:
            return 512 << 20

    limits = Limits()
    assert local_module._oom_verdict(FakeCgroup(0, True), limits) is None  # type: ignore[arg-type]
    status, detail = local_module._oom_verdict(FakeCgroup(1, True), limits)  # type: ignore[arg-type,misc]
    assert status is Status.MEMORY and "512 MiB" in detail
    status, detail = local_module._oom_verdict(FakeCgroup(1, False), limits)  # type: ignore[arg-type,misc]
    assert status is Status.ERROR and "host" in detail
