"""CPU time and resident memory of a whole process tree, read from /proc by the supervisor (outside the sandbox).

Used only when the local sandbox runs without a per-run cgroup (``require_cgroup=False``). It is weaker than the
cgroup, and the result says so (``+nocgroup``): it sees live processes only, so children reaped with
``SIGCHLD`` ignored take their CPU time with them, and kernel memory (socket buffers, tmpfs files) is in no RSS.

Rlimits are per process; a program that forks can spread its work over many processes. The supervisor walks
the tree under the sandbox's root process (``/proc/PID/task/TID/children``; orphans are re-parented to the
sandbox's pid-1, which is in the tree) and sums CPU (own plus reaped children) and memory. RSS double-counts
pages shared after ``fork``, so when the RSS sum is over the limit it is confirmed with PSS
(``smaps_rollup``), which splits shared pages fairly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class TreeUsage:
    pids: tuple[int, ...]
    cpu_seconds: float
    rss_bytes: int


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except OSError:  # the process exited between listing and reading
        return None


def tree_pids(root: int, limit: int = 100_000) -> list[int]:
    """``root`` and all its live descendants."""
    seen: list[int] = []
    queue = [root]
    visited: set[int] = set()
    while queue and len(seen) < limit:
        pid = queue.pop()
        if pid in visited:
            continue
        visited.add(pid)
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            text = _read(f"/proc/{pid}/task/{tid}/children")
            if text:
                queue.extend(int(child) for child in text.split())
    return seen


def _stat_fields(pid: int) -> list[str] | None:
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # comm (field 2) may hold spaces and parentheses; the fields after the last ')' are fixed.
    return text[text.rfind(")") + 2 :].split()


def tree_usage(root: int) -> TreeUsage:
    """CPU seconds (user + system, own + reaped children) and the RSS sum of the tree under ``root``."""
    pids = tree_pids(root)
    ticks = 0
    rss_pages = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the ')' the list starts at field 3 (state): utime=14, stime=15, cutime=16, cstime=17, rss=24.
        ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        rss_pages += int(fields[21])
    return TreeUsage(tuple(pids), ticks / _TICKS, rss_pages * _PAGE)


def tree_pss_bytes(pids: tuple[int, ...]) -> int:
    """Proportional set size of ``pids`` (shared pages split among their users)."""
    total = 0
    for pid in pids:
        text = _read(f"/proc/{pid}/smaps_rollup")
        if not text:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
                break
    return total
