"""Store coverage (threat row 26, CPU half): outputs must hold what the candidate's own kernels
stored, or what an allowed torch op (an allocation, a fill, a copy or cast of such bytes) put
there, whatever host path could otherwise have produced the values.

Under the interpreter every kernel load, store and atomic passes through trusted Python, and a
``TorchDispatchMode`` sees every aten op. During one forward a shadow copy of each storage the
call touches records what its last tracked writer left in every byte. After the call every byte
of every output is compared with it: a byte that changed behind the shadow's back (ctypes over
``data_ptr()``, a numpy or buffer-protocol view), or whose last writer copied such a byte (a
kernel launch that loaded one, a ``clone`` of one), was not written by the candidate's kernels.

Byte states: TRACKED (the shadow holds what a tracked writer left), TAINTED (written from bytes
that were not), UNKNOWN (memory this call never saw written: a kernel or a copy may read it,
an output may not consist of it). The call's inputs, and the tensors reachable from the model and
the candidate module, start TRACKED as they are when the call begins, so bytes changed in them
during the call are caught when read. Not covered: host data in memory the call never saw
allocated (``torch.from_numpy``) that a kernel then copies out; the static gate forbids the
modules that make such memory.

Cost: two extra bytes per byte the call touches (at most MAX_BYTES are tracked) and a gather per
load and store. Outputs above MAX_OUTPUT_BYTES are not checked, and the verdict says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import types
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Outputs up to this size are checked (CPU sizes: kilobytes); above, the verdict notes that
# they were not (sandbox/checks.py holds the worker to it).
MAX_OUTPUT_BYTES = 64 << 20

UNKNOWN, TRACKED, TAINTED = 0, 1, 2
# Memory one call may have tracked (CPU sizes touch well under 1 MiB). Past it, further storages
# go untracked rather than the check being dropped: an output among them is then reported as not
# written by a kernel, so a large decoy allocation cannot switch the check off.
MAX_BYTES = 256 << 20
MAX_ELEMENTS = 1 << 24  # per-element address arrays (8 bytes each) beyond it: a byte span
MAX_REPORTED = 64  # outputs named in one report
# Ops whose outputs do not depend on their tensor arguments' values.
_VALUE_FREE = frozenset(
    """empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones ones_like
    full full_like new_zeros new_ones new_full fill zero arange scalar_tensor""".split()
)
# In-place ops whose schema marks ``self`` written, though they change metadata, not bytes.
_METADATA = frozenset(
    "set resize resize_as as_strided detach squeeze unsqueeze transpose t swapdims swapaxes".split()
)

ACTIVE: Tracker | None = None  # the tracker of the call in progress, for the kernel hooks


def _raw(start: int, nbytes: int) -> np.ndarray:
    """The bytes at ``start`` as a numpy view (trusted code; the storage is held meanwhile)."""
    return np.ctypeslib.as_array((ctypes.c_ubyte * nbytes).from_address(start))


def _addresses(t: torch.Tensor) -> np.ndarray:
    """Each element's first byte address, in the tensor's logical order."""
    offsets = np.zeros(1, dtype=np.int64)
    for n, stride in zip(t.shape, t.stride(), strict=True):
        offsets = (offsets[:, None] + np.arange(n, dtype=np.int64) * stride).ravel()
    return np.uint64(t.data_ptr()) + (offsets * t.element_size()).astype(np.uint64)


def _tensors(values: Iterable) -> Iterator[torch.Tensor]:
    for v in values:
        if isinstance(v, torch.Tensor):
            if v.layout == torch.strided and v.device.type == "cpu" and v.numel():
                yield v
        elif isinstance(v, tuple | list):
            yield from _tensors(v)
        elif isinstance(getattr(v, "base", None), torch.Tensor):  # TensorWrapper, descriptors
            yield from _tensors([v.base])


def _wrong(region: _Region, where, strict: bool) -> np.ndarray:
    """Per byte at ``where``: tainted, or changed since its tracked writer (``strict``: or never
    seen written)."""
    state, changed = region.state[where], region.actual[where] != region.shadow[where]
    wrong = (state == TAINTED) | ((state == TRACKED) & changed)
    return wrong | (state == UNKNOWN) if strict else wrong


class _Region:
    __slots__ = ("start", "end", "storage", "actual", "shadow", "state")

    def __init__(self, storage, state: int) -> None:
        self.start, n = storage.data_ptr(), storage.nbytes()
        self.end = self.start + n
        self.storage = storage  # held: the memory stays valid and its address unused by others
        self.actual = _raw(self.start, n)
        self.shadow = self.actual.copy()
        self.state = np.full(n, state, dtype=np.uint8)


class Tracker(TorchDispatchMode):
    def __init__(self, allowed: frozenset[str]) -> None:
        super().__init__()
        self.allowed = allowed
        self.regions: list[_Region] = []
        self._starts = self._ends = np.zeros(0, dtype=np.uint64)
        self.nbytes = 0
        self.full = False  # MAX_BYTES reached: storages seen from then on are not tracked
        self.failed: str | None = None  # our defect: the check cannot be trusted (EVALUATOR_ERROR)
        self.in_launch = 0
        self.launch_tainted = False  # the running launch loaded bytes that are not tracked

    # --- memory ---------------------------------------------------------------------------------
    def add(self, storage, state: int) -> None:
        """Track a storage (unless its memory already is)."""
        start, n = storage.data_ptr(), storage.nbytes()
        if n == 0 or self._locate(np.array([start], np.uint64), 1)[0] >= 0:
            return
        if self.nbytes + n > MAX_BYTES:
            self.full = True
            return
        self.nbytes += n
        self.regions.append(_Region(storage, state))
        self.regions.sort(key=lambda r: r.start)
        self._starts = np.array([r.start for r in self.regions], dtype=np.uint64)
        self._ends = np.array([r.end for r in self.regions], dtype=np.uint64)

    def _locate(self, addrs: np.ndarray, width: int) -> np.ndarray:
        """The region index of each element at ``addrs`` (``width`` bytes each), -1 if none."""
        if not self.regions:
            return np.full(addrs.shape, -1, dtype=np.int64)
        i = np.searchsorted(self._starts, addrs, side="right").astype(np.int64) - 1
        inside = (i >= 0) & (addrs + np.uint64(width) <= self._ends[np.maximum(i, 0)])
        return np.where(inside, i, -1)

    def _bytes(self, addrs: np.ndarray, width: int) -> Iterator[tuple]:
        """(selection of ``addrs``, its region, the byte offsets of each element there)."""
        idx = self._locate(addrs, width)
        for r in np.unique(idx[idx >= 0]):
            sel = idx == r
            region = self.regions[r]
            offsets = (addrs[sel] - np.uint64(region.start)).astype(np.int64)
            yield sel, region, offsets[:, None] + np.arange(width)

    def bad(self, addrs: np.ndarray, width: int, strict: bool) -> np.ndarray:
        """Per element: not what a tracked writer left (``strict``: unknown counts as bad)."""
        bad = np.full(addrs.shape, strict)  # outside every region: never seen written
        for sel, region, b in self._bytes(addrs, width):
            bad[sel] = _wrong(region, b, strict).any(axis=1)
        return bad

    def written(self, addrs: np.ndarray, width: int, state: int) -> None:
        for _, region, b in self._bytes(addrs, width):
            region.shadow[b] = region.actual[b]
            region.state[b] = state

    def _span(self, t: torch.Tensor) -> tuple[_Region | None, slice]:
        """The region holding every byte from ``t``'s first element to the end of its last,
        and those bytes (exactly ``t``'s bytes when it is contiguous)."""
        last = sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))
        start, nbytes = t.data_ptr(), (last + 1) * t.element_size()
        i = self._locate(np.array([start], np.uint64), nbytes)[0]
        region = self.regions[i] if i >= 0 else None
        offset = start - region.start if region else 0
        return region, slice(offset, offset + nbytes)

    def tensor_bad(self, t: torch.Tensor, strict: bool) -> int:
        """How many of ``t``'s elements hold bytes no tracked writer left there."""
        width = t.element_size()
        if not t.is_contiguous() and t.numel() <= MAX_ELEMENTS:
            return int(self.bad(_addresses(t), width, strict).sum())
        region, span = self._span(t)
        if region is None:
            return t.numel() if strict else 0
        wrong = _wrong(region, span, strict)
        if not t.is_contiguous():  # too many elements to list: all of them if any byte is bad
            return t.numel() if wrong.any() else 0
        return int(wrong.reshape(-1, width).any(axis=1).sum())

    def tensor_written(self, t: torch.Tensor, state: int) -> None:
        if not t.is_contiguous() and t.numel() <= MAX_ELEMENTS:
            return self.written(_addresses(t), t.element_size(), state)
        region, span = self._span(t)
        if region is not None:
            region.shadow[span] = region.actual[span]
            # A huge strided write covers bytes between its elements too: never vouch for them.
            region.state[span] = state if t.is_contiguous() else TAINTED

    # --- aten ops ---------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # The interpreter's own ops during a launch (set_, storage copies) write nothing new.
        if not self.in_launch and self.failed is None:
            try:
                self._after_op(func, args, kwargs, out)
            except Exception as exc:  # our defect: the judge says so, the candidate runs on
                self.failed = f"internal error after {func}: {exc!r}"[:300]
        return out

    def _after_op(self, func, args, kwargs, out) -> None:
        base = func.__name__.split(".")[0].rstrip("_")
        schema = func._schema
        results = out if isinstance(out, tuple | list) else (out,)
        for ret, value in zip(schema.returns, results, strict=False):
            alias = ret.alias_info
            if alias is not None and (not alias.is_write or base in _METADATA):
                continue  # a view, or metadata: no byte written
            for t in _tensors([value]):
                self.add(t.untyped_storage(), UNKNOWN)
                clean = base in self.allowed and (
                    base in _VALUE_FREE or not self._sources_bad(schema, args, kwargs)
                )
                self.tensor_written(t, TRACKED if clean else TAINTED)

    def _sources_bad(self, schema, args, kwargs) -> bool:
        """Whether an argument the op reads (not the one it writes) holds untracked bytes."""
        written = {a.name for a in schema.arguments if a.alias_info and a.alias_info.is_write}
        names = [a.name for a in schema.arguments]
        read = [v for n, v in zip(names, args, strict=False) if n not in written]
        read += [v for n, v in kwargs.items() if n not in written]
        return any(self.tensor_bad(s, strict=False) for s in _tensors(read))

    # --- the verdict ------------------------------------------------------------------------------
    def report(self, outputs: list[torch.Tensor]) -> dict:
        """``store_coverage`` for the trial frame: per output, the elements no tracked writer
        left as they are. Outputs above MAX_OUTPUT_BYTES are not checked (the reference fixes
        their size: the candidate cannot choose it); a failure of ours is said, never hidden."""
        size = sum(o.numel() * o.element_size() for o in outputs)
        if size > MAX_OUTPUT_BYTES:
            note = f"outputs of {size >> 20} MiB, above the {MAX_OUTPUT_BYTES >> 20} MiB checked"
            return {"checked": False, "untracked": [], "note": note}
        if self.failed:
            return {"checked": False, "untracked": [], "note": self.failed}
        untracked = []
        for i, o in enumerate(outputs):
            if o.layout != torch.strided or o.device.type != "cpu":
                continue  # not a tensor the worker reports (other checks reject it)
            n = self.tensor_bad(o, strict=True) if o.numel() else 0
            if n:
                untracked.append({"output": i, "elements": n, "numel": o.numel(), "run": "call"})
        return {"checked": True, "untracked": untracked[:MAX_REPORTED], "note": ""}


# --- hooks the interpreter calls -----------------------------------------------------------------
def _kernel_addresses(ptrs, mask) -> tuple[np.ndarray, int]:
    data = ptrs.data
    if mask is not None:
        data = data[np.broadcast_to(mask.data, data.shape)]
    width = max(1, ptrs.get_element_ty().primitive_bitwidth // 8)
    return np.asarray(data, dtype=np.uint64).ravel(), width


def on_read(ptrs, mask) -> None:
    tracker = ACTIVE
    if tracker is None or not tracker.in_launch or tracker.failed:
        return
    try:
        if tracker.bad(*_kernel_addresses(ptrs, mask), strict=False).any():
            tracker.launch_tainted = True
    except Exception as exc:  # never fail the candidate's kernel for our defect
        tracker.failed = f"internal error tracing a load: {exc!r}"[:300]


def on_write(ptrs, mask) -> None:
    tracker = ACTIVE
    if tracker is None or not tracker.in_launch or tracker.failed:
        return
    try:
        state = TAINTED if tracker.launch_tainted else TRACKED
        tracker.written(*_kernel_addresses(ptrs, mask), state)
    except Exception as exc:
        tracker.failed = f"internal error tracing a store: {exc!r}"[:300]


@contextlib.contextmanager
def launch(args: tuple, kwargs: dict) -> Iterator[None]:
    """One interpreted launch: its tensor arguments are tracked (UNKNOWN where first seen)."""
    tracker = ACTIVE
    if tracker is None or tracker.failed or tracker.in_launch:
        yield
        return
    for t in _tensors([*args, *kwargs.values()]):
        tracker.add(t.untyped_storage(), UNKNOWN)
    tracker.in_launch, tracker.launch_tainted = 1, False
    try:
        yield
    finally:
        tracker.in_launch = 0


# --- one call ------------------------------------------------------------------------------------
def reachable_tensors(roots: list, limit: int = 20000, depth: int = 6) -> list[torch.Tensor]:
    """Tensors held by the model (parameters, buffers, attributes, containers) and by the
    candidate module's globals and classes: what a call legitimately starts with."""
    found, seen = [], set()
    stack = [(r, 0) for r in roots]
    while stack and len(seen) < limit:
        obj, level = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
            continue
        if level >= depth:
            continue
        if isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            children = list(obj)
        elif isinstance(obj, types.ModuleType | type):  # the candidate's own, not torch's
            own = level == 0 or getattr(obj, "__module__", None) == "candidate"
            children = list(vars(obj).values()) if own else []
        elif isinstance(obj, torch.nn.Module) or not callable(obj):
            children = list(getattr(obj, "__dict__", {}).values())
        else:
            children = []
        stack.extend((c, level + 1) for c in children)
    return found


@contextlib.contextmanager
def tracking(allowed: frozenset[str], model, inputs: list) -> Iterator[Tracker]:
    """Trace one call of ``model`` on ``inputs``; what it starts with (its inputs, the tensors
    of the model and of the candidate module) is the baseline."""
    global ACTIVE
    tracker = Tracker(allowed)
    roots = reachable_tensors([model, sys.modules.get("candidate")])
    for t in _tensors([*inputs, *roots]):
        tracker.add(t.untyped_storage(), TRACKED)
    ACTIVE = tracker
    try:
        with tracker:
            yield tracker
    finally:
        ACTIVE = None
