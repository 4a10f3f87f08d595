"""``bwrap``: the worker inside bubblewrap, the default where ``bwrap`` works.

The whole system and the Python environment are mounted read-only, ``/tmp`` is an empty tmpfs,
the user's home is hidden (no ``~/.netrc`` or ``.env`` files to read), the work dir is the only
writable place and its ``inputs/`` folder is read-only, and the worker runs as ``nobody`` in fresh
user, PID, IPC, UTS and network namespaces with every capability dropped. GPU device nodes are
bound in when the evaluation needs the GPU.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .base import Wrapped

NAME = "bwrap"
WORKDIR = "/tmp/work"  # where the work dir appears inside the sandbox
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the checkout (editable) or site-packages


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
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]


def _hidden_and_rebound() -> list[str]:
    """Hide home directories, then re-expose (read-only) what the worker needs to import."""
    args: list[str] = []
    for hidden in {os.path.expanduser("~"), "/root"}:
        if hidden not in ("/", "") and os.path.isdir(hidden):
            args += ["--tmpfs", hidden]
    needed = {sys.prefix, sys.base_prefix, str(_PACKAGE_ROOT)}
    for path in sorted(needed):
        if os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


@functools.cache
def available() -> str | None:
    exe = shutil.which("bwrap")
    if not exe:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        probe = subprocess.run([*_base_argv(), "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces here: {probe.stderr.strip()[:200]}"
    return None


def wrap(argv: list[str], workdir: str, gpu: bool, writable: tuple[str, ...] = ()) -> Wrapped:
    args = _base_argv() + _hidden_and_rebound()
    args += ["--bind", workdir, WORKDIR]
    for path in writable:  # e.g. this source's own load_inline build cache
        args += ["--bind", path, path]
    inputs = os.path.join(workdir, "inputs")
    if os.path.isdir(inputs):
        args += ["--ro-bind", inputs, f"{WORKDIR}/inputs"]
    if gpu:
        for node in sorted(glob.glob("/dev/nvidia*")):
            args += ["--dev-bind", node, node]
    args += ["--chdir", WORKDIR, "--"]
    isolation = ["bwrap", "ro-root", "tmpfs", "netns", "pidns", "userns", "no-caps", "rlimits"]
    return Wrapped(argv=args + argv, isolation=isolation, workdir=WORKDIR)
