"""Run-time guards installed in the candidate worker before the candidate's module is loaded.

They complement the static gate, which a determined candidate might slip past:

- function identities (timers, synchronisation, comparison helpers) are recorded first and
  re-checked after every call (threat row 6);
- every Triton and NVRTC launch is counted, so a forward that launches nothing is caught (row 9);
- a ``TorchDispatchMode`` records each aten op a forward dispatches; anything beyond allocation,
  views and copies needs the problem's ``ALLOW_TORCH`` (row 9);
- Python threads that did not exist before the candidate was loaded are counted after each
  call (row 4): a thread started at import is caught as surely as one started in forward.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# aten ops a candidate's host code may dispatch: allocation, views, layout copies, casts.
# (The Triton interpreter itself dispatches empty/set_/copy_ when it launches a kernel on CPU.)
ALWAYS_ALLOWED = frozenset(
    """
    empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like ones ones_like
    full full_like new_zeros new_ones new_full fill zero arange scalar_tensor lift_fresh
    view _unsafe_view reshape _reshape_alias view_as permute transpose t expand expand_as
    as_strided unsqueeze squeeze flatten unflatten select slice narrow split split_with_sizes
    chunk unbind alias detach movedim contiguous clone copy _to_copy to _copy_from set
    resize resize_as is_same_size _has_compatible_shallow_copy_type
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
        # "aten::add_" / "add_.Tensor" -> "add": an in-place variant shares its op's policy.
        base = op_name.split("::")[-1].split(".")[0].rstrip("_")
        if base not in self.allowed and base not in self.disallowed:
            self.disallowed.append(base)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.note(func.__name__)
        return func(*args, **(kwargs or {}))


class Guards:
    def __init__(self) -> None:
        self._launches = 0
        self._compiled: dict[int, tuple[str, object]] = {}
        self._threads = {t.ident for t in threading.enumerate()}
        self._install_launch_counters()
        self._identities = self._snapshot()

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
        return watched

    def _snapshot(self) -> dict[str, int]:
        return {name: id(obj) for name, obj in self._watched().items()}

    def patched(self) -> list[str]:
        now = self._snapshot()
        return [name for name, ident in self._identities.items() if now.get(name) != ident]

    # --- launches ----
    def _install_launch_counters(self) -> None:
        import triton.runtime.jit as jit

        classes = [jit.JITFunction]
        try:
            from triton.runtime.interpreter import InterpretedFunction

            classes.append(InterpretedFunction)
        except ImportError:  # older Triton: the interpreter lives elsewhere or not at all
            pass
        guards = self
        for cls in classes:
            original = cls.run

            def counted(self, *args, _original=original, **kwargs):
                if not kwargs.get("warmup", False):
                    guards._launches += 1
                kernel = _original(self, *args, **kwargs)
                # The compiled kernel a GPU launch returns knows its registers and spills.
                if getattr(kernel, "n_regs", None) is not None:
                    guards._compiled[id(kernel)] = (getattr(self, "__name__", "?"), kernel)
                return kernel

            cls.run = counted

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
        """Two independent views of the ops a call runs: the dispatch mode (sees arguments,
        lives on the Python mode stack) and the autograd profiler (C++ RecordFunction, which
        still sees ops a candidate runs after popping the mode stack)."""
        recorder = OpRecorder(allowed)
        with torch.autograd.profiler.profile(use_cpu=True) as prof, recorder:
            yield recorder
        for event in prof.function_events:
            if event.name.startswith("aten::"):
                recorder.note(event.name)

    def new_threads(self) -> int:
        """Live Python threads that were not there when the guards were installed."""
        return len({t.ident for t in threading.enumerate()} - self._threads)


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
