"""``process``: a fresh process in its own session and, where allowed, its own network namespace.

Resource limits are set by the worker itself before any candidate code loads (see
``sandbox/limits.py``), so they apply identically under every backend. This backend does not
hide the file system: writes outside the work dir are stopped by the static gate only. Use
``bwrap`` (the default where it exists) for a read-only root.
"""

from __future__ import annotations

import functools
import os

from .base import Wrapped, network_namespace_works, unshare_network

NAME = "process"


def available() -> str | None:
    return None if os.name == "posix" else "needs a POSIX system"


@functools.cache
def _netns_ok() -> bool:
    return network_namespace_works()


def wrap(argv: list[str], workdir: str, gpu: bool, writable: tuple[str, ...] = ()) -> Wrapped:
    isolation = ["session", "rlimits", "scrubbed-env", "private-workdir"]
    if _netns_ok():
        isolation.append("netns")

        def preexec() -> None:
            unshare_network()

        return Wrapped(argv=argv, preexec=preexec, isolation=isolation)
    return Wrapped(argv=argv, preexec=None, isolation=isolation)
