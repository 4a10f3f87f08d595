"""What every backend returns, and the pieces they share."""

from __future__ import annotations

import ctypes
import dataclasses
import os
from collections.abc import Callable

CLONE_NEWNET = 0x40000000


@dataclasses.dataclass
class Wrapped:
    argv: list[str]
    preexec: Callable[[], None] | None  # runs in the child between fork and exec
    isolation: list[str]  # what this wrapping achieved, for the verdict ("netns", "ro-root", ...)
    workdir: str | None = None  # the work dir's path as the worker sees it, if it differs


def unshare_network() -> bool:
    """Move the calling process into a fresh network namespace (no interfaces but loopback).

    Needs CAP_SYS_ADMIN (root) or an unprivileged user namespace; returns False where the kernel
    refuses, and the caller records that the worker kept the host's network.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.unshare(CLONE_NEWNET) == 0


def network_namespace_works() -> bool:
    """Probe in a forked child so the orchestrator's own namespace is never touched."""
    pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        os._exit(0 if unshare_network() else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
