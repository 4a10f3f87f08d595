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

from .. import settings
from . import ops, store

_compiled: dict[tuple, Callable] = {}
_decisions: dict[tuple, tuple[str, Callable, str]] = {}
# A call signature's slot: [decision, settings object, valid-until on the monotonic clock, the
# store's write count, TRITON_INTERPRET], the decision and what it rests on. See _refill().
_fast: dict[tuple, list] = {}
_FAST_MAX = 4096
# The mapping os.environ reads and writes, and the variable's key in it (CPython's os module).
_ENV_DATA = getattr(os.environ, "_data", None) if hasattr(os.environ, "encodekey") else None
_INTERPRET_KEY = os.environ.encodekey("TRITON_INTERPRET") if _ENV_DATA is not None else None
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

    The hot path is one dictionary lookup keyed by what the call's bucket can depend on (op,
    config, every tensor's shape and strides, the first tensor's dtype and device) and four
    cheap checks that the library, the settings and ``TRITON_INTERPRET`` are as they were: no
    bucket function, no ``stat``, no string formatting. The bucket function and the library's
    ``stat`` run at most once a second per call signature (the staleness ``_stamp`` allows).
    """
    try:
        key = (
            op,
            tuple(config.items()),
            tensors[0].dtype,
            tensors[0].device,
            *[t.shape for t in tensors],
            *[t.stride() for t in tensors],
        )
    except (AttributeError, IndexError, TypeError):  # not all tensors, or none: the slow path
        return _choose(op, tensors, config)[0]
    slot = _fast.get(key)
    if (
        slot is not None
        and slot[1] is settings.get()
        and time.monotonic() < slot[2]
        and slot[3] == store.writes()
        and slot[4] == _interpret_flag()
    ):
        return slot[0]
    if slot is None:
        if len(_fast) >= _FAST_MAX:  # many distinct shapes (a growing sequence): start afresh
            _fast.clear()
        slot = _fast[key] = []
    _refill(slot, op, tensors, config)
    return slot[0]


def _refill(slot: list, op: str, tensors: Sequence[torch.Tensor], config: dict[str, Any]) -> None:
    """Make a call signature's decision again and note what it rests on in its slot: [decision,
    settings object, valid-until on the monotonic clock, the store's write count,
    TRITON_INTERPRET]. choose() and dispatch_in() check those inline (a function call there
    would be a tenth of a module op's dispatch)."""
    decision, until = _choose(op, tensors, config)
    slot[:] = (decision, settings.get(), until, store.writes(), _interpret_flag())


_sites: list[dict] = []


def signature_cache() -> dict:
    """A dict for a module op's per-signature cache (holding :func:`dispatch_in` slots), emptied
    by :func:`clear_cache` with the dispatcher's own. Callers bound its size by
    :data:`SIGNATURES_MAX`, as :func:`choose` does its own."""
    cache: dict = {}
    _sites.append(cache)
    return cache


SIGNATURES_MAX = _FAST_MAX


def _choose(op: str, tensors: Sequence[torch.Tensor], config: dict[str, Any]):
    """(decision, the monotonic time until which the library it rests on counts as unchanged).

    Decisions are cached per (op, device, dtype, bucket, config, library state), so a new call
    signature in an unchanged bucket costs a bucket computation, not a library scan.
    """
    spec = ops.get(op)
    device = tensors[0].device
    dtype, bucket = spec.dtype_of(tensors), spec.bucket(tensors, config)
    library = _library()
    stamp = _stamp(library, op)
    key = (
        op,
        str(device),
        dtype,
        bucket,
        tuple(sorted(config.items())),
        stamp,
        os.environ.get("TRITON_INTERPRET"),
    )
    if key not in _decisions:
        _decisions[key] = _decide(spec, library, tensors, config, device, dtype, bucket)
    return _decisions[key], _stamps[(id(library), op)][0] + _STAMP_TTL_S


def _interpret_flag() -> Any:
    """``TRITON_INTERPRET`` as stored: ``os.environ.get`` costs about 1 us a call here (it
    encodes the name each time), a fifth of the whole dispatch budget; this is a dict lookup."""
    if _ENV_DATA is not None:
        return _ENV_DATA.get(_INTERPRET_KEY)
    return os.environ.get("TRITON_INTERPRET")


def _decide(spec, library, tensors, config, device, dtype, bucket):
    op, arch = spec.name, arch_of(device)
    candidates = [
        m
        for m in library.entries(op)
        # Module ops dispatch timed entries only: an untimed one was never shown to be faster.
        if m.arch == arch
        and m.dtype == dtype
        and m.bucket == bucket
        and not m.stale
        and not m.untimed
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
        _log(op, kind, why)
    return fn(*tensors)


def dispatch_in(slot: list, op: str, tensors: Sequence[torch.Tensor], config: dict[str, Any]):
    """:func:`dispatch` for a caller that keys its call signatures itself: a module op does, to
    cache its own argument checks, and keying a call twice cost it a microsecond. ``slot`` is a
    list the caller keeps with the signature, empty at first, in a dict from
    :func:`signature_cache`; the caller's key must determine everything choose()'s does (op,
    config, every tensor's shape and strides, the first tensor's dtype and device). The same
    decision, log line and call as dispatch()."""
    current = settings.get()
    if not (
        slot
        and slot[1] is current
        and time.monotonic() < slot[2]
        and slot[3] == store.writes()
        and slot[4] == _interpret_flag()
    ):
        _refill(slot, op, tensors, config)
    kind, fn, why = slot[0]
    if current.dispatch_log:
        _log(op, kind, why)
    return fn(*tensors)


def _log(op: str, kind: str, why: str) -> None:
    key = (op, kind, why)
    if key not in _logged:
        _logged.add(key)
        print(f"[kernelloop dispatch] {op}: {why}", file=sys.stderr)


def explain(op: str, *tensors: torch.Tensor, **config: Any) -> str:
    return choose(op, tensors, config)[2]


def _log_enabled() -> bool:
    return settings.get().dispatch_log


def _entry_callable(manifest, spec: ops.OpSpec, config: dict[str, Any], device) -> Callable:
    key = (manifest.entry_id, tuple(sorted(config.items())), str(device))
    if key not in _compiled:
        # A verified kernel from the library: imported into the user's process on purpose,
        # exactly as a hand-written extension would be. It passed the evaluator to get here.
        module = types.ModuleType(f"kernelloop_entry_{manifest.entry_id.replace('-', '_')}")
        module.__file__ = str(manifest.source_path)
        sys.modules[module.__name__] = module  # Triton reads kernel sources via the module
        source = store.read_source(manifest)  # the source its id names, or ManifestError
        exec(compile(source, str(manifest.source_path), "exec"), module.__dict__)
        instance = module.ModelNew(*spec.init_args(config))
        if isinstance(instance, torch.nn.Module):
            instance = instance.to(device)
        _compiled[key] = instance
    return _compiled[key]


def clear_cache() -> None:
    _compiled.clear()
    _decisions.clear()
    _fast.clear()
    for cache in _sites:
        cache.clear()
    _stamp_paths.clear()
    _stamps.clear()
    _library_cache[:] = [None, None]
    _logged.clear()
