"""Status of a run that ended on its own, from its exit code, CPU time and stderr (shared by the backends)."""

from __future__ import annotations

import re
import signal

from sandboxes._interface import Limits, Status

#: A traceback ending in MemoryError, or in an OSError for ENOMEM (mmap, fork, thread stacks under RLIMIT_AS).
#: Read from the program's stderr, so a program can fake it; it can only turn its own failure into ``memory``.
_MEMORY_ERROR = re.compile(r"(?m)^(?:(?:\w+\.)*MemoryError\b|\w*Error: \[Errno 12\] Cannot allocate memory)")


def classify_exit(code: int, cpu: float, limits: Limits, stderr: str) -> tuple[Status, str]:
    """Status of a run that ended on its own. bwrap reports a signal as ``128 + signo``."""
    if code == 0:
        return Status.PASSED, ""
    if code > 128:
        signo = code - 128
        name = signal.Signals(signo).name if signo in signal.Signals._value2member_map_ else str(signo)
        if signo in (signal.SIGXCPU, signal.SIGKILL) and cpu >= limits.cpu_rlimit * 0.8:
            return Status.TIMEOUT, f"CPU limit of {limits.cpu_seconds:g} s reached ({name})"
        if signo == signal.SIGXFSZ:
            return Status.KILLED, f"file size limit of {limits.max_file_mb} MiB reached (SIGXFSZ)"
        if signo == signal.SIGSYS:
            return Status.KILLED, "killed by the seccomp filter (SIGSYS)"
        return Status.KILLED, f"killed by {name}"
    if _MEMORY_ERROR.search(stderr):
        return Status.MEMORY, f"out of memory under the {limits.memory_mb} MiB address-space limit"
    return Status.FAILED, f"exit code {code}"
