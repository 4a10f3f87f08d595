"""``dispatch(op, *tensors, **config)``: run the best kernel this machine has for a call.

Order of preference, per (GPU architecture, dtype, shape bucket):

1. the fastest verified, non-stale library entry (user library first, then shipped kernels);
2. the module's seed kernel (Triton), where it can run: on a GPU, or on a CPU under the Triton
   interpreter (``TRITON_INTERPRET=1``);
3. the PyTorch reference.

Compiled entries are cached per (entry, config). ``KERNELLOOP_DISPATCH_LOG=1`` prints one line
per new decision saying what ran and why; :func:`explain` returns that line without running.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import torch

from . import ops, store

_compiled: dict[tuple, Callable] = {}
_decisions: dict[tuple, tuple[str, Callable, str]] = {}
_logged: set[tuple] = set()


def arch_of(device: torch.device) -> str:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"sm_{major}{minor}"
    return device.type


def _triton_can_run(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"


_library_cache: list = [None, None]  # [library_dir it was made for, Library]
_stamp_paths: dict[tuple, tuple[str, str]] = {}


def _library():
    """The default library, rebuilt only when the configured directory changes (building one
    costs more than the rest of a dispatch decision)."""
    from .. import settings
    from .store import Library

    directory = settings.get().library_dir
    if _library_cache[1] is None or _library_cache[0] != directory:
        _library_cache[:] = [directory, Library.default()]
    return _library_cache[1]


_STAMP_TTL_S = 1.0  # how stale a "library unchanged" answer may be
_stamps: dict[tuple, tuple[float, tuple, int]] = {}


def _stamp(library, op: str) -> tuple:
    """Changes whenever an entry of ``op`` is added or removed (directory mtimes): a cached
    decision is reused only while the library it was made from is unchanged. Looked at no more
    than once a second per op, unless this process wrote an entry since: two ``stat`` calls were
    a third of a small call's overhead, and another process's promotion shows within a second."""
    key = (id(library), op)
    now, written = time.monotonic(), store.writes()
    seen = _stamps.get(key)
    if seen is not None and now - seen[0] < _STAMP_TTL_S and seen[2] == written:
        return seen[1]
    if key not in _stamp_paths:
        _stamp_paths[key] = (str(library.user_dir / op), str(library.shipped_dir / op))
    out = []
    for path in _stamp_paths[key]:
        try:
            out.append(os.stat(path).st_mtime_ns)
        except OSError:
            out.append(None)
    _stamps[key] = (now, tuple(out), written)
    return _stamps[key][1]


def choose(op: str, tensors: Sequence[torch.Tensor], config: dict[str, Any]):
    """(kind, callable, reason): kind is "entry", "seed" or "reference".

    Decisions are cached per (op, device, dtype, bucket, config, library state): a module call
    in a hot loop pays for a bucket computation and two ``stat`` calls, not a library scan.
    """
    spec = ops.get(op)
    device = tensors[0].device
    dtype, bucket = spec.dtype_of(tensors), spec.bucket(tensors, config)
    library = _library()
    key = (
        op,
        str(device),
        dtype,
        bucket,
        tuple(sorted(config.items())),
        _stamp(library, op),
        os.environ.get("TRITON_INTERPRET"),
    )
    if key not in _decisions:
        _decisions[key] = _decide(spec, library, tensors, config, device, dtype, bucket)
    return _decisions[key]


def _decide(spec, library, tensors, config, device, dtype, bucket):
    op, arch = spec.name, arch_of(device)
    candidates = [
        m
        for m in library.entries(op)
        if m.arch == arch and m.dtype == dtype and m.bucket == bucket and not m.stale
    ]
    if candidates:
        best = min(candidates, key=lambda m: m.median_ms if m.median_ms is not None else 1e30)
        fn = _entry_callable(best, spec, config, device)
        why = f"library entry {best.entry_id} ({best.location}, {best.describe()})"
        return "entry", fn, why
    missing = f"no verified entry for {arch}/{dtype}/{bucket}"
    if spec.seed is not None and _triton_can_run(device):
        return "seed", lambda *t: spec.seed(*t, **config), f"seed kernel ({missing})"
    why = "Triton cannot run here" if spec.seed is not None else "the op has no seed kernel"
    return "reference", lambda *t: spec.reference(*t, **config), f"PyTorch ({missing}; {why})"


def dispatch(op: str, *tensors: torch.Tensor, **config: Any) -> torch.Tensor:
    kind, fn, why = choose(op, tensors, config)
    if _log_enabled():
        key = (op, kind, why)
        if key not in _logged:
            _logged.add(key)
            print(f"[kernelloop dispatch] {op}: {why}", file=sys.stderr)
    return fn(*tensors)


def explain(op: str, *tensors: torch.Tensor, **config: Any) -> str:
    return choose(op, tensors, config)[2]


def _log_enabled() -> bool:
    from .. import settings

    return settings.get().dispatch_log


def _entry_callable(manifest, spec: ops.OpSpec, config: dict[str, Any], device) -> Callable:
    key = (manifest.entry_id, tuple(sorted(config.items())), str(device))
    if key not in _compiled:
        # A verified kernel from the library: imported into the user's process on purpose,
        # exactly as a hand-written extension would be. It passed the evaluator to get here.
        module = types.ModuleType(f"kernelloop_entry_{manifest.entry_id.replace('-', '_')}")
        module.__file__ = str(manifest.source_path)
        sys.modules[module.__name__] = module  # Triton reads kernel sources via the module
        source = manifest.source_path.read_text()
        exec(compile(source, str(manifest.source_path), "exec"), module.__dict__)
        instance = module.ModelNew(*spec.init_args(config))
        if isinstance(instance, torch.nn.Module):
            instance = instance.to(device)
        _compiled[key] = instance
    return _compiled[key]


def clear_cache() -> None:
    _compiled.clear()
    _decisions.clear()
    _stamp_paths.clear()
    _stamps.clear()
    _library_cache[:] = [None, None]
    _logged.clear()
