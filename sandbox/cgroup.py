"""A pids cgroup around a worker: the fork-bomb limit that also binds root.

RLIMIT_NPROC is ignored for processes whose real uid is root, and a bubblewrap sandbox started
by root maps its user back to root, so on a root-run orchestrator (CI, containers, GPU hosts)
only a cgroup can cap the number of tasks. Where a writable pids controller exists (cgroup v1
``/sys/fs/cgroup/pids`` or a v2 root that delegates ``pids``), each worker gets its own group with
``pids.max``; where none exists the worker still has its rlimits, the timeout and the memory
watchdog, and the verdict's isolation list says which limits applied.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/pids")
_V2 = Path("/sys/fs/cgroup")


def _base() -> Path | None:
    if _V1.is_dir() and os.access(_V1, os.W_OK):
        return _V1
    controllers = _V2 / "cgroup.subtree_control"
    if controllers.is_file() and "pids" in controllers.read_text().split():
        return _V2 if os.access(_V2, os.W_OK) else None
    return None


class PidsCgroup:
    def __init__(self, path: Path, limit: int):
        self.path, self.limit = path, limit

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        base = _base()
        if base is None:
            return None
        path = base / f"kernelloop-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(limit))
        except OSError:
            return None
        return cls(path, limit)

    def wrap(self, argv: list[str]) -> list[str]:
        """Join the group first, then exec: every descendant is born inside it (no race)."""
        script = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
        return ["/bin/sh", "-c", script, str(self.path), *argv]

    def kill_all(self) -> int:
        killed = 0
        for _ in range(20):  # tasks may fork while we kill: repeat until the group is empty
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return killed
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        return killed

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:  # still emptying; the kernel frees it when the last task exits
            pass
