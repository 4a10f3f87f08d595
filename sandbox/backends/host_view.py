"""What of the host a confined worker sees: an explicit list, each entry with why it is there.

Threat row 28: a candidate that can list the host can read the project checkout, earlier runs
(other candidates, verdicts, LLM transcripts) and other users' files, and print them to its
stderr, which lands in the verdict a campaign shows to the Coder LLM. So the confined backends
(``bwrap``, and ``docker`` with its ``host`` image) start from an empty root and add only what is
listed here, read-only; the work dir (read-write) and ``/dev``, ``/proc``, ``/tmp`` are each
backend's own business. Nothing else exists inside: no ``/etc`` beyond the loader's cache, no
``/root``, ``/home``, ``/work``, ``/srv``, ``/opt`` beyond what Python or a profiler lives in.

An editable install's package root IS the checkout, so only the code folders of the packages a
worker imports are bound (``pyproject.toml`` maps ``kernelloop.sandbox`` to ``sandbox/``...), never
the checkout itself (``runs/``, ``tests/``, ``.git``, ``benchmarks/``, ``kernelbench/problems``).
Where an entry was found needed by a failing worker (or by reading the tool that needs it), its
reason says so; ``tests/test_host_view.py`` checks the list and ``tests/test_escapes.py`` that a
candidate listing the host finds none of the checkout.

The ``process`` backend cannot hide the file system by design: there the static gate, which
forbids file access, is the only wall (``sandbox/backends/process.py``).
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
import sys
from collections.abc import Sequence

# The kernelloop packages a worker imports (candidate, profile and static-compile workers):
# ``kernelloop.settings``, ``kernelloop.sandbox.*`` and ``kernelloop.feedback.*``. Not
# ``kernelloop.kernelbench``: its problems and bundled solutions stay with the orchestrator.
WORKER_PACKAGES = ("kernelloop", "kernelloop.sandbox", "kernelloop.feedback")
# Third-party packages a worker imports; bound on their own only where they live outside the
# Python environment (a source checkout of Triton installed in development mode, say).
THIRD_PARTY = ("torch", "triton", "numpy", "cuda", "nvidia")
# Top-level folders that merged-/usr systems make symlinks into /usr, older ones real folders.
# Needed (a worker without each was run): /lib64 and /lib, or no program starts. Needed on a GPU
# only (read in the tools' sources; no CPU worker fails without them): /bin and /sbin.
_TOP_LEVEL = {
    "/lib64": "the ELF interpreter every program names (/lib64/ld-linux-x86-64.so.2)",
    "/lib": "the loader itself: Debian's /lib64/ld-linux-x86-64.so.2 links to /lib/x86_64-...",
    "/bin": "/bin/sh, through which ninja runs load_inline's compile commands (GPU)",
    "/sbin": "/sbin/ldconfig, which Triton's GPU driver runs to find libcuda (GPU)",
    "/lib32": "32-bit libraries, where the system has them",
    "/libx32": "x32 libraries, where the system has them",
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One thing a worker sees: ``path`` on the host, at the same path inside."""

    path: str
    why: str
    link: str | None = None  # a symlink with this target instead of a bind (merged /usr)
    device: bool = False  # a device node (or folder of them), bound with device access


def worker_view(argv: Sequence[str] = (), gpu: bool = False) -> list[Entry]:
    """Everything a worker running ``argv`` sees besides its work dir, ``/dev``, ``/proc`` and
    ``/tmp``: outermost paths first, nothing bound twice, nothing inside what is bound already."""
    entries = [*_system(), *_python(), *_packages(), *_programs(argv)]
    if gpu:
        entries += _gpu()
    return _outermost(entries)


def _system() -> list[Entry]:
    entries = [
        Entry("/usr", "programs and shared libraries: libc, libstdc++, the C compiler and "
              "headers load_inline and Triton's GPU launcher build with, the driver's libcuda "
              "(/usr/lib/x86_64-linux-gnu), CUDA under /usr/local/cuda"),
    ]  # fmt: skip
    for path, why in _TOP_LEVEL.items():
        if os.path.islink(path):
            entries.append(Entry(path, why, link=os.readlink(path)))
        elif os.path.isdir(path):
            entries.append(Entry(path, why))
    if os.path.exists("/etc/ld.so.cache"):
        # The only /etc file. A CPU worker runs without it; on a GPU, `ldconfig -p` (Triton
        # looking for libcuda) prints it, and dlopen finds libraries that /etc/ld.so.conf.d puts
        # outside the loader's built-in folders (the driver's libcuda in containers) through it.
        # Users, groups and name services are not needed: the worker looks nobody up (it runs
        # under bwrap as an unnamed uid).
        entries.append(Entry("/etc/ld.so.cache", "the dynamic loader's index of library folders"))
    return entries


def _python() -> list[Entry]:
    entries = [
        Entry(sys.base_prefix, "the Python interpreter and its standard library"),
        Entry(sys.prefix, "the Python environment: torch, triton, numpy, site-packages"),
    ]
    # A venv's bin/python is a symlink into the interpreter's own prefix (Debian: /usr/bin).
    exe = os.path.realpath(sys.executable)
    entries.append(Entry(os.path.dirname(os.path.dirname(exe)), "the interpreter's real prefix"))
    for name in THIRD_PARTY:
        for folder in _package_folders(name):
            entries.append(Entry(folder, f"the {name} package, installed outside the environment"))
    return entries


def _packages() -> list[Entry]:
    """The code folders of kernelloop's worker-side packages (inside site-packages for a regular
    install, so nothing of their own; folders of the checkout for an editable one)."""
    return [
        Entry(folder, f"{name}: code the worker imports")
        for name in WORKER_PACKAGES
        for folder in _package_folders(name)
    ]


def _programs(argv: Sequence[str]) -> list[Entry]:
    """The folder of each program the command runs by absolute path, e.g. a profiler installed
    in /opt/nvidia/nsight-compute/<version>/ (its own libraries live beside it)."""
    entries = []
    for arg in argv:
        if os.path.isabs(arg) and os.path.isfile(arg) and os.access(arg, os.X_OK):
            entries.append(Entry(os.path.dirname(os.path.realpath(arg)), f"the program {arg}"))
    return entries


def _gpu() -> list[Entry]:
    entries = [
        Entry(node, "an NVIDIA device node (control, UVM, the GPUs, MIG capabilities)", device=True)
        for node in sorted(glob.glob("/dev/nvidia*"))
    ]
    # Not verified on a GPU here (read from what the tools open; a CPU worker needs none of it):
    # the driver library and NVML read PCI topology and NUMA nodes under /sys, which every
    # container has; kernel and device facts, no one's files.
    if os.path.isdir("/sys"):
        entries.append(Entry("/sys", "PCI and NUMA facts the CUDA driver and NVML read"))
    # /proc/driver/nvidia comes with the sandbox's own /proc. The toolkit under /usr/local/cuda is
    # inside /usr; elsewhere (CUDA_HOME=/opt/cuda) it needs its own entry: nvcc for load_inline.
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and os.path.isdir(home):
            entries.append(Entry(home, f"the CUDA toolkit (${var}): nvcc, headers, libraries"))
    return entries


def _package_folders(name: str) -> list[str]:
    """Where package ``name`` would be imported from, without importing it (a parent package
    is imported to find a subpackage: kernelloop's are cheap, and the orchestrator has them)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin and os.path.isfile(spec.origin):
        folders = [os.path.dirname(spec.origin)]  # a single-file module: its folder
    return [f for f in folders if os.path.isdir(f)]


def _outermost(entries: list[Entry]) -> list[Entry]:
    """Each path once, both as given and resolved (a bind of a symlinked path must find its
    target inside too), and none inside another bound folder. A path that resolves to ``/``
    would expose the whole host: refused loudly."""
    expanded: list[Entry] = []
    for e in entries:
        expanded.append(e)
        real = os.path.realpath(e.path)
        if e.link is None and not e.device and real != e.path:
            expanded.append(dataclasses.replace(e, path=real))
    for e in expanded:
        if e.link is None and os.path.realpath(e.path) == "/":
            raise RuntimeError(f"refusing to show the whole host to a worker: {e.path} ({e.why})")
    folders = [e.path for e in expanded if e.link is None and not e.device]
    kept: dict[str, Entry] = {}
    for e in sorted(expanded, key=lambda e: (e.path.count("/"), e.path)):
        inside = any(e.path != f and e.path.startswith(f.rstrip("/") + "/") for f in folders)
        if e.path not in kept and not (inside and not e.device):
            kept[e.path] = e
    return list(kept.values())
