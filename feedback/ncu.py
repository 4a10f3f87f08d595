"""Nsight Compute: which counters to ask for, the command that asks, and what the answer says.

Read top-down: the kernel-name filter, :func:`build_command`, :func:`parse_csv` (``ncu --csv
--page raw`` output into an :class:`NcuReport`), and :func:`profile_candidate`, which runs a
candidate under ``ncu`` *inside* the sandbox. The metric sets (``default`` and the extras the
Judge may ask for) are in ``ncu_metrics.py``. This module is the one adapter to the ``ncu``
binary; tests patch it.

Which launches are profiled. The candidate's own kernels only: a name filter built from its source
(``--kernel-name regex:...``; a Triton kernel is named after its ``@triton.jit`` function, a CUDA
one after its ``__global__`` function), so torch's allocations and copies around it are not
measured. Which calls: the profile worker warms the model up (Triton compiles, autotuners try
their configurations), then brackets the measured call with ``cudaProfilerStart``/``Stop`` and
``ncu`` runs with ``--profile-from-start off``: warm-up and autotuning launches are never
profiled, and no launch count has to be guessed. (An NVTX range would do the same;
``cudaProfilerStart`` needs no NVTX library and no ``--nvtx-include`` syntax.)

Trust. Profiles advise the Judge; they never accept or reject a kernel. The candidate runs in the
same sandbox as in the evaluator and can write to its work dir, where ncu's log lands, so a
candidate could forge its own metrics, but not its verdict.

What the numbers mean. ``ncu`` replays each kernel once per counter pass with caches flushed and
clocks locked to base (its defaults), so durations here are a little longer than the evaluator's
timings: read them as ratios (percent of peak, hit rates, stalls), not as the kernel's speed.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import glob
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import pyast
from ..errors import KernelloopError
from .ncu_metrics import resolve_metrics

SCHEMA_VERSION = 1
DEFAULT_LAUNCH_COUNT = 16  # profiled launches at most: bounds the time of a kernel-per-row loop
WORKER_MODULE = "kernelloop.sandbox.profile_job"
LOG_FILE = "ncu-report.csv"  # written by ncu into the worker's directory

Value = float | str  # a number, or what ncu printed instead ("n/a")

# --- the kernel filter -----------------------------------------------------------------------
_GLOBAL = re.compile(
    r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
    r"(?:__launch_bounds__\s*\([^)]*\)\s*)?([A-Za-z_]\w*)\s*[(<]"
)
_JIT_DECORATORS = {"jit", "autotune", "heuristics"}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def kernel_names(source: str) -> list[str]:
    """The kernels a candidate defines: ``@triton.jit`` functions and CUDA ``__global__``
    functions (found in the source's string literals). Read, never run."""
    names: list[str] = []
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        texts = [source]
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                _decorator_name(d) in _JIT_DECORATORS for d in node.decorator_list
            ):
                names.append(node.name)
        texts = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and "__global__" in n.value
        ]
    for text in texts:
        names += _GLOBAL.findall(text)
    return list(dict.fromkeys(names))


def kernel_regex(names: Sequence[str]) -> str | None:
    """A regex matching exactly these kernels under ``--kernel-name-base function`` (which
    prints ``ns::name<T>`` for C++ kernels and the bare name for Triton and ``extern "C"``)."""
    safe = [n for n in names if re.fullmatch(r"[A-Za-z_]\w*", n)]
    if not safe:
        return None
    return rf"^(.*::)?({'|'.join(safe)})(<.*)?$"


def build_command(
    python: str,
    worker_argv: Sequence[str],
    metrics: Sequence[str],
    kernel_filter: str | Sequence[str] | None,
    *,
    ncu: str = "ncu",
    log_file: str | None = None,
    launch_skip: int = 0,
    launch_count: int = DEFAULT_LAUNCH_COUNT,
    from_start: bool = True,
    nvtx_include: str | None = None,
) -> list[str]:
    """``ncu ... python WORKER_ARGV``: raw page as CSV, base units, only the candidate's kernels.

    ``kernel_filter`` is a regex (``kernel_regex``) or the kernel names themselves; ``None``
    profiles every kernel. ``from_start=False`` waits for the worker's ``cudaProfilerStart``.
    """
    if not metrics:
        raise ValueError("no metrics to collect")
    if kernel_filter is not None and not isinstance(kernel_filter, str):
        kernel_filter = kernel_regex(kernel_filter)
    cmd = [
        ncu,
        "--csv",
        "--page",
        "raw",
        "--print-units",
        "base",  # bytes and nanoseconds, not "Mbyte"/"usecond" scaled per launch
        "--metrics",
        ",".join(metrics),
        "--target-processes",
        "all",
        "--kernel-name-base",
        "function",  # the filter matches names without parameter lists...
        "--print-kernel-base",
        "function",  # ...and the report shows the same names
    ]
    if kernel_filter:
        cmd += ["--kernel-name", f"regex:{kernel_filter}"]
    cmd += ["--launch-skip", str(launch_skip), "--launch-count", str(launch_count)]
    if not from_start:
        cmd += ["--profile-from-start", "off"]
    if nvtx_include:
        cmd += ["--nvtx", "--nvtx-include", nvtx_include]
    if log_file:
        cmd += ["--log-file", log_file]  # the report, away from the candidate's own stdout
    return [*cmd, python, *worker_argv]


# --- the report ------------------------------------------------------------------------------
class NcuError(KernelloopError, RuntimeError):
    """Nsight Compute gave no usable report (the base of this module's errors)."""


class ProfileError(NcuError):
    """Nothing could be measured for this candidate: no GPU, no ncu, the static gate refused it,
    it failed to build or run, or ncu matched no kernel. The message says which; the caller
    goes on without counters (profiling is feedback, never a verdict)."""


PERMISSION_HELP = (
    "Nsight Compute may not read this GPU's performance counters (ERR_NVGPUCTRPERM): the "
    "driver restricts them to administrators. Either\n"
    "  - allow every user: add `options nvidia NVreg_RestrictProfilingToAdminUsers=0` to a file "
    "in /etc/modprobe.d/ and reload the nvidia kernel module (or reboot); "
    "`grep RmProfilingAdminOnly /proc/driver/nvidia/params` then shows 0; or\n"
    "  - run as root: kernelloop's sandbox drops admin rights before candidate code runs, so "
    "also pass `--sandbox process --admin-counters` (trusted candidates only: the candidate then "
    "keeps root's capabilities); in a container, start it with `--cap-add SYS_ADMIN` as well.\n"
    "NVIDIA documents this in 'ERR_NVGPUCTRPERM: Permission issue with Performance Counters' "
    "(developer.nvidia.com/ERR_NVGPUCTRPERM)."
)


class NcuPermissionError(NcuError):
    """The driver refused access to the performance counters; the message says how to allow it."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(PERMISSION_HELP + (f"\nncu said: {detail}" if detail else ""))


@dataclasses.dataclass
class KernelLaunch:
    """One profiled launch: ``metrics`` maps a metric name to (value, unit) as ncu printed it;
    ``info`` keeps the identification columns (Block Size, Grid Size, Device, CC, ...)."""

    id: str
    name: str
    metrics: dict[str, tuple[Value, str]]
    info: dict[str, str] = dataclasses.field(default_factory=dict)

    def number(self, metric: str) -> float | None:
        value = self.metrics.get(metric, (None, ""))[0]
        return value if isinstance(value, float) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "info": self.info,
        }


@dataclasses.dataclass
class NcuReport:
    kernels: list[KernelLaunch]
    requested: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)  # requested, absent from output
    warnings: list[str] = dataclasses.field(default_factory=list)  # ncu's ==WARNING== lines etc.
    command: list[str] = dataclasses.field(default_factory=list)
    tool: str | None = None  # "ncu 2025.3.1.0", when known
    device: str | None = None  # GPU name, when known
    raw: str = ""  # the CSV as ncu wrote it (not in to_dict: save it with save_raw)

    def kernel_names(self) -> list[str]:
        return list(dict.fromkeys(k.name for k in self.kernels))

    def aggregate(self, kernel: str | None = None) -> dict[str, tuple[Value, str]]:
        """One (value, unit) per metric over all launches (or those of ``kernel``).

        Counters and durations (``.sum``) add up. Everything else (percentages, ratios, launch
        configuration) is a mean weighted by each launch's duration when every launch has one: a
        2 us helper kernel must not halve the DRAM throughput of a 2 ms kernel. Units are
        brought to a common one first. A metric with no number anywhere keeps ncu's text.
        """
        launches = [k for k in self.kernels if kernel is None or k.name == kernel]
        durations = [k.number("gpu__time_duration.sum") for k in launches]
        weights = durations if all(d and d > 0 for d in durations) else [1.0] * len(launches)
        out: dict[str, tuple[Value, str]] = {}
        names = dict.fromkeys(m for k in launches for m in k.metrics)
        for metric in names:
            numbers: list[tuple[float, float]] = []  # (value in the common unit, weight)
            unit, text = None, None
            for launch, weight in zip(launches, weights, strict=True):
                if metric not in launch.metrics:
                    continue
                value, this_unit = launch.metrics[metric]
                if not isinstance(value, float):
                    text = text or (value, this_unit)
                    continue
                base, factor = _unit_scale(this_unit)
                if unit is None:
                    unit = base
                if base != unit:
                    continue  # incomparable units (should not happen with --print-units base)
                numbers.append((value * factor, weight))
            if not numbers:
                out[metric] = text or ("n/a", "")
            elif metric.endswith(".sum"):
                out[metric] = (sum(v for v, _ in numbers), unit or "")
            else:
                total = sum(w for _, w in numbers)
                out[metric] = (sum(v * w for v, w in numbers) / total, unit or "")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": self.tool,
            "device": self.device,
            "kernels": [k.to_dict() for k in self.kernels],
            "aggregate": {k: list(v) for k, v in self.aggregate().items()},
            "requested": self.requested,
            "missing": self.missing,
            "warnings": self.warnings,
            "command": self.command,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NcuReport:
        kernels = [
            KernelLaunch(
                k["id"], k["name"], {m: (v[0], v[1]) for m, v in k["metrics"].items()}, k["info"]
            )
            for k in data["kernels"]
        ]
        fields = ("requested", "missing", "warnings", "command", "tool", "device")
        return cls(kernels, **{f: data.get(f) for f in fields if data.get(f) is not None})

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def save_raw(self, path: str | Path) -> None:
        Path(path).write_text(self.raw)


_PREFIX = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_TIME = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9}


def _unit_scale(unit: str) -> tuple[str, float]:
    """(base unit, factor to it): "Mbyte" -> ("byte", 1e6), "usecond" -> ("nsecond", 1e3)."""
    if unit in _TIME:
        return "nsecond", _TIME[unit]
    m = re.fullmatch(r"([KMGTP])(byte|cycle|inst|sector|request|warp|hz)(/.*)?", unit)
    if m:
        return m.group(2) + (m.group(3) or ""), _PREFIX[m.group(1)]
    return unit, 1.0


_METRIC_COLUMN = re.compile(r"[a-z][a-z0-9_]*__\S+")


def _value(text: str) -> Value:
    cleaned = text.strip().replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return text.strip() or "n/a"


def parse_csv(text: str, requested: Sequence[str] | None = None) -> NcuReport:
    """Parse ``ncu --csv --page raw`` output into an :class:`NcuReport`.

    The format: one header row (identification columns such as "ID", "Kernel Name", "Block
    Size", "Grid Size", then one column per metric), one row of units (empty under the
    identification columns), then one row per profiled launch. Numbers may carry thousands
    separators ("1,234.5"); a metric ncu could not collect reads "n/a" and stays text. Lines ncu
    adds around the table (``==PROF==``, ``==WARNING==``) and anything else before the header are
    skipped; warnings are kept. ``requested`` metrics absent from the header are listed in
    ``missing``. Raises :class:`NcuPermissionError` when the driver refused counter access.
    """
    if "ERR_NVGPUCTRPERM" in text:
        line = next(ln for ln in text.splitlines() if "ERR_NVGPUCTRPERM" in ln)
        raise NcuPermissionError(line.strip()[:300])
    lines = text.splitlines()
    notes = [ln.strip() for ln in lines if ln.startswith(("==WARNING==", "==ERROR=="))]
    start = next((i for i, ln in enumerate(lines) if ln.startswith('"ID"')), None)
    report = NcuReport([], requested=list(requested or []), warnings=notes, raw=text)
    if start is None:
        report.missing = list(report.requested)
        return report
    table = [ln for ln in lines[start:] if ln.startswith('"')]  # drop ==PROF== lines in between
    rows = list(csv.reader(io.StringIO("\n".join(table))))
    header, body = rows[0], rows[1:]
    units: list[str] = [""] * len(header)
    if body and body[0] and body[0][0] == "":
        units, body = body[0] + [""] * (len(header) - len(body[0])), body[1:]
    is_metric = [bool(_METRIC_COLUMN.fullmatch(h)) for h in header]
    for row in body:
        if len(row) != len(header):
            report.warnings.append(f"skipped a malformed row of {len(row)} fields")
            continue
        cells = dict(zip(header, row, strict=True))
        metrics = {
            h: (_value(v), units[i]) for i, (h, v) in enumerate(zip(header, row, strict=True))
            if is_metric[i]
        }  # fmt: skip
        info = {h: v for i, (h, v) in enumerate(cells.items()) if not is_metric[i]}
        info.pop("Kernel Name", None)
        report.kernels.append(
            KernelLaunch(info.pop("ID", ""), cells.get("Kernel Name", ""), metrics, info)
        )
    present = {h for h, m in zip(header, is_metric, strict=True) if m}
    report.missing = [m for m in report.requested if m not in present]
    return report


_UNKNOWN_METRIC = re.compile(r"Failed to find metric\s+(?:regex:)?\^?([A-Za-z0-9_.\\]+)")


def unknown_metrics(text: str, requested: Sequence[str]) -> list[str]:
    """Requested metrics ncu refused by name ("==ERROR== Failed to find metric NAME")."""
    out = []
    for m in _UNKNOWN_METRIC.finditer(text):
        name = m.group(1).replace("\\", "").rstrip(".")
        out += [r for r in requested if r == name or r.startswith(name + ".")]
    return list(dict.fromkeys(out))


# --- running it ------------------------------------------------------------------------------
def ncu_path() -> str | None:
    """``ncu`` on PATH, else where the CUDA toolkit and standalone Nsight Compute install it."""
    found = shutil.which("ncu")
    if found:
        return found
    # Standalone installs are versioned folders; the newest one wins.
    standalone = sorted(glob.glob("/opt/nvidia/nsight-compute/*/ncu"), reverse=True)
    places = ["/usr/local/cuda/bin/ncu", *standalone]
    return next((p for p in places if os.access(p, os.X_OK)), None)


def ncu_version(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Version\s+(\S+)", out.stdout)
    return f"ncu {m.group(1)}" if m else None


def unavailable() -> str | None:
    """Why Nsight Compute cannot run here (no GPU, no ncu), or None."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU here"
    if ncu_path() is None:
        return "Nsight Compute (ncu) is not on PATH"
    return None


def profile_candidate(
    problem,
    source: str,
    *,
    metrics: str | Iterable[str] = "default",
    size: str | None = None,
    sets: dict[str, Any] | None = None,
    timeout_s: float | None = None,
    sandbox: str | None = None,
    backend: str | None = None,
    admin_counters: bool = False,
) -> NcuReport:
    """Profile ``source`` (a candidate for ``problem``) with Nsight Compute, in the sandbox.

    The candidate runs in the profile worker (``sandbox/profile_job.py``) under the isolation
    backend, with ``ncu`` itself inside the sandbox in front of it: candidate code never runs in
    this process. Inputs come from the trusted reference worker, as in the evaluator.

    Returns the report. Raises :class:`ProfileError` with a short reason when nothing could be
    measured (no GPU, no ncu, the static gate refused the source, the candidate failed to build
    or run, no kernel matched), :class:`NcuPermissionError` when the driver refuses counter
    access (a machine setting: every later profile would fail the same way) and ValueError for
    bad arguments.
    ``admin_counters`` lets the profiled worker keep root's capabilities (``process`` sandbox
    only; trusted candidates only) where the driver restricts the counters to admins.
    """
    requested = resolve_metrics(metrics)
    why = unavailable()
    if why:
        raise ProfileError(why)
    from ..sandbox import profile_job

    exe = ncu_path() or "ncu"
    regex = kernel_regex(kernel_names(source))
    wanted, dropped = list(requested), []
    with profile_job.Session(
        problem,
        source,
        size=size,
        sets=sets,
        timeout_s=timeout_s,
        sandbox=sandbox,
        backend=backend,
        admin_counters=admin_counters,
    ) as session:
        if session.refused:
            raise ProfileError(session.refused)
        for _ in range(3):  # at most two retries, each without the metrics ncu did not know
            log = session.work / LOG_FILE
            log.unlink(missing_ok=True)
            attempt = session.run(
                lambda argv, wanted=wanted: build_command(
                    argv[0], argv[1:], wanted, regex, ncu=exe, log_file=LOG_FILE, from_start=False
                )
            )
            logged = log.read_text(errors="replace") if log.is_file() else ""
            everything = logged + "\n" + attempt.output
            if "ERR_NVGPUCTRPERM" in everything:
                parse_csv(everything)  # raises NcuPermissionError with ncu's line
            # The table comes from ncu's log file; the console (where the candidate prints too)
            # only when ncu never wrote one.
            text = logged if '"ID"' in logged else everything
            unknown = unknown_metrics(everything, wanted)
            if not unknown or '"ID"' in text:
                break
            dropped += unknown
            wanted = [m for m in wanted if m not in unknown]
            if not wanted:
                break
    report = parse_csv(text, requested=requested)
    report.command, report.tool, report.device = attempt.command, ncu_version(exe), attempt.device
    if dropped:
        report.warnings.append(f"ncu does not know {', '.join(dropped)} on this GPU: dropped")
    if attempt.failure:
        raise ProfileError(attempt.failure)
    if not report.kernels:
        errors = [w for w in report.warnings if w.startswith("==ERROR==")]
        if errors:
            raise ProfileError("ncu failed: " + " ".join(errors)[:1500])
        if attempt.launches is None:
            tail = everything.strip()[-800:]
            raise ProfileError(
                f"ncu wrote no report and the worker never reached its profiled call: {tail}"
            )
        where = f"kernels matching {regex}" if regex else "kernels"
        raise ProfileError(
            f"ncu profiled no kernel: the candidate launched {attempt.launches} Triton/NVRTC "
            f"kernel(s) in the profiled call, and ncu saw no {where} "
            f"(log tail: {text[-600:].strip()!r})"
        )
    return report
