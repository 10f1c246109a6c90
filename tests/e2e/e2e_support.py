"""Helpers for the end-to-end tests: Dagster homes and workspaces, service processes, deadlines."""

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

REPO = Path(__file__).resolve().parents[2]
TINY_DEFINITIONS = Path(__file__).resolve().parent / "tiny_definitions.py"
LOCATION = "evalgate_e2e"

T = TypeVar("T")


def make_dagster_home(path: Path) -> Path:
    """A fresh DAGSTER_HOME holding a copy of the repository's dagster.yaml (the embedded default instance)."""
    path.mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", path / "dagster.yaml")
    return path


def write_workspace(path: Path) -> Path:
    """A workspace file loading ``tiny_definitions.py``. The working directory is the repository root, so
    ``tests.evalgate_testing`` imports and ``eval_assets`` is the real package."""
    location = {
        "python_file": {
            "relative_path": str(TINY_DEFINITIONS),
            "working_directory": str(REPO),
            "location_name": LOCATION,
        }
    }
    path.write_text(json.dumps({"load_from": [location]}, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def service_env(
    *, dagster_home: Path, evalgate_home: Path, limits: Mapping[str, int], data_root: Path
) -> dict[str, str]:
    """The environment of a daemon or webserver for ``tiny_definitions``: nothing inherited names another home."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "EVALGATE_HOME")}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        EVALGATE_E2E_HOME=str(evalgate_home),
        EVALGATE_E2E_LIMITS=json.dumps(dict(limits)),
        EVALGATE_DATA_DIR=str(data_root),
        PYTHONUNBUFFERED="1",
    )
    return env


class Service:
    """A long-running process in its own process group (so everything it spawns goes with it), logging to a
    file."""

    def __init__(self, argv: list[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.argv = argv
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 6000) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.is_file() else ""
        return text[-chars:]

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after ``grace_s``."""
        pgid = self.process.pid  # start_new_session: the leader's pid is the group id
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _group_alive(pgid):
                self.process.poll()  # reap the leader
                time.sleep(0.2)
            if not _group_alive(pgid):
                break
        try:
            self.process.wait(timeout=5)
        finally:
            self._out.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    *,
    deadline_s: float,
    interval_s: float = 2.0,
    diagnostics: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``probe`` until it returns something other than None/False, or fail after ``deadline_s`` with
    ``diagnostics()`` in the message. ``probe`` may itself raise to fail fast."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f} s waiting for {what}\n{diagnostics()}")
        time.sleep(interval_s)
