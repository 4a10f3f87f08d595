"""Run-time guards installed in the candidate worker before the candidate's module is loaded.

They complement the static gate, which a determined candidate might slip past:

- function identities (timers, synchronisation, comparison helpers) are recorded first and
  re-checked after every call (threat row 6);
- every Triton and NVRTC launch is counted, so a forward that launches nothing is caught (row 9);
- a ``TorchDispatchMode`` records each aten op a forward dispatches; anything beyond allocation,
  views and copies needs the problem's ``ALLOW_TORCH`` (row 9);
- Python threads that did not exist before the candidate was loaded are counted after each
  call (row 4): a thread started at import is caught as surely as one started in forward;
- Python threads *started* during a call are counted too, joined or not (row 25): work on another
  thread escapes the dispatch mode (thread-local) and the profiler (it sees the calling thread);
- a tripwire (``tripwire.py``) re-checks after each call that the guards' own code, and what
  they rely on, is unchanged (row 24).
"""

from __future__ import annotations

import _thread
import contextlib
import sys
import threading
import time
from collections.abc import Iterable, Iterator

import torch
import torch.utils._python_dispatch as python_dispatch
from torch.utils._python_dispatch import TorchDispatchMode

from .tripwire import Tripwire

# aten ops a candidate's host code may dispatch: allocation, views, layout copies, casts. The
# profiler records composite ops under their own names (x.T is numpy_T, x.ravel() is ravel),
# so the views' composite spellings are listed too.
# (The Triton interpreter itself dispatches empty/set_/copy_ when it launches a kernel on CPU.)
ALWAYS_ALLOWED = frozenset(
    """
    empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones ones_like
    full full_like new_zeros new_ones new_full fill zero arange scalar_tensor lift_fresh
    view _unsafe_view reshape _reshape_alias view_as permute transpose t expand expand_as
    as_strided unsqueeze squeeze flatten unflatten select slice narrow split split_with_sizes
    chunk unbind alias detach movedim contiguous clone copy _to_copy to _copy_from set
    resize resize_as is_same_size _has_compatible_shallow_copy_type
    numpy_T mT mH matrix_H adjoint swapaxes swapdims moveaxis broadcast_to ravel reshape_as
    type_as atleast_1d atleast_2d atleast_3d tensor_split hsplit vsplit dsplit diagonal unfold
    view_as_real view_as_complex
    """.split()
)
# Names in ALLOW_TORCH are torch-level; these are the aten ops each one dispatches to.
ALIASES = {
    "matmul": {"mm", "bmm", "addmm", "baddbmm", "matmul", "linear", "addmv", "mv", "dot"},
    "linear": {"mm", "addmm", "linear", "matmul", "bmm"},
    "conv2d": {
        "convolution",
        "_convolution",
        "conv2d",
        "cudnn_convolution",
        "mkldnn_convolution",
        "_slow_conv2d_forward",
        "convolution_overrideable",
        "thnn_conv2d",
    },
}


def allowed_ops(allow_torch: Iterable[str]) -> frozenset[str]:
    extra: set[str] = set()
    for name in allow_torch:
        extra.add(name)
        extra |= ALIASES.get(name, set())
    return ALWAYS_ALLOWED | extra


class OpRecorder(TorchDispatchMode):
    """Records aten ops not in ``allowed`` (by base name) while active."""

    def __init__(self, allowed: frozenset[str]):
        super().__init__()
        self.allowed = allowed
        self.disallowed: list[str] = []

    def note(self, op_name: str) -> None:
        base = _op_base(op_name)
        if base not in self.allowed and base not in self.disallowed:
            self.disallowed.append(base)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.note(func.__name__)
        return func(*args, **(kwargs or {}))


def _op_base(op_name: str) -> str:
    # "aten::add_" / "add_.Tensor" -> "add": an in-place variant shares its op's policy.
    return op_name.split("::")[-1].split(".")[0].rstrip("_")


class Guards:
    def __init__(self) -> None:
        self._launches = 0
        self._compiled: dict[int, tuple[str, object]] = {}
        self._interpreted: dict[tuple, dict] = {}  # distinct interpreted launches, in order
        self._threads = {t.ident for t in threading.enumerate()}
        self._thread_starts = 0  # every Python thread start since now, ours included
        self._call_thread_starts = 0  # those made while a call ran (inside recording_ops)
        self._recorder_changes: list[str] = []  # op recorders the candidate altered mid-call
        self._install_launch_counters()
        self._install_thread_counters()
        self._identities = self._snapshot()
        self.tripwire = Tripwire()
        self._watch_own_code()

    # --- identities ----
    @staticmethod
    def _watched() -> dict[str, object]:
        watched = {
            "time.perf_counter": time.perf_counter,
            "time.perf_counter_ns": time.perf_counter_ns,
            "time.time": time.time,
            "time.monotonic": time.monotonic,
            "torch.allclose": torch.allclose,
            "torch.equal": torch.equal,
            "torch.Tensor.__eq__": torch.Tensor.__eq__,
            "torch.Tensor.clone": torch.Tensor.clone,
            "torch.Tensor.copy_": torch.Tensor.copy_,
            "torch.cuda.synchronize": torch.cuda.synchronize,
            "torch.cuda.Event.record": torch.cuda.Event.record,
            "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
            "torch.cuda.Event.synchronize": torch.cuda.Event.synchronize,
            "torch.cuda.current_stream": torch.cuda.current_stream,
        }
        from . import interpreter

        watched.update(interpreter.watched())  # the CPU shims, when installed (before us)
        return watched

    def _snapshot(self) -> dict[str, int]:
        return {name: id(obj) for name, obj in self._watched().items()}

    def patched(self) -> list[str]:
        now = self._snapshot()
        return [name for name, ident in self._identities.items() if now.get(name) != ident]

    # --- the tripwire on our own code (row 24) ----
    def _watch_own_code(self) -> None:
        """What the guards and the worker rely on, as it is before the candidate loads."""
        from . import channel, interpreter, nvrtc, tensorio

        wire = self.tripwire
        # This module (OpRecorder, Guards, helpers), the channel's writer, the tensor bundle
        # writer and digest the worker captured before loading the candidate, and NVRTC's
        # launch counter (``launches()`` adds it).
        for module in (sys.modules[__name__], channel, tensorio, nvrtc):
            wire.watch_code_of(module)
        # The wrappers the guards installed: launch counters and thread-start counters.
        for cls in self._launch_classes:
            wire.watch_attribute(cls, "run")
        for module, attribute in _thread_start_points():
            wire.watch_attribute(module, attribute)
        # The torch machinery recording_ops enters: the profiler and the dispatch-mode stack.
        wire.watch_attribute(torch.autograd.profiler, "profile")
        wire.watch_code_of(torch.autograd.profiler.profile)
        wire.watch_code_of(TorchDispatchMode)
        for name in ("_push_mode", "_pop_mode", "_get_current_dispatch_mode"):
            if name in vars(python_dispatch):
                wire.watch_attribute(python_dispatch, name)
        # Every attribute of the tensor classes: the worker calls tensor methods on the outputs
        # after the recorded window (detach, to, contiguous, numpy while writing them), where a
        # replaced method would run candidate code unrecorded.
        for cls in (torch.Tensor, torch._C.TensorBase):
            for attribute in list(vars(cls)):
                wire.watch_attribute(cls, attribute)
        # The interpreter's CPU shims (installed before us; none on a GPU).
        for name, obj in interpreter.PATCHED:
            wire.watch(name, obj)

    def watch(self, name: str, obj: object) -> None:
        """Add trusted code installed in this process to the tripwire (see ``tripwire.py``)."""
        self.tripwire.watch(name, obj)

    def changed(self) -> list[str]:
        """What of the guards' code, or of an op recorder, is not as it was installed."""
        return self.tripwire.changed() + self._recorder_changes

    # --- launches ----
    def _install_launch_counters(self) -> None:
        import triton.runtime.jit as jit

        classes = [jit.JITFunction]
        try:
            from triton.runtime.interpreter import InterpretedFunction

            classes.append(InterpretedFunction)
        except ImportError:  # older Triton: the interpreter lives elsewhere or not at all
            pass
        self._launch_classes = tuple(classes)
        guards = self
        for cls in classes:
            original = cls.run

            def counted(self, *args, _original=original, _interpreted=cls is not classes[0],
                        **kwargs):  # fmt: skip
                if not kwargs.get("warmup", False):
                    guards._launches += 1
                if _interpreted:
                    guards._note_interpreted(self, args, kwargs)
                kernel = _original(self, *args, **kwargs)
                # The compiled kernel a GPU launch returns knows its registers and spills.
                if getattr(kernel, "n_regs", None) is not None:
                    guards._compiled[id(kernel)] = (getattr(self, "__name__", "?"), kernel)
                return kernel

            cls.run = counted

    def _note_interpreted(self, fn, args: tuple, kwargs: dict) -> None:
        """An interpreted launch as a GPU compile would key it (argument types, constexprs,
        warps, stages): with it a CPU machine can compile the kernel for a GPU target."""
        if len(self._interpreted) >= MAX_LAUNCH_RECORDS:
            return
        try:
            from ..feedback.compile_check import launch_of

            rec = launch_of(fn.fn, args, kwargs)
            key = rec.key()
            if key not in self._interpreted:
                self._interpreted[key] = launch_record(rec)
        except Exception:  # feedback only: never let it fail the launch
            pass

    def interpreted_launches(self) -> list[dict]:
        """The distinct interpreted Triton launches, first seen first (advisory feedback)."""
        return list(self._interpreted.values())

    def launches(self) -> int:
        from . import nvrtc

        return self._launches + nvrtc.launch_count()

    def kernel_resources(self) -> list[dict]:
        """Registers, spills and launch shape of each compiled Triton kernel that ran (GPU only:
        the interpreter compiles nothing). Feedback for the Judge, not evidence for the verdict:
        the candidate shares this process and could alter it."""
        return [resources_of(name, k) for name, k in self._compiled.values()]

    # --- ops and threads ----
    @contextlib.contextmanager
    def recording_ops(self, allowed: frozenset[str]) -> Iterator[OpRecorder]:
        """One guarded call. Two independent views of the ops it runs: the dispatch mode (sees
        arguments, lives on the Python mode stack) and the autograd profiler (C++
        RecordFunction, which still sees ops a candidate runs after popping the mode stack).
        Python threads started inside are counted (``threads_started``)."""
        recorder = OpRecorder(allowed)
        found = recorder.disallowed
        with torch.autograd.profiler.profile(use_cpu=True) as prof, recorder:
            attributes = set(vars(recorder))
            starts = self._thread_starts
            try:
                yield recorder
            finally:
                self._call_thread_starts += self._thread_starts - starts
                self._check_recorder(recorder, attributes, allowed, found)
        recorder.disallowed = found  # whatever the candidate put there, ours is the record
        # Noted without the recorder's own methods: replacing them does not blind this view.
        for event in prof.function_events:
            base = _op_base(event.name) if event.name.startswith("aten::") else None
            if base is not None and base not in allowed and base not in found:
                found.append(base)

    def _check_recorder(self, recorder, attributes: set, allowed, found: list) -> None:
        """The recorder instance as recording_ops made it: a method shadowed on the instance
        (``recorder.note = ...``) or a replaced allow-list or record is tampering (row 24)."""
        extra = sorted(set(vars(recorder)) - attributes)
        if extra or recorder.allowed is not allowed or recorder.disallowed is not found:
            what = f"OpRecorder instance ({', '.join(extra) or 'allowed/disallowed replaced'})"
            if what not in self._recorder_changes:
                self._recorder_changes.append(what)

    def new_threads(self) -> int:
        """Live Python threads that were not there when the guards were installed."""
        return len({t.ident for t in threading.enumerate()} - self._threads)

    def threads_started(self) -> int:
        """Python threads started while a guarded call ran, since the guards were installed.
        Counted at the start, so a thread started and joined inside the call counts (row 25).
        The evaluator starts none inside a call (its own, e.g. the input digest's hashing pool,
        run between calls). Threads the C++ side starts (the profiler's, BLAS pools) are not
        Python threads and are out of scope: no Python code runs on them unless the candidate
        reaches native code, which the static gate forbids."""
        return self._call_thread_starts

    def _install_thread_counters(self) -> None:
        """Wrap every place a Python thread starts: ``threading.Thread.start`` calls its
        module's own reference, and ``_thread`` is there to be called directly."""
        guards = self

        for module, attribute in _thread_start_points():
            original = getattr(module, attribute)

            def counted_start(*args, _original=original, **kwargs):
                guards._thread_starts += 1
                return _original(*args, **kwargs)

            setattr(module, attribute, counted_start)


def _thread_start_points() -> list[tuple[object, str]]:
    """(module, attribute) of each low-level thread start: Python 3.11 and 3.12 start threads
    with ``threading._start_new_thread``, 3.13 with ``_start_joinable_thread``; ``_thread``
    has ``start_new_thread``, its old alias ``start_new`` and, from 3.13, the joinable start."""
    names = {
        _thread: ("start_new_thread", "start_new", "start_joinable_thread"),
        threading: ("_start_new_thread", "_start_joinable_thread"),
    }
    return [(m, a) for m, attributes in names.items() for a in attributes if hasattr(m, a)]


MAX_LAUNCH_RECORDS = 32
_JSON_SCALARS = (bool, int, float, str, type(None))


def launch_record(rec) -> dict:
    """A ``compile_check.Launch`` as JSON: the kernel's name, and its arguments as
    ``static_resources.from_triton`` takes them (types, or launch-specialised ints, and
    constexpr values), plus warps and stages. A constexpr that is no JSON scalar (a
    ``tl.dtype``, say) leaves the record uncompilable, and says so."""
    args: dict = dict(rec.signature)
    why = rec.unsupported
    for name, value in rec.constexprs:
        if isinstance(value, _JSON_SCALARS):
            args[name] = value
        else:
            why = why or f"constexpr '{name}' is a {type(value).__name__}"
    for option in ("num_warps", "num_stages"):
        if getattr(rec, option) is not None:
            args[option] = getattr(rec, option)
    return {"kernel": rec.qualname, "args": args, "unsupported": why}


def resources_of(name: str, kernel) -> dict:
    """What a Triton ``CompiledKernel`` learned from the driver when it was loaded."""
    meta = getattr(kernel, "metadata", None)

    def number(value) -> int | None:
        return int(value) if isinstance(value, int | float) else None

    return {
        "kernel": name,
        "registers": number(getattr(kernel, "n_regs", None)),
        "spills": number(getattr(kernel, "n_spills", None)),  # 4-byte words of local memory
        "num_warps": number(getattr(meta, "num_warps", None)),
        "num_stages": number(getattr(meta, "num_stages", None)),
        "shared_bytes": number(getattr(meta, "shared", None)),
    }
