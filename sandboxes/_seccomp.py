"""The seccomp deny-list of the local backend, compiled to classic BPF with pyseccomp (libseccomp).

Default action is allow; the listed calls fail with an errno rather than killing, so a program that probes them
gets an ordinary ``PermissionError`` and the test harness still reports. Calls from a foreign architecture
(32-bit ``int 0x80`` or x32 calls on x86-64) hit the bad-arch action, which kills the whole process.

Why each rule:
- debugging and other processes' memory: ``ptrace``, ``process_vm_*``, ``pidfd_getfd``, ``kcmp``;
- filesystems and namespaces (escape routes): the mount family, ``chroot``, ``pivot_root``, ``unshare``,
  ``setns``, and ``clone`` with any namespace flag (``clone3`` answers ENOSYS so libc falls back to ``clone``,
  whose flags we can inspect);
- kernel attack surface with a history of bugs: ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``,
  ``keyctl``/``add_key``/``request_key``, ``fanotify_init``, handles (``open_by_handle_at``);
- machine state: hostname, clock, modules, reboot, swap, accounting, kexec, quotas, ``iopl``;
- the network: ``socket``/``socketpair`` for any family but ``AF_UNIX`` (the net namespace has only loopback);
- terminal injection: ``ioctl(TIOCSTI)`` and ``ioctl(TIOCLINUX)``;
- ``personality`` except the read-only query (no turning off ASLR);
- memory that no process's address space or resident set accounts for: ``memfd_create``/``memfd_secret``
  (RAM-backed files, up to the file-size limit per descriptor) and SysV ``shmget``/``msgget`` (segments and
  queues outlive the process that filled them). POSIX shared memory still works, on the capped ``/dev/shm``.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import socket

#: Calls denied outright with EPERM.
DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "fanotify_init",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "nfsservctl",
    "uselib",
    "vhangup",
    "iopl",
    "ioperm",
    "memfd_create",
    "memfd_secret",
    "shmget",
    "msgget",
)

#: Every ``CLONE_NEW*`` flag: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME.
CLONE_NAMESPACE_FLAGS: tuple[int, ...] = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x00000080,
)

_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C
_PERSONALITY_QUERY = 0xFFFFFFFF


#: Short fingerprint of the policy above, part of the sandbox version (and so of execution-cache keys):
#: editing the deny-list re-runs cached executions without anyone having to remember a version bump.
POLICY_FINGERPRINT = hashlib.sha256(
    repr(
        (DENIED_SYSCALLS, CLONE_NAMESPACE_FLAGS, _TIOCSTI, _TIOCLINUX, _PERSONALITY_QUERY, "AF_UNIX only")
    ).encode()
).hexdigest()[:8]


class SeccompUnavailableError(RuntimeError):
    """libseccomp or pyseccomp is missing, or the filter cannot be built on this architecture."""


@functools.cache
def filter_bpf() -> bytes:
    """The compiled filter (classic BPF, as bwrap's ``--seccomp FD`` expects). Built once per process."""
    try:
        import pyseccomp as sc
    except (ImportError, RuntimeError) as exc:  # pyseccomp raises RuntimeError when libseccomp is missing
        raise SeccompUnavailableError(
            f"cannot load pyseccomp/libseccomp ({exc}). Install them: `apt-get install -y libseccomp2` "
            "and `pip install pyseccomp==0.1.2`."
        ) from exc

    eperm = sc.ERRNO(errno.EPERM)
    filt = sc.SyscallFilter(sc.ALLOW)
    filt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    unknown: list[str] = []
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(eperm, name)
        except (OSError, ValueError):  # a name this libseccomp does not know on this architecture
            unknown.append(name)
    if {"ptrace", "mount", "unshare", "setns", "bpf"} & set(unknown):
        raise SeccompUnavailableError(f"libseccomp does not know core syscalls: {unknown}")
    for flag in CLONE_NAMESPACE_FLAGS:
        filt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    filt.add_rule(eperm, "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    filt.add_rule(eperm, "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    filt.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    filt.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCLINUX))
    filt.add_rule(eperm, "personality", sc.Arg(0, sc.NE, _PERSONALITY_QUERY))

    fd = os.memfd_create("evalgate-seccomp", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "wb") as handle:
            filt.export_bpf(handle)
        size = os.fstat(fd).st_size
        program = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    if not program or len(program) % 8:
        raise SeccompUnavailableError(f"libseccomp exported a malformed filter ({len(program)} bytes)")
    return program
