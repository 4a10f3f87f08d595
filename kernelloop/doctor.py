"""``kernelloop doctor``: what each optional piece enables, whether it is here, how to get it."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str
    consequence: str  # what is disabled without it, and how to get it


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip() if out.returncode == 0 else None


def _gpu() -> Check:
    import torch

    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return Check(
            "GPU",
            True,
            f"{p.name}, sm_{p.major}{p.minor}, {p.total_memory >> 30} GiB, "
            f"torch {torch.__version__} (CUDA {torch.version.cuda})",
            "",
        )
    return Check(
        "GPU",
        False,
        f"torch {torch.__version__} sees no CUDA device",
        "no timing, no CUDA candidates run; Triton runs under the interpreter",
    )


def _driver() -> Check:
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return Check(
        "driver",
        bool(out),
        out or "nvidia-smi not found",
        "install the NVIDIA driver to run anything on a GPU",
    )


def _nvrtc() -> Check:
    try:
        from cuda.bindings import nvrtc

        err, major, minor = nvrtc.nvrtcVersion()
        return Check("NVRTC", True, f"NVRTC {major}.{minor} (cuda-bindings)", "")
    except Exception as exc:  # missing wheel or library: both mean the same to the user
        return Check(
            "NVRTC",
            False,
            f"{type(exc).__name__}: {exc}"[:200],
            "`cuda` candidates cannot compile: pip install cuda-bindings nvidia-cuda-nvrtc",
        )


def _triton() -> Check:
    if importlib.util.find_spec("triton") is None:
        return Check("Triton", False, "not installed", "no Triton candidates: pip install triton")
    import triton

    return Check("Triton", True, f"triton {triton.__version__}", "")


def _bwrap() -> Check:
    from .sandbox.backends import bwrap

    why = bwrap.available()
    return Check(
        "bwrap",
        why is None,
        why or "bubblewrap works (default sandbox)",
        "workers fall back to the process sandbox (no read-only root): apt-get install bubblewrap",
    )


def _tool(name: str, cmd: list[str], consequence: str) -> Check:
    if not shutil.which(cmd[0]):
        return Check(name, False, f"{cmd[0]} not on PATH", consequence)
    out = _run(cmd) or "found"
    return Check(name, True, out.splitlines()[-1][:120], "")


def _docker() -> Check:
    from . import settings
    from .sandbox.backends import docker

    why = docker.available()  # SDK installed, client on PATH, daemon answers, image ready
    image = settings.get().docker_image
    return Check(
        "docker",
        why is None,
        why or f"daemon answers; image {image!r} ready (--sandbox docker)",
        "no docker sandbox: pip install 'kernelloop[cluster]', apt-get install docker.io, "
        "start dockerd",
    )


def _ray() -> Check:
    if importlib.util.find_spec("ray") is None:
        return Check(
            "ray", False, "not installed", "no --executor ray: pip install 'kernelloop[cluster]'"
        )
    from importlib.metadata import version

    return Check("ray", True, f"ray {version('ray')} (--executor ray)", "")


def _nvml() -> Check:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return Check("NVML", True, f"driver {version}", "")
    except Exception as exc:  # ImportError or NVMLError: reported the same way
        return Check(
            "NVML",
            False,
            f"{type(exc).__name__}: {exc}"[:200],
            "no power/clock/throttle sampling: pip install nvidia-ml-py (GPU hosts)",
        )


def run_checks() -> list[Check]:
    return [
        _gpu(),
        _driver(),
        _tool(
            "nvcc",
            ["nvcc", "--version"],
            "cuda-inline candidates may not build; NVRTC still compiles `cuda` candidates",
        ),
        _nvrtc(),
        _triton(),
        _bwrap(),
        _docker(),
        _ray(),
        _tool("ncu", ["ncu", "--version"], "no Nsight Compute metrics for the Judge"),
        _nvml(),
    ]
