"""How a run ended, from its exit code, CPU time and stderr (shared by the backends).

Who is to blame decides the status. The program's own doing is ``failed`` (non-zero exit), ``timeout`` (CPU
budget or wall backstop), ``memory`` (the address-space limit, or the run's memory cgroup at its limit) or
``killed`` (a signal it brought on itself: the seccomp filter's SIGSYS, the file-size limit's SIGXFSZ, a crash
such as SIGSEGV or SIGABRT, a signal it sent itself). ``error`` is ours: the sandbox could not be set up or
launched (bwrap, the cgroup, setpriv/prlimit/nice, the dynamic loader or the interpreter's start-up failed
before the program ran), bwrap was killed by someone other than the supervisor, or the host's OOM killer ended
a process while the run was within its own limit. ``error`` results are retried and never cached.
"""

from __future__ import annotations

import re
import signal

from sandboxes._interface import Limits, Status

#: A traceback ending in MemoryError, or in an OSError for ENOMEM (mmap, fork, thread stacks under RLIMIT_AS).
#: Read from the program's stderr, so a program can fake it; it can only turn its own failure into ``memory``.
_MEMORY_ERROR = re.compile(r"(?m)^(?:(?:\w+\.)*MemoryError\b|\w*Error: \[Errno 12\] Cannot allocate memory)")

#: The first line of stderr when the launch chain failed before the program's first line ran: a tool of the
#: chain (exit 1, 125-127), the dynamic loader, or the interpreter's own initialisation. A program could print
#: this itself; it would only turn its own failure into a retried ``error``, never into a pass.
_SETUP_FAILURE = re.compile(
    r"\A(?:(?:setpriv|prlimit|nice|sandbox-init|evalgate-join|bwrap)(?:: |:\d+: )"
    r"|\S+: error while loading shared libraries: "
    r"|Fatal Python error: (?:init_|_Py|Py_Initialize|pycore_)"
    r"|Could not find platform (?:in)?dependent libraries)"
)


def setup_failure(code: int, stderr: str) -> str:
    """A description when a non-zero exit is the launch chain's failure rather than the program's, else ``""``."""
    if code == 0 or code > 128:
        return ""
    if _SETUP_FAILURE.match(stderr):
        first = stderr.splitlines()[0] if stderr else ""
        return f"the sandbox's launch chain failed before the program ran (exit {code}): {first[:500]}"
    return ""


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
