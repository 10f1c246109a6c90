"""``evalgate ui``: ``dagster dev`` from this interpreter's own installation, and its whole process tree stopped.

``dagster dev`` is started as ``<this python> -m dagster dev`` (so it needs nothing on ``PATH``); it starts the
webserver and the daemon with the same interpreter, and they start the code servers. It runs in its own
session, so a terminal's signals reach it only through us. On SIGINT or SIGTERM we ask it to shut down the
way it expects (SIGINT: it tells the webserver and the daemon to stop, and they stop their code servers), wait
``grace_s``, then SIGKILL its process group and every descendant seen while it ran (a code server may be
re-parented to init once its parent is gone, so descendants are tracked as they appear, not only at the end).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import psutil

#: How long the tree gets to shut down cleanly after the first signal.
GRACE_S = 20.0
_POLL_S = 0.5
_KILL_WAIT_S = 5.0


def dagster_dev_argv(workspace: Path, port: int, host: str) -> list[str]:
    return [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(port), "-h", host]


def child_environment(base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus ``overrides``, with this interpreter's bin directory first on ``PATH`` (anything the Dagster
    processes start by name resolves to this installation, not to whatever ``PATH`` had)."""
    env = {**base, **overrides}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)])
    return env


class ProcessTree:
    """A process started in its own session, and every descendant it has had (by pid and start time)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(list(argv), env=dict(env), start_new_session=True)
        self._seen: dict[int, float] = {}
        self.track()

    def track(self) -> None:
        try:
            leader = psutil.Process(self.process.pid)
            for proc in [leader, *leader.children(recursive=True)]:
                self._seen.setdefault(proc.pid, proc.create_time())
        except psutil.NoSuchProcess:
            pass

    def alive(self) -> list[psutil.Process]:
        """The tracked processes still running (a pid reused by another process is not ours)."""
        running = []
        for pid, created in self._seen.items():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    running.append(proc)
            except psutil.NoSuchProcess:
                continue
        return running

    def stop(self, grace_s: float = GRACE_S) -> None:
        self.track()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # dagster dev's own clean shutdown path
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self.process.poll()
            if not self.alive():
                break
            time.sleep(_POLL_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        left = self.alive()
        for proc in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.process.wait()
        psutil.wait_procs(left, timeout=_KILL_WAIT_S)  # SIGKILL is delivered asynchronously


def run_until_signalled(argv: Sequence[str], env: Mapping[str, str], grace_s: float = GRACE_S) -> int:
    """Run ``argv`` until it exits or we get SIGINT/SIGTERM; either way nothing of its tree is left."""
    stop_requested: list[int] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    tree = ProcessTree(argv, env)
    try:
        while not stop_requested and tree.process.poll() is None:
            tree.track()
            time.sleep(_POLL_S)
    finally:
        tree.stop(grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop_requested:
        return 128 + stop_requested[0]
    return tree.process.returncode or 0
