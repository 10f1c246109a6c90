"""The local backend run by an unprivileged caller (user namespace mode), checked from a root test process.

When the tests already run unprivileged, every other sandbox test exercises this mode and this one is skipped.
An unprivileged caller cannot make cgroups of its own, so the root test delegates one to the user (as an
administrator would) and the child names it with ``cgroup_parent``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyseccomp
import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

CHILD = r"""
import ctypes, json, sys
from sandboxes import IsolationUnavailableError, Limits, LocalSandbox
out = {}
try:
    box = LocalSandbox(cgroup_parent=sys.argv[3])
    box.open()
except IsolationUnavailableError as exc:
    print(json.dumps({"unavailable": str(exc)}))
    sys.exit(0)
with box:
    out["privileged"] = box.privileged
    out["accounting"] = box.accounting
    r = box.run("import os\nprint(os.getuid())")
    out["pass"] = [r.status.value, r.stdout.strip()]
    out["fail"] = box.run("assert False").status.value
    out["timeout"] = box.run("while True: pass", limits=Limits(cpu_seconds=1)).status.value
    out["memory"] = box.run("x = bytearray(2 * 1024**3)").status.value
    out["inet"] = box.run("import socket\ntry:\n    socket.socket()\nexcept PermissionError:\n    print('denied')").stdout.strip()
    out["userns"] = box.run(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint(libc.unshare(0x10000000), ctypes.get_errno())"
    ).stdout.strip()
    bomb = "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(5)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    print(n)\n"
    out["forks"] = box.run(bomb, limits=Limits(cpu_seconds=5, wall_seconds=20, max_processes=8)).stdout.strip()
    daemon = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', TOKEN], start_new_session=True)\n"
    ).replace("TOKEN", repr(sys.argv[1]))
    out["daemon"] = box.run(daemon).status.value
    sleeper = daemon.replace(repr(sys.argv[1]), repr(sys.argv[2])) + "import time\ntime.sleep(60)\n"
    out["timeout_daemon"] = box.run(sleeper, limits=Limits(cpu_seconds=2, wall_seconds=1.5)).status.value
    reaped = (
        "import os, signal, time\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "for _ in range(8):\n    if os.fork() == 0:\n        end = time.process_time() + 0.5\n"
        "        while time.process_time() < end:\n            pass\n        os._exit(0)\n    time.sleep(0.3)\n"
        "try:\n    os.wait()\nexcept ChildProcessError:\n    pass\n"
    )
    r = box.run(reaped, limits=Limits(cpu_seconds=2, wall_seconds=30))
    out["reaped_cpu"] = [r.status.value, r.cpu_seconds]
    hoard = (
        "import socket\npairs = []\nfor _ in range(200):\n    a, b = socket.socketpair()\n"
        "    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)\n    a.setblocking(False)\n"
        "    pairs.append((a, b))\n    try:\n        while True:\n            a.send(b'x' * 65536)\n"
        "    except BlockingIOError:\n        pass\n"
    )
    out["sockets"] = box.run(hoard, limits=Limits(cpu_seconds=10, wall_seconds=30, memory_mb=256)).status.value
    out["mountinfo"] = box.run("print(open('/proc/self/mountinfo').read())").stdout
print(json.dumps(out))
"""


def _skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; under CI (``CI=true``) a missing prerequisite is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def _system_python() -> str | None:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            version = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            if version == "True":
                return candidate
    return None


@pytest.fixture
def delegated_cgroup() -> Iterator[str]:
    """A cgroup owned by nobody under this process's own (relative name), as ``Delegate=yes`` would make."""
    from sandboxes import _cgroup

    host = _cgroup.detect()
    name = "evalgate-delegated-" + secrets.token_hex(4)
    dirs = sorted({host.memory_parent / name, host.cpu_parent / name})
    for directory in dirs:
        directory.mkdir()
        os.chown(directory, NOBODY, NOBODY)
        for entry in ("cgroup.procs", "tasks", "cgroup.subtree_control"):
            if (directory / entry).exists():
                os.chown(directory / entry, NOBODY, NOBODY)
        if host.version == 2:
            (directory / "cgroup.subtree_control").write_text("+memory")
    parent = name
    if host.version == 2:
        unified, _ = _cgroup._mounts()
        assert unified is not None
        parent = "/" + str((host.memory_parent / name).relative_to(unified.point))
    try:
        yield parent
    finally:
        for directory in dirs:
            for child in directory.iterdir():
                if child.is_dir():
                    child.rmdir()
            directory.rmdir()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")
@pytest.mark.skipif(
    os.geteuid() != 0, reason="already unprivileged: the other sandbox tests exercise this mode"
)
def test_unprivileged_caller_gets_the_same_isolation(delegated_cgroup: str) -> None:
    python = _system_python()
    if python is None:
        _skip_or_fail("no system Python >= 3.11 readable by an unprivileged user")
    seccomp_dir = str(Path(pyseccomp.__file__).resolve().parent)
    for path in (REPO / "sandboxes", Path(seccomp_dir) / "pyseccomp.py"):
        if not os.stat(path).st_mode & 0o004:
            _skip_or_fail(f"{path} is not world-readable, so an unprivileged user cannot import it")
    token = "evalgate-unpriv-" + secrets.token_hex(6)
    token2 = "evalgate-unpriv-" + secrets.token_hex(6)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{REPO}:{seccomp_dir}",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
    }
    proc = subprocess.run(
        [python, "-s", "-c", CHILD, token, token2, delegated_cgroup],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unavailable" in report:
        _skip_or_fail(f"unprivileged user namespaces are not available here: {report['unavailable']}")
    assert report["privileged"] is False
    assert report["accounting"].startswith("cgroup-v")
    assert report["pass"] == ["passed", str(NOBODY)]
    assert report["fail"] == "failed"
    assert report["timeout"] == "timeout"
    assert report["memory"] == "memory"
    assert report["inet"] == "denied"
    assert report["userns"] == "-1 1"
    assert 0 < int(report["forks"]) <= 8
    assert report["daemon"] == "passed"
    assert report["timeout_daemon"] == "timeout"
    assert report["reaped_cpu"][0] == "timeout" and report["reaped_cpu"][1] >= 2, report["reaped_cpu"]
    assert report["sockets"] == "memory"
    assert "site-packages" not in report["mountinfo"] and "/opt/python" in report["mountinfo"]
    for marker in (token, token2):
        assert _processes_with(marker) == [], marker


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found
