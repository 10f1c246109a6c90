"""The local backend run by an unprivileged caller (user namespace mode), checked from a root test process.

When the tests already run unprivileged, every other sandbox test exercises this mode and this one is skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
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
    box = LocalSandbox()
    box.open()
except IsolationUnavailableError as exc:
    print(json.dumps({"unavailable": str(exc)}))
    sys.exit(0)
with box:
    out["privileged"] = box.privileged
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
print(json.dumps(out))
"""


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")
@pytest.mark.skipif(
    os.geteuid() != 0, reason="already unprivileged: the other sandbox tests exercise this mode"
)
def test_unprivileged_caller_gets_the_same_isolation() -> None:
    python = _system_python()
    if python is None:
        pytest.skip("no system Python >= 3.11 readable by an unprivileged user")
    seccomp_dir = str(Path(pyseccomp.__file__).resolve().parent)
    for path in (REPO / "sandboxes", Path(seccomp_dir) / "pyseccomp.py"):
        if not os.stat(path).st_mode & 0o004:
            pytest.skip(f"{path} is not world-readable, so an unprivileged user cannot import it")
    token = "evalgate-unpriv-" + secrets.token_hex(6)
    token2 = "evalgate-unpriv-" + secrets.token_hex(6)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{REPO}:{seccomp_dir}",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
    }
    proc = subprocess.run(
        [python, "-s", "-c", CHILD, token, token2],
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
        pytest.skip(f"unprivileged user namespaces are not available here: {report['unavailable']}")
    assert report["privileged"] is False
    assert report["pass"] == ["passed", str(NOBODY)]
    assert report["fail"] == "failed"
    assert report["timeout"] == "timeout"
    assert report["memory"] == "memory"
    assert report["inet"] == "denied"
    assert report["userns"] == "-1 1"
    assert 0 < int(report["forks"]) <= 8
    assert report["daemon"] == "passed"
    assert report["timeout_daemon"] == "timeout"
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
