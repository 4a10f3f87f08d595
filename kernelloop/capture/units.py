"""Which module calls become problems, what kind each is, and how much of the model it is.

The unit of capture is one module *call* whose whole forward becomes a problem: only a whole
call maps exactly onto the module's arguments and state, so a patched model can hand that call
to a kernel. The rule, walking the module tree from the model down:

- a call whose forward (its submodules included) runs no compute op is skipped: views, copies
  and casts alone are no work (``record.SHAPE_OPS``);
- a call is a *unit* when it is fusible: at most ``MAX_ANCHORS`` heavy ops (matmul, linear,
  convolution, scaled-dot-product attention: ``record.ANCHORS``) and at most ``MAX_OPS`` compute
  ops, and it can stand alone as a problem (the ``check`` callback: tensor and plain-constant
  arguments, positional or keyword, tensor outputs, a forward ``torch.export`` traces and
  kernelloop can write out);
- otherwise its children are visited, and the compute ops of its own forward (the residual adds
  of a transformer block) become an :class:`~.manifest.Uncovered` entry with the reason.

So a pre-norm transformer block (q, k, v, o projections, attention, three MLP projections: eight
heavy ops) splits into its norms, its attention module (five) and its MLP (three), and a
conv-bn-relu ``Sequential`` inside a deeper CNN is one unit. Calls with the same module type,
op sequence, argument shapes, dtypes and constants (keyword ones included) and state shapes
(the layers of a stack) share one problem: a :class:`Unit` with several sites.

Each unit is timed at the roofline of the target GPU (``feedback/roofline.py``): one call takes
``max(FLOPs / peak FLOP/s, bytes / peak bandwidth)``, where the bytes are every argument,
parameter and buffer read once and every output written once; a unit's total is that times its
sites, its share that over the whole model's estimate (units plus uncovered ops, each uncovered
op timed as a kernel of its own).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from ..feedback import roofline
from ..feedback.gpu_specs import GpuSpec
from .manifest import TensorSpec, Uncovered
from .record import Arg, Call, Op, Recording

MAX_ANCHORS = 5  # q, k, v and o projections plus the attention itself still make one problem
MAX_OPS = 40  # compute ops (views and shape ops excluded); more is a block, not a fusion

_ITEMSIZE = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2,
             "int16": 2, "int8": 1, "uint8": 1, "bool": 1}  # fmt: skip
_NORMS = frozenset(
    {
        "native_layer_norm", "layer_norm", "native_group_norm", "group_norm", "batch_norm",
        "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
        "rms_norm", "_fused_rms_norm", "instance_norm",
    }
)  # fmt: skip
_SOFTMAX = frozenset({"_softmax", "softmax", "_safe_softmax", "_log_softmax", "log_softmax"})
_REDUCTIONS = frozenset(
    {
        "sum", "mean", "amax", "amin", "max", "min", "prod", "var", "std", "var_mean",
        "std_mean", "norm", "linalg_vector_norm", "logsumexp", "argmax", "argmin", "cumsum",
        "cumprod", "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d",
        "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
        "adaptive_avg_pool1d", "adaptive_avg_pool2d", "_adaptive_avg_pool2d",
        "adaptive_avg_pool3d", "_adaptive_avg_pool3d", "adaptive_max_pool2d",
    }
)  # fmt: skip
_CONV = ("conv", "_slow_conv2d")

Check = Callable[[Call, tuple], "str | None"]  # None: the call can be a problem; else why not


@dataclasses.dataclass
class Unit:
    """One problem: identical calls of one module type."""

    key: tuple
    calls: list[Call]  # the sites, in call order
    kind: str
    ops: list[Op]  # one call's ops (the first site's)
    flops: float  # one call
    bytes: float  # one call
    estimated_ms: float  # one call

    @property
    def total_ms(self) -> float:
        return self.estimated_ms * len(self.calls)


@dataclasses.dataclass
class Plan:
    units: list[Unit]  # ranked, largest total first; at most ``top``
    uncovered: list[Uncovered]
    total_ms: float  # the whole model, one forward

    def share(self, unit: Unit) -> float:
        return unit.total_ms / self.total_ms if self.total_ms else 0.0


_PRODUCTS = frozenset({"matmul", "bmm", "baddbmm"})


def heavy(ops: list[Op]) -> int:
    """How many heavy ops ``ops`` holds, an attention written out (scores product, softmax,
    context product: Hugging Face's eager attention) counted once, as the one
    ``scaled_dot_product_attention`` op of the same module is; so a module with q, k, v and o
    projections is one problem however its attention is written."""
    count, last, scores = 0, None, False
    for o in ops:
        if o.name in _SOFTMAX and last in _PRODUCTS:
            scores = True
        elif o.anchor:
            if not (scores and o.name in _PRODUCTS):
                count += 1
            last, scores = o.name, False
    return count


def kind(ops: list[Op]) -> str:
    """attention, conv, matmul, norm, softmax, reduction or pointwise (the first that fits)."""
    names = {o.name for o in ops}
    if any("scaled_dot_product" in n for n in names):
        return "attention"
    anchors = {o.name for o in ops if o.anchor}
    if any(n.startswith(_CONV) or "convolution" in n for n in anchors):
        return "conv"
    if anchors:
        return "matmul"
    # RMSNorm written by hand: x * rsqrt(mean(x^2) + eps)
    if names & _NORMS or ("rsqrt" in names and names & {"mean", "var", "var_mean", "sum"}):
        return "norm"
    if names & _SOFTMAX:
        return "softmax"
    if names & _REDUCTIONS:
        return "reduction"
    return "pointwise"


def tensor_bytes(spec: TensorSpec) -> int:
    return math.prod(spec.shape) * _ITEMSIZE.get(spec.dtype, 4)


def key(call: Call, ops: list[Op]) -> tuple:
    """What makes two calls the same problem."""
    # Keyword values are baked into the problem like positional ones: a call with other
    # values (attn_mask=None against a tensor, need_weights=True) is another problem.
    kwargs = tuple(sorted((k, _described(a)) for k, a in call.kwargs.items()))
    args = tuple(_described(a) for a in call.args)
    return (call.module_type, tuple(o.name for o in ops), args, kwargs, call.state)


def config(module) -> tuple:
    """The plain attributes (numbers, strings, flags, tuples of them; functions by name) of
    ``module`` and every module inside it, by qualified name; mode flags left out."""
    if module is None:
        return ()
    out = []
    for name, m in module.named_modules():
        for attr, value in vars(m).items():
            if attr.startswith("_") or attr == "training":
                continue
            if callable(value) and hasattr(value, "__qualname__"):
                value = f"{getattr(value, '__module__', '')}.{value.__qualname__}"
            if _plain(value):
                out.append((name, attr, repr(value)))
    return tuple(out)


def _plain(value) -> bool:
    if isinstance(value, tuple | list):
        return all(_plain(v) for v in value)
    return isinstance(value, int | float | bool | str | type(None))


def _described(a: Arg) -> tuple:
    if a.tensor:
        return ("tensor", a.tensor.shape, a.tensor.dtype, a.int_range)
    return ("value", repr(a.value))


def plan(rec: Recording, spec: GpuSpec, check: Check, top: int) -> Plan:
    """Choose the units (the module docstring's rule), time them and keep the ``top`` largest."""
    seconds = _timer(spec, rec.dtype)
    groups: dict[tuple, Unit] = {}
    uncovered: list[Uncovered] = []

    def visit(call: Call) -> None:
        ops = [o for o in _ordered_ops(rec, call) if o.compute]
        if not ops:
            return
        anchors = heavy(ops)
        if anchors <= MAX_ANCHORS and len(ops) <= MAX_OPS:
            # Same type, ops and shapes do not make the same function: LeakyReLU(0.1) and
            # LeakyReLU(0.2), two eps, a Python flag. Sites share a problem only when their
            # modules' plain attributes agree too (the patch re-traces each site as well).
            k = (*key(call, ops), config(rec.modules.get(call.module)))
            why = None if k in groups else check(call, k)
            if why is None:
                if k not in groups:
                    nbytes = _call_bytes(call)
                    flops = sum(o.flops for o in ops)
                    ms = seconds(flops, nbytes) * 1e3
                    groups[k] = Unit(k, [], kind(ops), ops, flops, nbytes, ms)
                groups[k].calls.append(call)
                return
        else:
            why = (
                f"{call.module_type} holds {anchors} heavy ops and {len(ops)} compute ops, "
                f"more than one problem takes ({MAX_ANCHORS} and {MAX_OPS}): its submodules "
                "are captured instead; these ops run in its own forward, outside them"
            )
        for child in call.children:
            visit(rec.calls[child])
        own = [o for o in call.ops if o.compute]
        if own:
            ms = sum(seconds(o.flops, o.bytes) for o in own) * 1e3
            uncovered.append(Uncovered(call.module, tuple(o.name for o in own), ms, why))

    if rec.calls:
        visit(rec.calls[0])
    ranked = sorted(groups.values(), key=lambda u: (-u.total_ms, u.calls[0].id))
    total = sum(u.total_ms for u in ranked) + sum(u.estimated_ms for u in uncovered)
    for i, unit in enumerate(ranked[top:], start=top + 1):
        uncovered.append(
            Uncovered(
                unit.calls[0].module,
                tuple(o.name for o in unit.ops),
                unit.total_ms,
                f"a {unit.kind} unit ranked {i} of {len(ranked)}, below --top {top}",
            )
        )
    return Plan(ranked[:top], _merged(uncovered), total)


def _ordered_ops(rec: Recording, call: Call) -> list[Op]:
    """The call's ops with its descendants', children after the parent's own (deterministic,
    so identical calls list identical sequences)."""
    out = list(call.ops)
    for child in call.children:
        out += _ordered_ops(rec, rec.calls[child])
    return out


def _call_bytes(call: Call) -> float:
    args = sum(tensor_bytes(a.tensor) for a in [*call.args, *call.kwargs.values()] if a.tensor)
    outs = sum(tensor_bytes(o) for o in call.outputs or ())
    return float(args + call.state_bytes + outs)


def _timer(spec: GpuSpec, dtype: str) -> Callable[[float, float], float]:
    def seconds(flops: float, nbytes: float) -> float:
        return roofline.floor_seconds(roofline.Work(flops, nbytes, "counted"), spec, dtype)

    return seconds


def _merged(entries: list[Uncovered]) -> list[Uncovered]:
    """One entry per module and reason: a module called twice sums its time."""
    out: dict[tuple[str, str], Uncovered] = {}
    for e in entries:
        k = (e.module, e.why)
        if k in out:
            out[k] = dataclasses.replace(out[k], estimated_ms=out[k].estimated_ms + e.estimated_ms)
        else:
            out[k] = e
    return list(out.values())
