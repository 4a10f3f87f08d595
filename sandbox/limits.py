"""Resource limits a worker applies to itself before any candidate code exists in it.

Setting them inside the worker (rather than in a ``preexec_fn``) means the same limits hold under
every backend, including inside bubblewrap's user namespace, where ``RLIMIT_NPROC`` counts only
the sandbox's own processes. Soft and hard limits are set together so candidate code cannot raise
them again.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import resource

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000


@dataclasses.dataclass(frozen=True)
class Limits:
    memory_bytes: int | None  # address-space cap; None for GPU workers (CUDA maps huge VA ranges)
    cpu_seconds: int
    file_bytes: int
    processes: int  # extra processes/threads the worker may create

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _set(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _count_own_uid_tasks() -> int:
    """Tasks (threads included: that is what RLIMIT_NPROC counts) owned by our uid."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _drop_capabilities() -> None:
    """capset(2) with empty sets: a root worker keeps uid 0 but loses CAP_SYS_RESOURCE, so
    RLIMIT_NPROC binds (it is what stops a fork bomb) and it cannot undo the other limits."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    libc = ctypes.CDLL(None, use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two Data structs
    data = (Data * 2)()
    libc.capset(ctypes.byref(header), data)


def apply(limits: Limits) -> None:
    # Threads count against RLIMIT_NPROC, so the budget is on top of what already exists.
    existing = _count_own_uid_tasks()
    if os.getuid() == 0:
        _drop_capabilities()
    _set(resource.RLIMIT_NPROC, existing + limits.processes)
    _set(resource.RLIMIT_CPU, limits.cpu_seconds)
    _set(resource.RLIMIT_FSIZE, limits.file_bytes)
    _set(resource.RLIMIT_CORE, 0)
    if limits.memory_bytes:
        _set(resource.RLIMIT_AS, limits.memory_bytes)


def isolate_network() -> str:
    """Move this (still single-threaded) process into a new network namespace with no
    interfaces but a down loopback. Root can do it directly; others through a user namespace
    that maps their own uid. Returns what happened, for the verdict."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) == 0:
        return "isolated"
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return f"host network (unshare refused: {os.strerror(ctypes.get_errno())})"
    for path, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{path}", "w") as fh:
            fh.write(text)
    return "isolated (user namespace)"
