"""The sandbox contract: limits in, an :class:`ExecutionResult` out, one lifecycle for every backend.

A :class:`Sandbox` is one isolated worker. Its lifecycle is ``open()`` (acquire what can be prepared once and
safely reused: a worker uid, a compiled seccomp filter, a Modal app and image), any number of ``run()`` calls,
then ``close()``. Every ``run()`` gets a fresh environment: no file, process or namespace survives from one run
to the next, so a warm sandbox never carries one program's side effects into another's result.

This module is pure: it imports nothing from Dagster, reads no environment and starts nothing at import time.
"""

from __future__ import annotations

import math
import re
import types
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Protocol


class Status(StrEnum):
    """How a run ended. Only ``passed`` counts as a pass; every other status is a failure of the program,
    except ``error``, which is a failure of the infrastructure (retry it; never drop it from a denominator).
    Who is blamed for what is spelled out in ``sandboxes/_status.py``."""

    PASSED = "passed"  # exit code 0
    FAILED = "failed"  # non-zero exit code (an assertion, an exception, a syntax error)
    TIMEOUT = "timeout"  # CPU budget spent (by the whole run, reaped children included), or the wall backstop
    MEMORY = "memory"  # address-space limit (MemoryError), or the run's memory cgroup at its limit (OOM kill)
    KILLED = (
        "killed"  # a signal the program brought on itself (seccomp, file-size limit, a crash, its own kill)
    )
    ERROR = "error"  # ours: the sandbox could not set up or launch the run, or the host killed it


class SandboxError(RuntimeError):
    """Base class of the errors a sandbox raises (results of programs are never raised, they are returned)."""


class IsolationUnavailableError(SandboxError):
    """This machine cannot provide the isolation the backend promises. We refuse to run rather than run
    untrusted code unisolated; the message says what to install or change."""


#: Names a program's files may take inside the work dir: relative, no ``..``, nothing exotic.
_SAFE_PART = re.compile(r"^[A-Za-z0-9_.+@=,-]{1,128}$")


def validate_relpath(name: str) -> str:
    """Return ``name`` if it is a safe relative POSIX path for a file in the work dir, else raise ``ValueError``."""
    path = PurePosixPath(name)
    parts = path.parts
    if not parts or path.is_absolute() or len(parts) > 8:
        raise ValueError(f"sandbox file name {name!r} must be a relative path of at most 8 parts")
    for part in parts:
        if part in {".", ".."} or not _SAFE_PART.match(part):
            raise ValueError(f"sandbox file name {name!r} has an unsafe part {part!r}")
    return path.as_posix()


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run. Part of every execution-cache key (see :meth:`cache_key`).

    ``cpu_seconds`` is the budget that decides ``timeout``: CPU time is stable on slow or busy machines, wall
    time is not. It applies to each process (``RLIMIT_CPU``) and to the whole run: the local backend reads the
    run's cgroup, which counts every process the run ever had, exited and auto-reaped ones included.
    ``wall_seconds`` is only a backstop for programs that sleep or block; by default three times the CPU budget
    plus five seconds (room for a busy machine). ``memory_mb`` caps each process's address space
    (``RLIMIT_AS``) and, through the run's memory cgroup, everything the run holds together: anonymous memory,
    files in its tmpfs mounts (``/tmp``, ``/dev/shm``, the work dir; each also capped at ``tmpfs_mb``), page
    tables and kernel buffers such as socket and pipe buffers. ``max_processes`` (``RLIMIT_NPROC``, threads
    included) bounds the number of processes.
    """

    cpu_seconds: float = 10.0
    wall_seconds: float | None = None
    memory_mb: int = 512
    max_processes: int = 16
    max_file_mb: int = 16
    tmpfs_mb: int = 64
    max_output_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not (0 < self.cpu_seconds <= 3600):
            raise ValueError(f"cpu_seconds must be in (0, 3600], got {self.cpu_seconds}")
        if self.wall_seconds is not None and not (0 < self.wall_seconds <= 7200):
            raise ValueError(f"wall_seconds must be in (0, 7200], got {self.wall_seconds}")
        if not (32 <= self.memory_mb <= 65536):
            raise ValueError(f"memory_mb must be in [32, 65536], got {self.memory_mb}")
        if not (2 <= self.max_processes <= 4096):
            raise ValueError(f"max_processes must be in [2, 4096], got {self.max_processes}")
        if not (1 <= self.max_file_mb <= 4096):
            raise ValueError(f"max_file_mb must be in [1, 4096], got {self.max_file_mb}")
        if not (1 <= self.tmpfs_mb <= 4096):
            raise ValueError(f"tmpfs_mb must be in [1, 4096], got {self.tmpfs_mb}")
        if not (256 <= self.max_output_bytes <= 64 * 1024 * 1024):
            raise ValueError(f"max_output_bytes must be in [256, 64 MiB], got {self.max_output_bytes}")

    @property
    def wall_backstop(self) -> float:
        """The wall-clock limit actually enforced."""
        return self.wall_seconds if self.wall_seconds is not None else 3 * self.cpu_seconds + 5.0

    @property
    def cpu_rlimit(self) -> int:
        """Whole seconds for ``RLIMIT_CPU`` (the kernel counts whole seconds)."""
        return max(1, math.ceil(self.cpu_seconds))

    def cache_key(self) -> dict[str, Any]:
        """Everything that can change an outcome, as plain JSON values."""
        return {**asdict(self), "wall_seconds": self.wall_backstop}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        return cls(**dict(data))


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ExecutionResult:
    """What one run of one program did. Outputs are truncated to ``Limits.max_output_bytes`` (head and tail
    kept, the flag set); times are seconds; ``sandbox`` names the backend and version that produced it."""

    status: Status
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    detail: str = ""
    sandbox: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionResult:
        values = dict(data)
        values["status"] = Status(values["status"])
        return cls(**values)


@dataclass(frozen=True)
class RunRequest:
    """One program to run: Python source (written as ``main.py`` in the work dir), extra files, limits, stdin."""

    program: str
    files: Mapping[str, str | bytes] = field(default_factory=lambda: types.MappingProxyType({}))
    limits: Limits = DEFAULT_LIMITS
    stdin: bytes = b""


class Sandbox(ABC):
    """One isolated worker. Use as a context manager, or call :meth:`open` and :meth:`close` yourself.

    Raises:
        IsolationUnavailableError: from :meth:`open` (and so from :meth:`run` on an unopened sandbox) when the
            machine cannot isolate. Never from a program's behaviour: that is reported in the result.
    """

    #: Short backend name, e.g. ``local-bwrap`` or ``modal``.
    backend: str = "abstract"

    @property
    @abstractmethod
    def version(self) -> str:
        """Backend, isolation recipe and interpreter version; part of every execution-cache key.
        Known after :meth:`open`."""

    @abstractmethod
    def open(self) -> None:
        """Prepare what can be reused safely across runs, and verify the isolation works. Idempotent."""

    @abstractmethod
    def run(
        self,
        program: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        limits: Limits = DEFAULT_LIMITS,
        stdin: bytes = b"",
    ) -> ExecutionResult:
        """Run ``program`` (Python source) with ``files`` in a fresh work dir under ``limits``."""

    @abstractmethod
    def close(self) -> None:
        """Release what :meth:`open` acquired. Idempotent."""

    def run_request(self, request: RunRequest) -> ExecutionResult:
        return self.run(request.program, files=request.files, limits=request.limits, stdin=request.stdin)

    def __enter__(self) -> Sandbox:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SandboxFactory(Protocol):
    """Builds the sandbox of one pool worker (``worker`` is 0-based); each worker gets its own."""

    def __call__(self, worker: int) -> Sandbox: ...
