"""One reference forward on the ``meta`` device: which ATen ops run, how big every tensor is,
and roughly how much work it is, without allocating a byte or computing a value.

Automatic sizes (``autosize.py``) probe many candidate sizes this way, and the memory and time
estimate (``budget.py``) reads a probe of the size asked for, so a 6 GB-per-tensor problem is
refused in milliseconds instead of filling the machine. Trusted code: it executes the problem
file, as the reference worker and the hygiene check do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import KernelloopError
from . import instance

if TYPE_CHECKING:
    from .problem import Problem

# ATen ops that draw random numbers: a reference that calls one inside forward cannot be
# compared with any kernel (dropout in training mode is the common case).
RANDOM_OPS = frozenset(
    {
        "native_dropout", "bernoulli", "bernoulli_", "rand", "rand_like", "randn", "randn_like",
        "randint", "randint_like", "normal", "normal_", "uniform_", "multinomial", "randperm",
        "exponential_", "geometric_", "cauchy_", "log_normal_", "random_", "rrelu_with_noise",
        "_fused_dropout", "poisson", "_standard_gamma",
    }
)  # fmt: skip
# Ops that move no data: left out of the op sequence, which is compared across sizes.
_METADATA = frozenset({"detach", "alias", "view", "_unsafe_view", "expand", "t", "transpose",
                       "permute", "unsqueeze", "squeeze", "as_strided", "slice", "select",
                       "_to_copy", "empty", "empty_like", "lift_fresh"})  # fmt: skip
_MATMUL = {"mm": 2, "bmm": 3, "addmm": 2, "baddbmm": 3, "matmul": 2}


class ProbeError(KernelloopError, RuntimeError):
    """The reference does not build or run at these sizes (a shape the model cannot take)."""


@dataclasses.dataclass
class Probe:
    ops: list[str]  # data-moving ATen ops of one forward, in order
    largest: int  # elements of the largest tensor: input, parameter, intermediate or output
    state_bytes: int  # parameters, buffers and inputs
    peak_bytes: int  # state plus the two largest intermediates or the outputs (an estimate)
    flops: float  # multiply-adds count 2; every other op one per output element
    outputs: list[tuple[int, ...]]
    random: list[str]  # random ops the forward calls
    # The fewest channels a group norm puts in one group (None: no group norm). At one channel
    # a group, group norm turns each value into rounding noise: a size must not shrink there.
    group_size: int | None = None

    @property
    def op_sequence(self) -> tuple[str, ...]:
        return tuple(self.ops)


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.sizes: list[tuple[int, int]] = []  # (elements, bytes) of each op's tensor outputs
        self.flops = 0.0
        self.random: list[str] = []
        self.group_sizes: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._overloadpacket.__name__
        if name == "convolution":
            _check_groups(args)
        out = func(*args, **(kwargs or {}))
        if name in RANDOM_OPS:
            self.random.append(name)
        if name == "native_group_norm" and len(args) > 6:  # (x, w, b, N, C, HxW, groups, eps)
            self.group_sizes.append(int(args[4]) // max(1, int(args[6])))
        if name not in _METADATA:
            self.ops.append(name)
            tensors = [t for t in _flat(out) if isinstance(t, torch.Tensor)]
            numel = sum(t.numel() for t in tensors)
            self.sizes.extend((t.numel(), t.numel() * t.element_size()) for t in tensors)
            self.flops += _flops(name, args, tensors, numel)
        return out


def _check_groups(args: tuple) -> None:
    """The meta convolution checks the input channels against the groups but not the weight's
    leading dimension, which the CPU and CUDA kernels require to be a multiple of them: a
    depthwise conv's output channels moved alone (16 -> 15 at groups=16) passed the probe and
    then failed the reference as a hold-out."""
    if len(args) < 9 or not isinstance(args[1], torch.Tensor) or args[1].dim() < 1:
        return
    groups = int(args[8])
    if groups > 1 and args[1].shape[0] % groups:
        raise RuntimeError(
            f"a weight of {args[1].shape[0]} channels does not split into {groups} groups"
        )


def _flat(x: Any) -> list:
    if isinstance(x, tuple | list):
        return [y for item in x for y in _flat(item)]
    return [x]


def _flops(name: str, args: tuple, outs: list[torch.Tensor], numel: int) -> float:
    if name in _MATMUL and outs:
        a = args[1] if name in ("addmm", "baddbmm") else args[0]
        return 2.0 * outs[0].numel() * a.shape[-1]
    if name in ("convolution", "convolution_overrideable") and outs:
        x, w = args[0], args[1]
        transposed = bool(args[6]) if len(args) > 6 else False
        groups = int(args[8]) if len(args) > 8 else 1
        per_out = math.prod(w.shape[2:]) * (w.shape[0] if transposed else w.shape[1])
        if transposed:  # each input element scatters into kernel-size outputs
            return 2.0 * x.numel() * per_out * w.shape[1] / max(1, groups)
        return 2.0 * outs[0].numel() * per_out
    return float(numel)


def _meta(x: Any, dtype: torch.dtype) -> Any:
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.to(dtype)
    return x


def run(problem: Problem, overrides: dict[str, Any]) -> Probe:
    """Build the model and run one forward at ``overrides`` on the meta device."""
    dtype = instance.torch_dtype(problem.dtype)
    try:
        module = problem.instantiate(overrides)
        with torch.device("meta"):
            torch.manual_seed(0)
            model = instance.build_model(module, 0, problem.dtype, device="meta")
            inputs = [_meta(x, dtype) for x in module.get_inputs()]
            recorder = _Recorder()
            with torch.no_grad(), recorder:
                out = model(*inputs)
    except Exception as exc:  # any failure means "not this size"; the caller says why
        raise ProbeError(f"{type(exc).__name__}: {str(exc).strip()[:300]}") from exc
    state = [t for t in (*model.parameters(), *model.buffers()) if isinstance(t, torch.Tensor)]
    state += [x for x in inputs if isinstance(x, torch.Tensor)]
    outs = [t for t in instance.flatten_outputs(out) if isinstance(t, torch.Tensor)]
    state_bytes = sum(t.numel() * t.element_size() for t in state)
    inter = sorted((b for _, b in recorder.sizes), reverse=True)
    out_bytes = sum(t.numel() * t.element_size() for t in outs)
    largest = max([n for n, _ in recorder.sizes] + [t.numel() for t in state] + [0])
    return Probe(
        ops=recorder.ops,
        largest=largest,
        state_bytes=state_bytes,
        peak_bytes=state_bytes + max(sum(inter[:2]), out_bytes),
        flops=recorder.flops,
        outputs=[tuple(t.shape) for t in outs],
        random=recorder.random,
        group_size=min(recorder.group_sizes) if recorder.group_sizes else None,
    )
