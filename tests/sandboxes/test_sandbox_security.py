"""Attack programs run through the local sandbox, each effect checked from outside the sandbox.

Network tests only talk to listeners this test opens on 127.0.0.1. Every run has CPU and wall limits; the
fork bomb is bounded by the process limit and the CPU budget. Nothing here runs attack code outside the sandbox.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sandboxes.local as local_module
from sandboxes import ExecutionResult, IsolationUnavailableError, Limits, LocalSandbox, Status
from sandboxes._seccomp import SeccompUnavailableError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the local sandbox needs Linux")

LIMITS = Limits(cpu_seconds=3, wall_seconds=20)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LocalSandbox]:
    with LocalSandbox() as box:
        yield box


def processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                    for line in handle:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                found.append(int(entry))
                            break
            except OSError:
                continue
    return found


def processes_with_token(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if token.encode() in handle.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.fixture(autouse=True)
def nothing_left_behind(sandbox: LocalSandbox) -> Iterator[None]:
    """After every attack, no process of the worker's uid survives (root mode: the uid is the worker's alone)."""
    yield
    if sandbox.privileged:
        assert processes_of_uid(sandbox.uid) == []


def run_json(
    sandbox: LocalSandbox, program: str, limits: Limits = LIMITS
) -> tuple[ExecutionResult, dict[str, object]]:
    result = sandbox.run(program, limits=limits)
    assert result.status is Status.PASSED, (result.status, result.detail, result.stderr[-2000:])
    return result, json.loads(result.stdout.strip().splitlines()[-1])


# -- network ---------------------------------------------------------------------------------------


def test_tcp_and_udp_to_loopback_listener_do_not_arrive(sandbox: LocalSandbox) -> None:
    token = secrets.token_hex(8)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        udp.bind(("127.0.0.1", 0))
        tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
        program = f"""
import json, socket
out = {{}}
for name, family, kind, address in [
    ("tcp4", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", {tcp_port})),
    ("udp4", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", {udp_port})),
    ("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("::1", {tcp_port})),
]:
    try:
        s = socket.socket(family, kind)
        s.settimeout(1)
        if kind == socket.SOCK_STREAM:
            s.connect(address)
            s.sendall(b"{token}")
        else:
            s.sendto(b"{token}", address)
        out[name] = "sent"
    except OSError as exc:
        out[name] = type(exc).__name__
with open("/proc/net/dev") as handle:
    out["devices"] = sorted(line.split(":")[0].strip() for line in handle.readlines()[2:])
print(json.dumps(out))
"""
        _, report = run_json(sandbox, program)
        tcp.settimeout(0.5)
        with pytest.raises(TimeoutError):
            tcp.accept()
        udp.settimeout(0.5)
        with pytest.raises(TimeoutError):
            udp.recvfrom(1024)
    assert report["tcp4"] == report["udp4"] == report["tcp6"] == "PermissionError"
    assert report["devices"] == ["lo"]


# -- filesystem ------------------------------------------------------------------------------------


def test_host_files_are_invisible(sandbox: LocalSandbox, tmp_path: Path) -> None:
    token = secrets.token_hex(12)
    shared = Path(f"/tmp/evalgate-sbx-test-{token[:8]}")
    shared.mkdir(mode=0o755)
    try:
        readable = shared / "world-readable.txt"
        readable.write_text(token)
        readable.chmod(0o644)
        home = Path.home()
        repo_file = Path(__file__).resolve()
        program = f"""
import json, os
out = {{}}
for name, path in [("shadow", "/etc/shadow"), ("readable", {str(readable)!r}), ("repo", {str(repo_file)!r}),
                   ("host_proc_environ", "/proc/{os.getpid()}/environ")]:
    try:
        with open(path) as handle:
            out[name] = handle.read()
    except OSError as exc:
        out[name] = type(exc).__name__
try:
    out["home"] = sorted(os.listdir({str(home)!r}))
except OSError as exc:
    out["home"] = type(exc).__name__
print(json.dumps(out))
"""
        result, report = run_json(sandbox, program)
    finally:
        readable.unlink()
        shared.rmdir()
    assert token not in result.stdout
    assert report["shadow"] == "FileNotFoundError"
    assert report["readable"] == "FileNotFoundError"
    assert report["repo"] == "FileNotFoundError"
    assert report["host_proc_environ"] == "FileNotFoundError"
    host_home = set(os.listdir(home)) if home.is_dir() else set()
    visible = set(report["home"]) if isinstance(report["home"], list) else set()
    # Only the directories created to reach a bound interpreter may appear; nothing of the home's contents.
    interpreter_parts = set(Path(sys.base_prefix).resolve().parts)
    assert visible <= interpreter_parts
    assert not (visible & host_home) - interpreter_parts


def test_world_writable_host_file_is_not_writable(sandbox: LocalSandbox) -> None:
    token = secrets.token_hex(8)
    shared = Path(f"/tmp/evalgate-sbx-ww-{token}")
    shared.mkdir()
    shared.chmod(0o777)
    target = shared / "world-writable.txt"
    target.write_text("original")
    target.chmod(0o666)
    try:
        program = f"""
import json
out = {{}}
for name, path in [("host_file", {str(target)!r}), ("usr", "/usr/lib/evalgate-pwned"), ("root", "/pwned"),
                   ("etc", "/etc/passwd")]:
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        out[name] = "written"
    except OSError as exc:
        out[name] = type(exc).__name__
print(json.dumps(out))
"""
        _, report = run_json(sandbox, program)
        assert target.read_text() == "original"
        assert stat.S_IMODE(target.stat().st_mode) == 0o666
    finally:
        target.unlink()
        shared.rmdir()
    assert not Path("/usr/lib/evalgate-pwned").exists() and not Path("/pwned").exists()
    assert report["host_file"] == "FileNotFoundError"
    assert all(value != "written" for value in report.values()), report


def test_private_tmpfs_is_size_capped(sandbox: LocalSandbox) -> None:
    limits = Limits(cpu_seconds=5, tmpfs_mb=8, max_file_mb=64)
    program = "open('/tmp/fill', 'wb').write(b'x' * (32 * 1024 * 1024))"
    result = sandbox.run(program, limits=limits)
    assert result.status is Status.FAILED
    assert "No space left on device" in result.stderr


# -- memory, CPU, processes ------------------------------------------------------------------------


def test_two_gib_allocation_ends_as_memory(sandbox: LocalSandbox) -> None:
    for program in ("data = bytearray(2 * 1024**3)", "import mmap\nm = mmap.mmap(-1, 2 * 1024**3)"):
        result = sandbox.run(program, limits=LIMITS)
        assert result.status is Status.MEMORY, (program, result)


def test_many_children_each_allocating_end_as_memory(sandbox: LocalSandbox) -> None:
    program = """
import os, time
for _ in range(12):
    if os.fork() == 0:
        block = bytearray(400 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""
    result = sandbox.run(program, limits=Limits(cpu_seconds=10, wall_seconds=25))
    assert result.status is Status.MEMORY, result
    assert result.wall_seconds < 20


def test_memory_outside_any_address_space_is_denied(sandbox: LocalSandbox) -> None:
    """RAM-backed files and SysV segments would escape RLIMIT_AS and the resident-set supervisor."""
    program = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
try:
    os.memfd_create("hoard")
    out["memfd"] = "allowed"
except OSError as exc:
    out["memfd"] = exc.errno
out["shmget"] = [libc.shmget(0, 1 << 28, 0o1600), ctypes.get_errno()]
out["msgget"] = [libc.msgget(0, 0o1600), ctypes.get_errno()]
print(json.dumps(out))
"""
    _, report = run_json(sandbox, program)
    assert report == {"memfd": 1, "shmget": [-1, 1], "msgget": [-1, 1]}


def test_infinite_loop_is_stopped_by_cpu_time(sandbox: LocalSandbox) -> None:
    result = sandbox.run("while True:\n    pass", limits=Limits(cpu_seconds=1, wall_seconds=20))
    assert result.status is Status.TIMEOUT
    assert 0.8 <= result.cpu_seconds < 5


def test_fork_bomb_is_bounded_and_host_stays_responsive(sandbox: LocalSandbox) -> None:
    limits = Limits(cpu_seconds=3, wall_seconds=20, max_processes=16)
    program = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    results: list[ExecutionResult] = []
    runner = threading.Thread(target=lambda: results.append(sandbox.run(program, limits=limits)))
    worst_latency = 0.0
    most_processes = 0
    runner.start()
    while runner.is_alive():
        start = time.monotonic()
        subprocess.run(["/bin/true"], check=True, timeout=30)
        time.sleep(0.02)
        worst_latency = max(worst_latency, time.monotonic() - start)
        if sandbox.privileged:
            most_processes = max(most_processes, len(processes_of_uid(sandbox.uid)))
    runner.join()
    (result,) = results
    assert result.status is Status.TIMEOUT, result
    assert result.wall_seconds < 15
    assert worst_latency < 2.0, f"host stalled for {worst_latency:.2f} s"
    assert most_processes <= limits.max_processes


def test_setsid_daemon_does_not_outlive_the_run(sandbox: LocalSandbox) -> None:
    token = "evalgate-daemon-" + secrets.token_hex(8)
    program = f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", {token!r}])
    os._exit(0)
time.sleep(1.5)
print("spawned")
"""
    seen_during_run: list[int] = []
    results: list[ExecutionResult] = []
    runner = threading.Thread(target=lambda: results.append(sandbox.run(program, limits=LIMITS)))
    runner.start()
    while runner.is_alive():
        seen_during_run.extend(processes_with_token(token))
        time.sleep(0.1)
    runner.join()
    assert results[0].status is Status.PASSED and "spawned" in results[0].stdout
    assert seen_during_run, "the daemon never started, so the test proves nothing"
    deadline = time.monotonic() + 5
    while processes_with_token(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_token(token) == []


def test_daemon_is_killed_when_the_run_times_out(sandbox: LocalSandbox) -> None:
    token = "evalgate-daemon-" + secrets.token_hex(8)
    program = f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", {token!r}], start_new_session=True)
time.sleep(60)
"""
    result = sandbox.run(program, limits=Limits(cpu_seconds=2, wall_seconds=1.5))
    assert result.status is Status.TIMEOUT
    time.sleep(0.2)
    assert processes_with_token(token) == []


# -- privileged operations -------------------------------------------------------------------------


@pytest.mark.skipif(platform.machine() != "x86_64", reason="raw syscall numbers below are x86-64")
def test_privileged_syscalls_are_denied(sandbox: LocalSandbox) -> None:
    hostname = socket.gethostname()
    program = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(fn, *args):
    ctypes.set_errno(0)
    value = fn(*args)
    if value == 0 and fn is libc.syscall and args[0] == 56:
        os._exit(0)  # a clone that succeeded: the child leaves at once
    return [int(value), ctypes.get_errno()]
out = {
    "ptrace": call(libc.ptrace, 0, 0, None, None),
    "mount": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, None),
    "umount": call(libc.umount2, b"/proc", 0),
    "unshare_user": call(libc.unshare, 0x10000000),
    "unshare_mount": call(libc.unshare, 0x00020000),
    "unshare_net": call(libc.unshare, 0x40000000),
    "setns": call(libc.setns, 0, 0),
    "chroot": call(libc.chroot, b"/tmp"),
    "sethostname": call(libc.sethostname, b"pwned", 5),
    "clone_newuser": call(libc.syscall, 56, 0x10000000 | 17, None, None, None, None),
    "clone_newpid": call(libc.syscall, 56, 0x20000000 | 17, None, None, None, None),
    "bpf": call(libc.syscall, 321, 0, None, 0),
    "perf_event_open": call(libc.syscall, 298, None, 0, -1, -1, 0),
    "keyctl": call(libc.syscall, 250, 0, 0, 0, 0, 0),
    "io_uring_setup": call(libc.syscall, 425, 1, None),
    "userfaultfd": call(libc.syscall, 323, 0),
}
print(json.dumps(out))
"""
    _, report = run_json(sandbox, program)
    denied = {name: value for name, value in report.items() if value == [-1, 1]}
    assert denied == report, {name: value for name, value in report.items() if name not in denied}
    assert socket.gethostname() == hostname


def test_foreign_architecture_syscalls_kill_the_program(sandbox: LocalSandbox) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("x32 syscalls exist only on x86-64")
    program = "import ctypes\nctypes.CDLL(None).syscall(0x40000000 | 272, 0x10000000)\nprint('survived')"
    result = sandbox.run(program, limits=LIMITS)
    assert result.status is Status.KILLED
    assert "survived" not in result.stdout


def test_identity_capabilities_and_host_processes(sandbox: LocalSandbox) -> None:
    program = """
import json, os
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
    "no_new_privs": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
    "pids": pids,
}))
"""
    _, report = run_json(sandbox, program)
    assert report["uid"] == sandbox.uid and report["uid"] != 0
    assert report["groups"] in ([], [report["gid"]])
    caps = report["caps"]
    assert isinstance(caps, list)
    assert all(int(value, 16) == 0 for value in caps[1:3] + caps[4:])
    assert report["no_new_privs"] == "1" and report["seccomp"] == "2"
    pids = report["pids"]
    assert isinstance(pids, list) and max(pids) < 50  # a fresh pid namespace: no host process is visible


# -- refusing to run without isolation ---------------------------------------------------------------


def test_missing_tools_refuse_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_module, "_SYSTEM_PATH", "/nonexistent")
    with pytest.raises(IsolationUnavailableError, match="apt-get install -y bubblewrap"):
        LocalSandbox().open()


def test_missing_seccomp_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> bytes:
        raise SeccompUnavailableError("libseccomp not found")

    monkeypatch.setattr(local_module, "filter_bpf", unavailable)
    with pytest.raises(IsolationUnavailableError, match="libseccomp"):
        LocalSandbox().open()


@pytest.mark.parametrize("layer", ["--unshare-net", "--unshare-pid", "--unshare-uts"])
def test_self_test_refuses_when_a_layer_is_missing(monkeypatch: pytest.MonkeyPatch, layer: str) -> None:
    original = LocalSandbox._build_static_args

    def without_layer(self: LocalSandbox) -> list[str]:
        return [arg for arg in original(self) if arg != layer]

    monkeypatch.setattr(LocalSandbox, "_build_static_args", without_layer)
    box = LocalSandbox()
    with pytest.raises(IsolationUnavailableError, match=r"self-test failed|could not start"):
        box.open()
    with pytest.raises(IsolationUnavailableError):
        box.run("print('must not run')")


def test_killed_supervisor_leaves_nothing_running() -> None:
    token = "evalgate-orphan-" + secrets.token_hex(8)
    # The token reaches the supervisor through its environment, so only the sandboxed daemon's argv holds it.
    supervisor = """
import os
from sandboxes import Limits, LocalSandbox
program = "import subprocess, sys, time\\n"
program += f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', {os.environ['TOKEN']!r}])\\n"
program += "time.sleep(120)\\n"
with LocalSandbox() as box:
    print("running", flush=True)
    box.run(program, limits=Limits(cpu_seconds=5, wall_seconds=120))
"""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, "-c", supervisor], cwd=repo, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        deadline = time.monotonic() + 20
        while not processes_with_token(token):
            assert time.monotonic() < deadline, "the sandboxed daemon never started"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while processes_with_token(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with_token(token) == []
