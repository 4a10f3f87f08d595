"""Where a kernel was measured: the GPU, its architecture and the software stack.

A library entry is only as good as the environment it was verified in: a new driver, CUDA, torch
or Triton can change both correctness (codegen) and speed. :func:`environment` is recorded in
every manifest; :func:`changes` says what differs, and ``kernelloop library verify`` re-validates
entries whose fingerprint no longer matches. Cheap and offline: no subprocess, no network.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import re
from pathlib import Path
from typing import Any

# The fields whose change makes an entry's verification stale (python is recorded, not compared:
# kernels do not depend on the interpreter's patch version).
COMPARED = ("gpu", "compute_capability", "driver", "cuda", "torch", "triton")
_NVIDIA_PROC = Path("/proc/driver/nvidia/version")


def arch() -> str:
    """``sm_XY`` of the current CUDA device, else ``"cpu"``."""
    import torch

    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(torch.cuda.current_device())
        return f"sm_{major}{minor}"
    return "cpu"


def environment() -> dict[str, Any]:
    """The fingerprint stored in manifests; ``None`` where a field does not apply (no GPU)."""
    import torch

    gpu = capability = driver = None
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        gpu = torch.cuda.get_device_name(index)
        major, minor = torch.cuda.get_device_capability(index)
        capability = f"{major}.{minor}"
        driver = _driver_version()
    return {
        "gpu": gpu,
        "compute_capability": capability,
        "driver": driver,
        "cuda": torch.version.cuda,
        "torch": str(torch.__version__),
        "triton": _dist_version("triton"),
        "python": platform.python_version(),
    }


def changes(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (recorded, current)}`` for the compared fields that differ."""
    return {
        key: (recorded.get(key), current.get(key))
        for key in COMPARED
        if recorded.get(key) != current.get(key)
    }


def describe_changes(diff: dict[str, tuple[Any, Any]]) -> str:
    """``torch 2.5.1 -> 2.6.0, driver 550.54 -> 560.35``."""
    return ", ".join(
        f"{key} {old or 'none'} -> {new or 'none'}" for key, (old, new) in diff.items()
    )


@functools.lru_cache(maxsize=1)
def _driver_version() -> str | None:
    # The kernel module states its version in /proc; reading it costs nothing, unlike nvidia-smi.
    try:
        text = _NVIDIA_PROC.read_text()
    except OSError:
        text = ""
    found = re.search(r"Kernel Module\s+(?:for\s+\S+\s+)?(\d+(?:\.\d+)+)", text)
    if found:
        return found.group(1)
    try:  # optional dependency (kernelloop[gpu]); works where /proc is not NVIDIA's (WSL)
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # not installed or no NVML: the driver is simply unknown
        return None


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
