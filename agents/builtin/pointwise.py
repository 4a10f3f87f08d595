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
    if isinstance(e, bool) or not isinstance(e, int | float):
        return None
    if float(e).is_integer() and 1 <= abs(e) <= 8:  # exact products, signs kept
        product = "(" + " * ".join([x] * int(abs(e))) + ")"
        return product if e > 0 else f"(1.0 / {product})"
    special = {0.0: f"({x} * 0.0 + 1.0)", 0.5: f"tl.sqrt({x})", -0.5: f"tl.rsqrt({x})"}
    # Any other power of a negative base is NaN in PyTorch, as log gives here.
    return special.get(float(e), f"tl.exp({_f(e)} * tl.log({x}))")


def _selu(x: str) -> str:
    alpha, scale = _f(1.6732632423543772), _f(1.0507009873554805)
    return f"({scale} * tl.where({x} > 0.0, {x}, {alpha} * (tl.exp({x}) - 1.0)))"


def _celu(x: str, alpha: object = 1.0) -> str:
    a = _f(alpha)
    return f"(tl.maximum({x}, 0.0) + tl.minimum({a} * (tl.exp({x} / {a}) - 1.0), 0.0))"


def _shrink(x: str, lambd: object, soft: bool) -> str:
    lam = _f(lambd)
    if not soft:
        return f"tl.where(tl.abs({x}) > {lam}, {x}, 0.0)"
    return f"tl.where({x} > {lam}, {x} - {lam}, tl.where({x} < -{lam}, {x} + {lam}, 0.0))"


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
    "selu": _selu,
    "celu": _celu,
    # min(x, 0) - log(1 + e^-|x|): no overflow on either side.
    "log_sigmoid": lambda x: f"(tl.minimum({x}, 0.0) - tl.log(1.0 + tl.exp(-tl.abs({x}))))",
    "hardshrink": lambda x, lambd=0.5: _shrink(x, lambd, soft=False),
    "softshrink": lambda x, lambd=0.5: _shrink(x, lambd, soft=True),
    "threshold": lambda x, th, value: f"tl.where({x} > {_f(th)}, {x}, {_f(value)})",
    "sign": lambda x: f"tl.where({x} > 0.0, 1.0, tl.where({x} < 0.0, -1.0, {x} * 0.0))",
    "log1p": lambda x: f"tl.log(1.0 + {x})",
    "expm1": lambda x: f"(tl.exp({x}) - 1.0)",
    "sin": lambda x: f"tl.sin({x})",
    "cos": lambda x: f"tl.cos({x})",
    "trunc": lambda x: f"tl.where({x} < 0.0, tl.ceil({x}), tl.floor({x}))",
    "logical_not": lambda x: f"({x} == 0)",
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


def _smooth_l1(a: str, b: str, beta: object = 1.0) -> str:
    d = f"tl.abs({a} - {b})"
    if not beta:
        return d
    return f"tl.where({d} < {_f(beta)}, 0.5 * {d} * {d} / {_f(beta)}, {d} - 0.5 * {_f(beta)})"


def _huber(a: str, b: str, delta: object = 1.0) -> str:
    d, t = f"tl.abs({a} - {b})", _f(delta)
    return f"tl.where({d} < {t}, 0.5 * {d} * {d}, {t} * ({d} - 0.5 * {t}))"


def _kl_div(a: str, b: str, log_target: object = False) -> str:
    if log_target:
        return f"(tl.exp({b}) * ({b} - {a}))"
    # xlogy(t, t) - t * input: 0 where the target is 0, as in ATen
    return f"(tl.where({b} == 0.0, 0.0, {b} * tl.log({b})) - {b} * {a})"


# Elementwise losses of (input, target), before their reduction: op -> f(input, target, *the
# scalars after the reduction argument) -> expression. The reduction (0 none, 1 mean, 2 sum) is
# argument 2; with none the op is elementwise, otherwise the loss template sums the terms.
LOSSES: dict[str, Callable[..., str]] = {
    "mse_loss": lambda a, b: f"(({a} - {b}) * ({a} - {b}))",
    "l1_loss": lambda a, b: f"tl.abs({a} - {b})",
    "smooth_l1_loss": _smooth_l1,
    "huber_loss": _huber,
    "kl_div": lambda a, b, log_target=False: _kl_div(a, b, log_target),
    "soft_margin_loss": lambda a, b: f"tl.log(1.0 + tl.exp(-{b} * {a}))",
}


def loss_reduction(op: Op) -> int | None:
    """The reduction of an elementwise loss op (0 none, 1 mean, 2 sum); None for other ops."""
    if op.op not in LOSSES or len(op.args) < 2:
        return None
    reduction = op.args[2] if len(op.args) > 2 else op.kwargs.get("reduction", 1)
    return reduction if reduction in (0, 1, 2) else None


def loss_term(op: Op, operand: Callable[[object], str]) -> str | None:
    """The per-element term of an elementwise loss op, whatever its reduction."""
    if loss_reduction(op) is None:
        return None
    scalars = list(op.args[3:]) + [v for k, v in op.kwargs.items() if k == "log_target"]
    if any(not isinstance(s, int | float) for s in scalars):
        return None
    try:
        return LOSSES[op.op](operand(op.args[0]), operand(op.args[1]), *scalars)
    except TypeError:
        return None


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
        or op.op in ("maximum", "minimum", "where", "rsub", "masked_fill")
        or (op.op in ("min", "max") and op.overload == "other")
        or loss_reduction(op) == 0
        or op.op in _CASTS
    )


def expression(op: Op, operand: Callable[[object], str]) -> str | None:
    """The Triton expression of ``op``, with ``operand(arg)`` giving each argument's expression
    (a Ref's variable, or a literal for a scalar). None: not an elementwise op we can fuse."""
    a = op.args
    if op.op in _CASTS:
        return operand(a[0])
    if op.op in LOSSES:
        return loss_term(op, operand) if loss_reduction(op) == 0 else None
    if op.op == "pow" and op.overload == "Scalar" and isinstance(a[0], int | float):
        if isinstance(a[0], bool) or a[0] <= 0:  # 0 ** x and negative bases: leave to torch
            return None
        return f"tl.exp2({operand(a[1])} * {_f(math.log2(a[0]))})"
    if op.op in ("clamp", "clamp_min", "clamp_max") and any(isinstance(s, Ref) for s in a[1:]):
        # a bound that is a model attribute (now a 0-d operand) or a tensor
        lo, hi = {"clamp": (a[1:] + (None, None))[:2], "clamp_min": (a[1], None)}.get(
            op.op, (None, a[1])
        )
        out = operand(a[0])
        if lo is not None:
            out = f"tl.maximum({out}, {operand(lo)})"
        return out if hi is None else f"tl.minimum({out}, {operand(hi)})"
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
    if op.op in ("min", "max") and op.overload == "other" and len(a) == 2:
        return f"tl.{op.op}imum({operand(a[0])}, {operand(a[1])})"
    if op.op == "masked_fill" and len(a) == 3:  # a bool mask (ATen refuses any other)
        return f"tl.where({operand(a[1])} != 0, {operand(a[2])}, {operand(a[0])})"
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


def dag(
    graph: OpGraph, sink: Op, roots: list[Ref], shape: tuple[int, ...], claimed: set[str]
) -> tuple[list[Op], list[Ref]]:
    """The elementwise ops computing ``roots`` (operands of ``sink``) for ``sink`` alone, in graph
    order, and the leaves they read. Unlike a chain, a DAG may join branches computed in any
    order (``0.5 * x * (1 + tanh(...))``). Each op has ``shape`` (operands may broadcast up to it),
    no user but the DAG and ``sink``, and is no graph output. Leaves must exist before the first
    op, so ops earlier than a leaf's producer are left out, to be read as leaves themselves."""
    ops: list[Op] = []
    stack = list(roots)
    while stack:
        op = graph.producer(stack.pop())
        if op is None or op in ops or op.name in claimed or graph.is_output(Ref(op.name)):
            continue
        out = graph.value_of(Ref(op.name))
        if out is None or out.shape != shape or not is_pointwise(op):
            continue
        if expression(op, lambda a: "v") is None:
            continue
        if all(_fits(graph, r, shape) for r in op.refs()):
            ops.append(op)
            stack += op.refs()
    ops.sort(key=lambda o: graph.index(o.name))
    while True:
        names = {o.name for o in ops} | {sink.name}
        inside = [o for o in ops if all(u.name in names for u in graph.users(Ref(o.name)))]
        leaves: list[Ref] = []
        for ref in [*(r for o in inside for r in o.refs()), *roots]:
            if ref.name not in {o.name for o in inside} and ref not in leaves:
                leaves.append(ref)
        latest = max((graph.index(r.name) for r in leaves if graph.producer(r)), default=-1)
        keep = [o for o in inside if graph.index(o.name) > latest]
        if len(keep) == len(ops):
            return ops, leaves
        ops = keep


def render(ops: list[Op], names: dict[Ref, str]) -> list[str]:
    """Lines ``t0 = ...``, ``t1 = ...`` computing ``ops`` in order from the variables ``names``
    gives their leaves; each op's variable is added to ``names``."""
    lines = []
    for k, op in enumerate(ops):
        lines.append(
            f"t{k} = {expression(op, lambda a: names[a] if isinstance(a, Ref) else _f(a))}"
        )
        names[Ref(op.name)] = f"t{k}"
    return lines


def _fits(graph: OpGraph, ref: Ref, shape: tuple[int, ...]) -> bool:
    """``ref`` broadcasts to ``shape`` without growing it."""
    v = graph.value_of(ref)
    if v is None or v.rank > len(shape):
        return False
    return all(a in (1, b) for a, b in zip(reversed(v.shape), reversed(shape), strict=False))
