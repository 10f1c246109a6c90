"""Running untrusted code: one interface, a local isolation backend (default) and a Modal backend.

Entry points:

- :class:`LocalSandbox`: bubblewrap namespaces + setpriv to a per-worker uid + seccomp deny-list + rlimits,
  with a cgroup per run that accounts its CPU (reaped children included) and bounds all its memory (socket
  buffers and tmpfs included); only the interpreter's own files are mounted, at ``/opt/python``.
- :class:`ModalSandbox`: one Modal Sandbox per run, ``block_network=True``, hard CPU/memory limits.
- :class:`SandboxPool`: parallel workers (default: two per CPU, each with its own uid) with ``run_many``.

Every run returns an :class:`ExecutionResult` whose :class:`Status` is one of passed, failed, timeout, memory,
killed, error. A machine that cannot isolate raises :class:`IsolationUnavailableError`; nothing ever runs
unisolated. Example::

    from sandboxes import Limits, RunRequest, SandboxPool

    with SandboxPool() as pool:
        results = pool.run_many([RunRequest("assert 1 + 1 == 2", limits=Limits(cpu_seconds=5))])
    assert results[0].passed
"""

from sandboxes._interface import (
    DEFAULT_LIMITS,
    ExecutionResult,
    IsolationUnavailableError,
    Limits,
    RunRequest,
    Sandbox,
    SandboxError,
    SandboxFactory,
    Status,
)
from sandboxes.local import LocalSandbox
from sandboxes.modal_backend import ModalSandbox, modal_credentials_present
from sandboxes.pool import SandboxPool, default_workers

__all__ = [
    "DEFAULT_LIMITS",
    "ExecutionResult",
    "IsolationUnavailableError",
    "Limits",
    "LocalSandbox",
    "ModalSandbox",
    "RunRequest",
    "Sandbox",
    "SandboxError",
    "SandboxFactory",
    "SandboxPool",
    "Status",
    "default_workers",
    "modal_credentials_present",
]
