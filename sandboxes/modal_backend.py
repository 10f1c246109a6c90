"""The production backend: one Modal Sandbox per run (gVisor), no network, hard CPU and memory limits.

Lifecycle: :meth:`ModalSandbox.open` looks up the app and defines the image once (the warm, safely reusable
part); every :meth:`ModalSandbox.run` creates a fresh ``modal.Sandbox`` with ``block_network=True``,
``cpu=(c, c)``, ``memory=(m, m)`` and a sandbox timeout, writes the files, execs a small launcher with a
per-exec timeout, and always calls ``terminate()``. A container is never reused across programs: a program
running as root in it could leave state behind for the next one.

Inside the container, the launcher applies the same rlimits as the local backend (address space, CPU seconds,
processes, file size), drops to ``nobody``, runs the program in its own session with a cleared environment,
kills the session when it ends, and reports exit status, resource usage and bounded output as one JSON line.

``modal`` is imported only when a sandbox is opened; without it (or without credentials) the error says what to
install or configure.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sandboxes._interface import (
    DEFAULT_LIMITS,
    ExecutionResult,
    IsolationUnavailableError,
    Limits,
    Sandbox,
    Status,
    validate_relpath,
)
from sandboxes._status import classify_exit
from sandboxes.local import MAIN_FILE, WORKDIR

RECIPE_VERSION = "1"
_log = logging.getLogger(__name__)
_LAUNCHER_PATH = "/evalgate/launch.py"
#: Memory for the launcher on top of the program's limit, so the container limit is not hit first.
_LAUNCHER_OVERHEAD_MB = 128


def modal_credentials_present() -> bool:
    """Whether Modal credentials are configured (environment or ``~/.modal.toml``)."""
    if os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        return True
    config = os.environ.get("MODAL_CONFIG_PATH") or os.path.join(os.path.expanduser("~"), ".modal.toml")
    return os.path.isfile(config)


def _import_modal() -> Any:
    try:
        import modal
    except ImportError as exc:
        raise IsolationUnavailableError(
            "the Modal backend needs the modal client: `pip install 'evalgate[modal]'` (modal==1.6.4)"
        ) from exc
    return modal


class ModalSandbox(Sandbox):
    """Runs each program in its own Modal Sandbox.

    Args:
        app_name: Modal app the sandboxes belong to (created if missing).
        python_version: Python of the ``debian_slim`` image (part of :attr:`version`).
        cpu: physical cores requested and capped per sandbox.
        region: optional Modal region(s).
    """

    backend = "modal"

    def __init__(
        self,
        *,
        app_name: str = "evalgate-sandboxes",
        python_version: str = "3.11",
        cpu: float = 1.0,
        region: str | None = None,
    ) -> None:
        self._app_name = app_name
        self._python_version = python_version
        self._cpu = cpu
        self._region = region
        self._lock = threading.Lock()
        self._modal: Any = None
        self._app: Any = None
        self._image: Any = None

    @property
    def version(self) -> str:
        return f"{self.backend}/{RECIPE_VERSION}+python{self._python_version}"

    def open(self) -> None:
        with self._lock:
            if self._app is not None:
                return
            modal = _import_modal()
            if not modal_credentials_present():
                raise IsolationUnavailableError(
                    "no Modal credentials: run `modal token new` or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET"
                )
            self._modal = modal
            self._app = modal.App.lookup(self._app_name, create_if_missing=True)
            self._image = modal.Image.debian_slim(python_version=self._python_version)

    def close(self) -> None:
        with self._lock:
            self._app = None
            self._image = None

    def run(
        self,
        program: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        stdin: bytes = b"",
    ) -> ExecutionResult:
        self.open()
        payload: dict[str, bytes] = {MAIN_FILE: program.encode("utf-8")}
        for name, data in (files or {}).items():
            safe = validate_relpath(name)
            if safe == MAIN_FILE:
                raise ValueError(f"{MAIN_FILE} is the program itself; pass it as `program`")
            payload[safe] = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        start = time.monotonic()
        wall = math.ceil(limits.wall_backstop)
        memory = limits.memory_mb + _LAUNCHER_OVERHEAD_MB
        sb = None
        try:
            sb = self._modal.Sandbox.create(
                app=self._app,
                image=self._image,
                timeout=wall + 60,
                cpu=(self._cpu, self._cpu),
                memory=(memory, memory),
                block_network=True,
                region=self._region,
            )
            sb.filesystem.make_directory("/evalgate", create_parents=True)
            sb.filesystem.write_text(_LAUNCHER, _LAUNCHER_PATH)
            directories = {WORKDIR} | {
                f"{WORKDIR}/{name.rsplit('/', 1)[0]}" for name in payload if "/" in name
            }
            for directory in sorted(directories):
                sb.filesystem.make_directory(directory, create_parents=True)
            for name, data in payload.items():
                sb.filesystem.write_bytes(data, f"{WORKDIR}/{name}")
            spec = {"limits": limits.cache_key(), "stdin": base64.b64encode(stdin).decode()}
            proc = sb.exec("python3", "-S", "-s", "-B", _LAUNCHER_PATH, json.dumps(spec), timeout=wall + 10)
            report_text = proc.stdout.read()
            launcher_err = proc.stderr.read()
            code = proc.wait()
        except IsolationUnavailableError:
            raise
        except Exception as exc:  # Modal client errors are infrastructure failures, reported as such
            return ExecutionResult(
                status=Status.ERROR,
                exit_code=None,
                detail=f"modal: {type(exc).__name__}: {exc}",
                wall_seconds=round(time.monotonic() - start, 4),
                sandbox=self.version,
            )
        finally:
            if sb is not None:
                try:
                    sb.terminate()
                except Exception as exc:  # the sandbox timeout still ends it; do not mask the result
                    _log.warning(
                        "modal terminate() failed for sandbox %s: %s", getattr(sb, "object_id", "?"), exc
                    )
        return self._to_result(code, report_text, launcher_err, limits, time.monotonic() - start)

    def _to_result(
        self, code: int, report_text: str, launcher_err: str, limits: Limits, wall: float
    ) -> ExecutionResult:
        base = ExecutionResult(
            status=Status.ERROR, exit_code=None, wall_seconds=round(wall, 4), sandbox=self.version
        )
        if code == -1:
            return replace(base, status=Status.TIMEOUT, detail="modal exec timeout")
        if code == 137 and not report_text.strip():
            return replace(base, status=Status.MEMORY, detail="container memory limit (OOM kill)")
        try:
            report = json.loads(report_text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return replace(base, exit_code=code, detail=f"launcher failed: {launcher_err[-2000:]}")
        cpu = float(report["cpu_seconds"])
        base = replace(
            base,
            stdout=str(report["stdout"]),
            stderr=str(report["stderr"]),
            stdout_truncated=bool(report["stdout_truncated"]),
            stderr_truncated=bool(report["stderr_truncated"]),
            cpu_seconds=round(cpu, 4),
        )
        if report["timed_out"]:
            return replace(
                base,
                status=Status.TIMEOUT,
                detail=f"wall-clock backstop of {limits.wall_backstop:g} s reached",
            )
        exit_code = int(report["exit_code"])
        status, detail = classify_exit(exit_code, cpu, limits, base.stderr)
        return replace(base, status=status, exit_code=exit_code, detail=detail)


# Runs as root inside the Modal container; trusted code, kept standard-library only.
_LAUNCHER = r"""
import base64, json, os, resource, shutil, signal, subprocess, sys

spec = json.loads(sys.argv[1])
lim = spec["limits"]
work = "/sandbox"
out_dir = "/evalgate/out"
os.makedirs(out_dir, mode=0o700, exist_ok=True)
os.chmod(work, 0o1777)
for root, dirs, files in os.walk(work):
    for name in dirs + files:
        shutil.chown(os.path.join(root, name), 65534, 65534)
stdin_path = os.path.join(out_dir, "stdin")
with open(stdin_path, "wb") as handle:
    handle.write(base64.b64decode(spec["stdin"]))
mem = lim["memory_mb"] * 1024 * 1024
cpu = max(1, int(-(-lim["cpu_seconds"] // 1)))
fsize = lim["max_file_mb"] * 1024 * 1024

def drop():
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim["max_processes"], lim["max_processes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)

env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
       "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "MALLOC_ARENA_MAX": "2"}
with open(stdin_path, "rb") as stdin, open(os.path.join(out_dir, "o"), "wb") as out, \
        open(os.path.join(out_dir, "e"), "wb") as err:
    proc = subprocess.Popen([sys.executable, "-S", "-s", "-B", "main.py"], cwd=work, env=env, stdin=stdin,
                            stdout=out, stderr=err, preexec_fn=drop)
    timed_out = False
    try:
        code = proc.wait(timeout=lim["wall_seconds"])
    except subprocess.TimeoutExpired:
        timed_out = True
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    code = proc.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)

def bounded(path):
    limit = lim["max_output_bytes"]
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        if size <= limit:
            return handle.read().decode("utf-8", "replace"), False
        tail = min(4096, limit // 4)
        head = handle.read(limit - tail)
        handle.seek(size - tail)
        dropped = size - limit
        text = head.decode("utf-8", "replace") + f"\n[... {dropped} bytes dropped ...]\n"
        return text + handle.read().decode("utf-8", "replace"), True

stdout, stdout_truncated = bounded(os.path.join(out_dir, "o"))
stderr, stderr_truncated = bounded(os.path.join(out_dir, "e"))
print(json.dumps({
    "exit_code": code if code >= 0 else 128 - code, "timed_out": timed_out,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "stdout": stdout, "stderr": stderr, "stdout_truncated": stdout_truncated, "stderr_truncated": stderr_truncated,
}))
"""
