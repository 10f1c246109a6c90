"""``evalgate ui`` started with a ``PATH`` that lacks the virtualenv serves the UI, and after one SIGTERM to it
no process of its tree remains: ``dagster dev``, the webserver, the daemon and the code servers."""

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from e2e.e2e_support import REPO, Service, wait_until

from eval_assets.datapkgs import data_dir

pytestmark = pytest.mark.slow

EVALGATE = REPO / ".venv" / "bin" / "evalgate"
SERVE_S = 180  # dagster dev, the webserver and a code server loading the real graph, on 2 shared cores
STOP_S = 40  # evalgate's own grace (20 s) plus the kill


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return None


def _tree(pid: int) -> dict[int, psutil.Process]:
    try:
        leader = psutil.Process(pid)
        return {p.pid: p for p in [leader, *leader.children(recursive=True)]}
    except psutil.NoSuchProcess:
        return {}


def _role(proc: psutil.Process) -> str:
    try:
        line = " ".join(proc.cmdline())
    except psutil.Error:
        return "?"
    for needle, role in (("dagster_webserver", "webserver"), ("dagster._daemon", "daemon"),
                         ("grpc", "code server"), ("code-server", "code server"), (" dev ", "dagster dev")):  # fmt: skip
        if needle in line:
            return role
    return "evalgate" if "evalgate" in line else line[:80]


def _running(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{proc.pid} {_role(proc)}")
        except psutil.NoSuchProcess:
            continue
    return left


def test_ui_serves_without_the_venv_on_path_and_leaves_nothing_after_sigterm(tmp_path: Path) -> None:
    assert EVALGATE.is_file(), f"{EVALGATE}: the console script (bash .ci/setup installs it)"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVALGATE_", "DAGSTER_", "VIRTUAL_ENV"))}
    env.update(PATH="/usr/bin:/bin", EVALGATE_HOME=str(tmp_path / "home"), EVALGATE_DATA_DIR=str(data_dir()))
    assert "venv" not in env["PATH"]
    ui = Service([str(EVALGATE), "ui", "--port", str(port)], env=env, cwd=tmp_path, log=tmp_path / "ui.log")
    seen: dict[int, psutil.Process] = {}
    try:

        def served() -> bool:
            if not ui.alive():
                raise AssertionError(f"evalgate ui exited ({ui.process.returncode})\n{ui.log_tail()}")
            seen.update(_tree(ui.process.pid))
            roles = {_role(p) for p in seen.values()}
            return _status(f"http://127.0.0.1:{port}/server_info") == 200 and "code server" in roles

        wait_until("the UI to answer 200 with a code server up", served, deadline_s=SERVE_S, interval_s=1.0,
                   diagnostics=ui.log_tail)  # fmt: skip
        assert _status(f"http://127.0.0.1:{port}/") == 200
        seen.update(_tree(ui.process.pid))
        roles = sorted(_role(p) for p in seen.values())
        assert {"dagster dev", "webserver", "daemon", "code server"} <= set(roles), roles

        started = time.monotonic()
        os.kill(ui.process.pid, signal.SIGTERM)  # evalgate alone, as a supervisor or `kill` would
        ui.process.wait(timeout=STOP_S)
        left = wait_until("the whole tree to be gone", lambda: not _running(list(seen.values())) or None,
                          deadline_s=5, interval_s=0.5, diagnostics=lambda: "\n".join(_running(list(seen.values()))))  # fmt: skip
        assert left
        assert ui.process.returncode == 128 + signal.SIGTERM
        assert time.monotonic() - started < STOP_S
        assert _status(f"http://127.0.0.1:{port}/server_info") is None, "the port still answers"
    finally:
        ui.stop(grace_s=5)
