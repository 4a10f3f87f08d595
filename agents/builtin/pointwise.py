"""Elementwise ATen ops as Triton expressions, and the chains of them a kernel can fuse.

An elementwise chain is what the elementwise template computes and what the other templates
fuse as an epilogue (``linear -> gelu``, ``conv2d -> relu``, ``matmul -> * s -> sigmoid``). All
arithmetic is in float32 (inputs are upcast on load, the result cast on store), which keeps the
fused kernel within float32 tolerance of PyTorch's op-by-op result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from .trace import Op, OpGraph, Ref

_SQRT1_2 = repr(1 / math.sqrt(2))
_SQRT_2_OVER_PI = repr(math.sqrt(2 / math.pi))


def _f(x: object) -> str:
    """A Python number as a Triton float literal (ints become floats: the math is float32)."""
    if isinstance(x, bool):
        return "1.0" if x else "0.0"
    if isinstance(x, int | float):
        v = float(x)
        if math.isinf(v):
            return "float('inf')" if v > 0 else "-float('inf')"
        return repr(v)
    raise TypeError(f"not a scalar: {x!r}")


def _tanh(x: str) -> str:
    # 1 - 2/(e^{2x}+1) saturates to +-1 without inf/inf for large |x|.
    return f"(1.0 - 2.0 / (tl.exp(2.0 * {x}) + 1.0))"


def _gelu(x: str, approximate: str) -> str:
    if approximate == "tanh":
        inner = f"{_SQRT_2_OVER_PI} * ({x} + 0.044715 * {x} * {x} * {x})"
        return f"(0.5 * {x} * (1.0 + {_tanh(inner)}))"
    return f"(0.5 * {x} * (1.0 + tl.erf({x} * {_SQRT1_2})))"


def _pow(x: str, e: object) -> str | None:
    if isinstance(e, int | float) and float(e).is_integer() and 1 <= e <= 4:
        return "(" + " * ".join([x] * int(e)) + ")"
    return {0.5: f"tl.sqrt({x})", -0.5: f"tl.rsqrt({x})", -1.0: f"(1.0 / {x})"}.get(
        float(e) if isinstance(e, int | float) else None  # type: ignore[arg-type]
    )


def _softplus(x: str, beta: object = 1.0, threshold: object = 20.0) -> str:
    b, t = _f(beta), _f(threshold)
    return f"tl.where({x} * {b} > {t}, {x}, tl.log(1.0 + tl.exp({x} * {b})) / {b})"


# name -> f(operand expressions, scalar args..., **kwargs) -> expression. Operands are already
# float32 (or bool for masks); scalar args come straight from the traced op.
UNARY: dict[str, Callable[..., str | None]] = {
    "relu": lambda x: f"tl.maximum({x}, 0.0)",
    "relu6": lambda x: f"tl.minimum(tl.maximum({x}, 0.0), 6.0)",
    "gelu": lambda x, approximate="none": _gelu(x, approximate),
    "silu": lambda x: f"({x} / (1.0 + tl.exp(-{x})))",
    "sigmoid": lambda x: f"(1.0 / (1.0 + tl.exp(-{x})))",
    "tanh": lambda x: _tanh(x),
    "leaky_relu": lambda x, slope=0.01: f"tl.where({x} > 0.0, {x}, {x} * {_f(slope)})",
    "elu": lambda x, alpha=1.0, scale=1.0, input_scale=1.0: (
        f"tl.where({x} > 0.0, {x} * {_f(scale)}, "
        f"{_f(scale)} * {_f(alpha)} * (tl.exp({x} * {_f(input_scale)}) - 1.0))"
    ),
    "hardtanh": lambda x, lo=-1.0, hi=1.0: f"tl.minimum(tl.maximum({x}, {_f(lo)}), {_f(hi)})",
    "hardsigmoid": lambda x: f"tl.minimum(tl.maximum({x} / 6.0 + 0.5, 0.0), 1.0)",
    "hardswish": lambda x: f"({x} * tl.minimum(tl.maximum({x} + 3.0, 0.0), 6.0) / 6.0)",
    "softplus": lambda x, beta=1.0, threshold=20.0: _softplus(x, beta, threshold),
    "mish": lambda x: f"({x} * {_tanh(_softplus(x))})",
    "neg": lambda x: f"(-{x})",
    "abs": lambda x: f"tl.abs({x})",
    "exp": lambda x: f"tl.exp({x})",
    "log": lambda x: f"tl.log({x})",
    "sqrt": lambda x: f"tl.sqrt({x})",
    "rsqrt": lambda x: f"tl.rsqrt({x})",
    "reciprocal": lambda x: f"(1.0 / {x})",
    "square": lambda x: f"({x} * {x})",
    "erf": lambda x: f"tl.erf({x})",
    "floor": lambda x: f"tl.floor({x})",
    "ceil": lambda x: f"tl.ceil({x})",
    "clamp": lambda x, lo=None, hi=None: _clamp(x, lo, hi),
    "clamp_min": lambda x, lo: _clamp(x, lo, None),
    "clamp_max": lambda x, hi: _clamp(x, None, hi),
    "pow": lambda x, e: _pow(x, e),
    "alias": lambda x: x,
    "clone": lambda x, **_: x,
    "contiguous": lambda x, **_: x,
    "detach": lambda x: x,
    "dropout": lambda x, p=0.5, train=False: x if not train else None,
}
_BINARY_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_COMPARE = {"gt": ">", "lt": "<", "ge": ">=", "le": "<=", "eq": "==", "ne": "!="}
# ops that keep values and only change the dtype: the chain casts at the store.
_CASTS = {"to", "_to_copy", "type_as"}


def _clamp(x: str, lo: object, hi: object) -> str:
    out = x
    if lo is not None:
        out = f"tl.maximum({out}, {_f(lo)})"
    if hi is not None:
        out = f"tl.minimum({out}, {_f(hi)})"
    return out


def is_pointwise(op: Op) -> bool:
    return (
        op.op in UNARY
        or op.op in _BINARY_OPS
        or op.op in _COMPARE
        or op.op in ("maximum", "minimum", "where", "rsub")
        or op.op in _CASTS
    )


def expression(op: Op, operand: Callable[[object], str]) -> str | None:
    """The Triton expression of ``op``, with ``operand(arg)`` giving each argument's expression
    (a Ref's variable, or a literal for a scalar). None: not an elementwise op we can fuse."""
    a = op.args
    if op.op in _CASTS:
        return operand(a[0])
    if op.op in UNARY:
        scalars = [x for x in a[1:]]
        if any(isinstance(s, Ref) for s in scalars):
            return None
        kwargs = {k: v for k, v in op.kwargs.items() if k in ("approximate",)}
        try:
            return UNARY[op.op](operand(a[0]), *scalars, **kwargs)
        except TypeError:
            return None
    if op.op in _BINARY_OPS and len(a) >= 2:
        alpha = op.kwargs.get("alpha", a[2] if len(a) > 2 else 1)
        rhs = operand(a[1])
        if op.op in ("add", "sub") and alpha not in (1, 1.0, None):
            rhs = f"({rhs} * {_f(alpha)})"
        if op.op == "div" and op.kwargs.get("rounding_mode"):
            return None
        return f"({operand(a[0])} {_BINARY_OPS[op.op]} {rhs})"
    if op.op == "rsub" and len(a) >= 2:
        return f"({operand(a[1])} - {operand(a[0])})"
    if op.op in _COMPARE:
        return f"({operand(a[0])} {_COMPARE[op.op]} {operand(a[1])})"
    if op.op in ("maximum", "minimum"):
        return f"tl.{op.op}({operand(a[0])}, {operand(a[1])})"
    if op.op == "where" and len(a) == 3:
        return f"tl.where({operand(a[0])}, {operand(a[1])}, {operand(a[2])})"
    return None


@dataclasses.dataclass
class Chain:
    """A fused run of elementwise ops after (or, for the elementwise template, from) an anchor.

    ``lines`` compute variable ``result`` from ``acc`` (the anchor's value, float32) and
    ``o0, o1, ...`` (the loaded ``operands``, float32). ``out`` is the last op's value.
    """

    ops: list[str]
    operands: list[Ref]
    lines: list[str]
    result: str
    out: Ref


def absorb(
    graph: OpGraph,
    anchor: Ref,
    claimed: set[str],
    *,
    available: Callable[[Ref], bool],
    first: Op | None = None,
) -> Chain:
    """Fuse the elementwise ops that consume ``anchor``, one after another, while each is the
    value's only user, the value is not a graph output, its shape stays the anchor's shape (a
    chain never broadcasts the accumulator up), and its other tensor operands are
    ``available`` (inputs, or values computed before the kernel runs).

    With ``first``, that op starts the chain and ``anchor`` is one of its tensor arguments
    (the elementwise template's case).
    """
    names: dict[Ref, str] = {anchor: "acc"}
    operands: list[Ref] = []
    lines: list[str] = []
    ops: list[str] = []
    shape = graph.value_of(anchor).shape if graph.value_of(anchor) else None
    current = anchor

    def operand(arg: object) -> str:
        if isinstance(arg, Ref):
            if arg not in names:
                names[arg] = f"o{len(operands)}"
                operands.append(arg)
            return names[arg]
        return _f(arg)

    def take(op: Op) -> bool:
        if op.name in claimed or not is_pointwise(op):
            return False
        out = graph.value_of(Ref(op.name))
        if out is None or (shape is not None and out.shape != shape):
            return False
        others = [r for r in op.refs() if r != current and r not in names]
        if not all(available(r) and _fits(graph, r, out.shape) for r in others):
            return False
        snapshot = (dict(names), list(operands))
        expr = expression(op, operand)
        if expr is None:
            names.clear()
            names.update(snapshot[0])
            operands[:] = snapshot[1]
            return False
        var = f"t{len(lines)}"
        lines.append(f"{var} = {expr}")
        names[Ref(op.name)] = var
        ops.append(op.name)
        return True

    if first is not None:
        if not take(first):
            return Chain([], [], [], "acc", anchor)
        current = Ref(first.name)
    while not graph.is_output(current):
        users = graph.users(current)
        if len(users) != 1 or not take(users[0]):
            break
        current = Ref(users[0].name)
    return Chain(ops, operands, lines, names.get(current, "acc"), current)


def _fits(graph: OpGraph, ref: Ref, shape: tuple[int, ...]) -> bool:
    """``ref`` broadcasts to ``shape`` without growing it."""
    v = graph.value_of(ref)
    if v is None or v.rank > len(shape):
        return False
    return all(a in (1, b) for a, b in zip(reversed(v.shape), reversed(shape), strict=False))
