"""``process``: a fresh process in its own session and, where allowed, its own network namespace.

The worker itself sets its resource limits and unshares its network namespace before any
candidate code loads (``sandbox/limits.py``). This backend does not hide the file system, by
design: a candidate here can read the project checkout, earlier runs and home directories (threat
row 28) and write outside its work dir; only the static gate, which forbids file access, stops
that. Use ``bwrap`` (the default where it exists) for a root that holds only what a worker needs
(``host_view.py``).
"""

from __future__ import annotations

import os

from .base import Wrapped

NAME = "process"


def available() -> str | None:
    return None if os.name == "posix" else "needs a POSIX system"


def wrap(argv: list[str], workdir: str, gpu: bool, writable: tuple[str, ...] = ()) -> Wrapped:
    isolation = ["session", "rlimits", "scrubbed-env", "private-workdir"]
    return Wrapped(argv=argv, isolation=isolation, isolate_network=True)
