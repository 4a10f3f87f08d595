"""``bwrap``: the worker inside bubblewrap, the default where ``bwrap`` works.

The sandbox's root is empty but for what ``host_view.worker_view`` lists (the system's programs
and libraries, the Python environment, the code folders of the packages the worker imports, GPU
nodes when needed), all read-only: the project checkout, earlier runs, home directories and the
rest of the host are not there to list or read (threat row 28). ``/tmp`` is an empty tmpfs, the
work dir is the only writable place and its ``inputs/`` folder is read-only, and the worker runs as
``nobody`` in fresh user, PID, IPC, UTS and network namespaces with every capability dropped.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from . import host_view
from .base import Wrapped

NAME = "bwrap"
WORKDIR = "/tmp/work"  # where the work dir appears inside the sandbox
SCRATCH_BYTES = 64 << 20  # each of /tmp and /dev/shm


def _base_argv() -> list[str]:
    return [
        "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-all",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--cap-drop",
        "ALL",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        # Memory-backed folders the worker could fill without the disk or the memory watchdog
        # seeing it (tmpfs pages are not the worker's resident memory): /tmp, and /dev/shm,
        # which --dev makes writable. The worker's own scratch is the work dir (TMPDIR).
        "--size",
        str(SCRATCH_BYTES),
        "--tmpfs",
        "/tmp",
        "--size",
        str(SCRATCH_BYTES),
        "--tmpfs",
        "/dev/shm",
    ]


def _view_args(argv: list[str], gpu: bool) -> list[str]:
    """The host as the worker sees it: only ``host_view``'s entries, read-only, on a root that
    is itself read-only (bwrap's root is a tmpfs: writable, it would be memory no cap counts)."""
    args: list[str] = []
    for entry in host_view.worker_view(argv, gpu):
        if entry.link is not None:
            args += ["--symlink", entry.link, entry.path]
        elif entry.device:
            args += ["--dev-bind", entry.path, entry.path]
        else:
            args += ["--ro-bind", entry.path, entry.path]
    return [*args, "--remount-ro", "/"]


@functools.cache
def available() -> str | None:
    exe = shutil.which("bwrap")
    if not exe:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    true = shutil.which("true") or "/bin/true"
    try:
        probe = subprocess.run(
            [*_base_argv(), *_view_args([], False), true],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return None


def wrap(argv: list[str], workdir: str, gpu: bool, writable: tuple[str, ...] = ()) -> Wrapped:
    args = _base_argv() + _view_args(argv, gpu)
    args += ["--bind", workdir, WORKDIR]
    for path in writable:  # e.g. this source's own load_inline build cache
        args += ["--bind", path, path]
    inputs = os.path.join(workdir, "inputs")
    if os.path.isdir(inputs):
        args += ["--ro-bind", inputs, f"{WORKDIR}/inputs"]
    args += ["--chdir", WORKDIR, "--"]
    isolation = ["bwrap", "ro-root", "host-view", "tmpfs", "netns", "pidns", "userns", "no-caps"]
    isolation += ["rlimits"]
    return Wrapped(argv=args + argv, isolation=isolation, workdir=WORKDIR)
