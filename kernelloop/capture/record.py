"""One forward of the user's model, recorded per module call.

:func:`build` makes the model and its inputs where the capture runs: on ``meta`` the factory runs
under ``torch.device("meta")``, so a 70B-parameter model costs nothing and nothing is computed.
The model is put in eval mode: inference is what gets patched (dropout off, batch norm on its
running statistics).

:func:`record` runs one forward with a pre- and post-hook on every submodule and a
``TorchDispatchMode`` underneath. Each module *call* gets a :class:`Call`: its qualified name,
type, call index, positional and keyword arguments (tensor shapes and dtypes, other values as
they are), outputs, and the ATen ops dispatched while it was the innermost call, each
with its FLOPs and bytes. ``scaled_dot_product_attention`` is recorded as one op through a
``TorchFunctionMode``: on ``meta`` (and on some backends) it dispatches as its math
decomposition, two ``bmm`` and a softmax, which would otherwise count as three ops and two
matmuls there and one op on a CPU.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ..feedback.roofline import tensor_bytes
from ..kernelbench.problem import DTYPES
from .errors import CaptureError
from .manifest import TensorSpec

# Called as one function and recorded as one op, whatever it dispatches to on this device.
COMPOSITES = frozenset({"scaled_dot_product_attention"})
# The heavy ops: a problem holds at most a few (units.MAX_ANCHORS).
ANCHORS = frozenset(
    {
        "mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "_scaled_mm", "_int_mm",
        "convolution", "_convolution", "convolution_overrideable", "mkldnn_convolution",
        "cudnn_convolution", "_slow_conv2d_forward", "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
    }
)  # fmt: skip
# Ops that move no data or only make a tensor (views, shape ops, copies and casts): they do
# not count towards a problem's size, and a call made of them only is no problem.
SHAPE_OPS = frozenset(
    {
        "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "expand_as",
        "unsqueeze", "squeeze", "as_strided", "slice", "select", "alias", "detach", "clone",
        "contiguous", "_to_copy", "to", "copy_", "lift_fresh", "lift_fresh_copy", "empty",
        "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
        "full_like", "scalar_tensor", "split", "split_with_sizes", "chunk", "unbind", "narrow",
        "flatten", "unflatten", "view_as", "sym_size", "sym_stride", "sym_numel",
        "_local_scalar_dense",
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Op:
    name: str  # the ATen op's name without overload: "addmm", "scaled_dot_product_attention"
    flops: float
    bytes: float  # this op alone: its distinct inputs read and outputs written once

    @property
    def compute(self) -> bool:
        return self.name not in SHAPE_OPS

    @property
    def anchor(self) -> bool:
        return self.name in ANCHORS


@dataclasses.dataclass(frozen=True)
class Arg:
    """One argument of a call, positional or keyword."""

    tensor: TensorSpec | None  # None: not a tensor
    value: Any = None  # a non-tensor argument as passed
    int_range: tuple[int, int] | None = None  # an integer tensor's (min, max), off meta only


@dataclasses.dataclass
class Call:
    id: int  # entry order: calls[0] is the model's own forward
    module: str  # qualified name ("" for the model)
    module_type: str  # "tiny_llama.Attention"
    call: int  # which call of this module, from 0
    parent: int | None
    args: list[Arg]
    kwargs: dict[str, Arg]  # keyword arguments, in the order passed
    state_bytes: int  # the module's parameters and buffers
    state: tuple[tuple[str, TensorSpec], ...]  # their state-dict names (relative) and specs
    children: list[int] = dataclasses.field(default_factory=list)
    ops: list[Op] = dataclasses.field(default_factory=list)  # while it was the innermost call
    outputs: tuple[TensorSpec, ...] | None = None  # None: not a tensor or a tuple of tensors
    returns_tuple: bool = False
    # Positions of a returned tuple that held None, not in ``outputs``: nn.MultiheadAttention
    # returns (output, None) when called with need_weights=False.
    none_outputs: tuple[int, ...] = ()


@dataclasses.dataclass
class Recording:
    calls: list[Call]
    modules: dict[str, torch.nn.Module]  # qualified name -> module
    device: str
    dtype: str  # "float32", "bfloat16", ...

    def inclusive_ops(self, call: Call) -> list[Op]:
        """The call's own ops and its descendants', in no particular order across levels."""
        out, stack = [], [call.id]
        while stack:
            c = self.calls[stack.pop()]
            out += c.ops
            stack += c.children
        return out


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def spec_of(t: torch.Tensor) -> TensorSpec:
    return TensorSpec(tuple(int(s) for s in t.shape), dtype_name(t.dtype))


def build(factory, make_inputs, device: str, dtype: str | None):
    """(model in eval mode, inputs, dtype name) on ``device``; ``dtype`` casts the model and the
    floating inputs, else the model's own floating dtype is kept."""
    if device not in ("meta", "cpu", "cuda"):
        raise CaptureError(f"unknown device {device!r}: use meta, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise CaptureError("--device cuda: no CUDA device is visible; use --device cpu or meta")
    if dtype is not None and dtype not in DTYPES:
        raise CaptureError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    with torch.device(device):
        model = factory()
        inputs = make_inputs()
    model = model.to(device).eval()
    found = dtype or next(
        (dtype_name(t.dtype) for t in [*model.parameters(), *inputs] if _floating(t)), "float32"
    )
    if found not in DTYPES:
        raise CaptureError(
            f"the model computes in {found}; kernelloop scores {', '.join(DTYPES)}: "
            "pass --dtype to cast it"
        )
    target = getattr(torch, found)
    model = model.to(target)
    inputs = [
        (x.to(device=device, dtype=target) if _floating(x) else x.to(device))
        if isinstance(x, torch.Tensor)
        else x
        for x in inputs
    ]
    return model, inputs, found


def _floating(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


class _Recorder:
    """The state the hooks and the two modes share while one forward runs."""

    def __init__(self, modules: dict[str, torch.nn.Module], device: str) -> None:
        self.calls: list[Call] = []
        self.stack: list[Call] = []
        self.counts: dict[str, int] = {}
        self.paused = False  # the hooks' own tensor reads (min/max) are not the model's ops
        self.composite = False  # inside an op recorded as one (its inner ops are not recorded)
        self.device = device
        self.failed: Call | None = None
        self.hooked: torch.nn.Module | None = None  # entered by a pre-hook, forward not yet run
        self.state = {
            name: tuple((n, spec_of(t)) for n, t in [*m.named_parameters(), *m.named_buffers()])
            for name, m in modules.items()
        }
        self.state_bytes = {
            name: tensor_bytes([*m.parameters(), *m.buffers()]) for name, m in modules.items()
        }

    def enter(self, name: str, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self.paused = True
        try:
            parent = self.stack[-1] if self.stack else None
            call = Call(
                id=len(self.calls),
                module=name,
                module_type=f"{type(module).__module__}.{type(module).__qualname__}",
                call=self.counts.get(name, 0),
                parent=parent.id if parent else None,
                args=[self._arg(a) for a in args],
                kwargs={k: self._arg(v) for k, v in kwargs.items()},
                state_bytes=self.state_bytes.get(name, 0),
                state=self.state.get(name, ()),
            )
            self.counts[name] = call.call + 1
            if parent:
                parent.children.append(call.id)
            self.calls.append(call)
            self.stack.append(call)
        finally:
            self.paused = False

    def leave(self, output: Any) -> None:
        call = self.stack.pop()
        if output is None and self.failed is None and sys.exc_info()[0] is not None:
            self.failed = call  # the innermost call a failing forward was in (always_call hook)
        if isinstance(output, torch.Tensor):
            call.outputs = (spec_of(output),)
        elif (
            isinstance(output, tuple | list)
            and any(isinstance(o, torch.Tensor) for o in output)
            and all(o is None or isinstance(o, torch.Tensor) for o in output)
        ):
            call.outputs = tuple(spec_of(o) for o in output if o is not None)
            call.returns_tuple = True
            call.none_outputs = tuple(i for i, o in enumerate(output) if o is None)

    def _arg(self, a: Any) -> Arg:
        if not isinstance(a, torch.Tensor):
            return Arg(None, a)
        known = a.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
        if known and self.device != "meta" and a.numel():
            return Arg(spec_of(a), None, (int(a.min()), int(a.max())))
        return Arg(spec_of(a))

    def add(self, op: Op) -> None:
        if self.stack:
            self.stack[-1].ops.append(op)


class _Dispatch(TorchDispatchMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.rec.paused or self.rec.composite:
            return out
        flops = _flops(func, args, kwargs, out)
        name = func._overloadpacket.__name__
        nbytes = 0 if name in SHAPE_OPS else tensor_bytes([args, kwargs, out])
        self.rec.add(Op(name, flops, float(nbytes)))
        return out


class _Functions(TorchFunctionMode):
    def __init__(self, rec: _Recorder) -> None:
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name not in COMPOSITES or self.rec.composite or self.rec.paused:
            return func(*args, **kwargs)
        self.rec.composite = True
        try:
            out = func(*args, **kwargs)
        finally:
            self.rec.composite = False
        # Counted from the shapes, not the inner ops: the same on every backend.
        self.rec.add(Op(name, _attention_flops(args), float(tensor_bytes([args, kwargs, out]))))
        return out


def _attention_flops(args: tuple) -> float:
    q, k, v = args[:3]
    batch = math.prod(q.shape[:-2])
    return 2.0 * batch * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


def _flops(func, args, kwargs, out) -> float:
    count = flop_registry.get(func._overloadpacket)
    if count is None:
        return 0.0
    try:
        return float(count(*args, **kwargs, out_val=out))
    except Exception:  # a counter that does not know this overload: count none
        return 0.0


def record(model: torch.nn.Module, inputs: list, dtype: str) -> Recording:
    """Run ``model(*inputs)`` once and record every module call (see the module docstring)."""
    modules = dict(model.named_modules())
    device = next((t.device.type for t in inputs if isinstance(t, torch.Tensor)), "cpu")
    rec = _Recorder(modules, device)
    handles = []
    for name, module in modules.items():

        def pre(m, args, kwargs, name=name):
            rec.enter(name, m, args, kwargs)
            rec.hooked = m  # __call__ runs this module's forward next: not a direct call

        def post(m, args, output):
            rec.leave(output)

        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, always_call=True))
    direct = [_see_direct_calls(rec, name, module) for name, module in modules.items()]
    try:
        with torch.no_grad(), _Functions(rec), _Dispatch(rec):
            model(*inputs)
    except Exception as exc:
        where = rec.failed
        at = f" in {where.module or 'the model'} ({where.module_type})" if where else ""
        hint = (
            " On the meta device nothing is computed, so a forward that reads values "
            "(.item(), if on a tensor, data-dependent shapes) cannot run: use --device cpu."
            if device == "meta"
            else ""
        )
        raise CaptureError(
            f"the model's forward failed{at}: {type(exc).__name__}: {_first_line(exc)}.{hint}"
        ) from exc
    finally:
        for h in handles:
            h.remove()
        for undo in direct:
            undo()
    return Recording(rec.calls, modules, device, dtype)


def _see_direct_calls(rec: _Recorder, name: str, module: torch.nn.Module):
    """Record ``self.attention.forward(x, ...)`` too (llama2.c calls its blocks' parts so):
    module hooks run only through ``__call__``. An instance ``forward`` sees every call, and the
    patch swaps the same attribute, so such a call is also one the patch reaches. Returns the
    undo."""
    own = module.__dict__.get("forward")  # a forward set on the instance before us stays
    bound = module.forward

    def forward(*args, **kwargs):
        if rec.hooked is module:  # through __call__: the hooks record it
            rec.hooked = None
            return bound(*args, **kwargs)
        rec.enter(name, module, args, kwargs)
        output = None
        try:
            output = bound(*args, **kwargs)
        finally:
            rec.leave(output)
        return output

    module.forward = forward

    def undo() -> None:
        if own is None:
            module.__dict__.pop("forward", None)
        else:
            module.forward = own

    return undo


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
