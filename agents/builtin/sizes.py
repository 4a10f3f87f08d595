"""Which numbers in a traced graph depend on the problem's size, and how to compute them.

A trace is taken at one size, so every view shape and every scalar in it is a number. The
evaluator also runs the candidate at the problem's hold-out sizes, so the coder traces those too
and compares: a number equal in every trace stays a literal; one that changes must be computed in
``forward`` from what the instance has at run time — an input's dimension or one of the model's
int attributes (``self.n_heads``), or, for a scalar, a simple function of those
(``(x.shape[2] / self.n_heads) ** -0.5``, an attention scale). A number no rule explains is left
alone, and the evaluator's hold-out trials say whether that mattered.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

from ...kernelbench.opgraph import Input, Op, OpGraph, Ref, Value

VIEW_OPS = ("view", "reshape", "_unsafe_view")
# Multi-output views whose second argument is a size, a count or a list of them; unbind has none.
SPLIT_OPS = ("split", "split_with_sizes", "chunk", "tensor_split")
PAD_OPS = ("pad", "constant_pad_nd", *(f"{k}_pad{n}d" for k in ("reflection", "replication")
                                           for n in (1, 2, 3)))  # fmt: skip
SCALAR_OPS = {"add", "sub", "mul", "div", "rsub", "maximum", "minimum", "clamp", "pow"}


@dataclasses.dataclass(frozen=True)
class Trace:
    """One traced size: its graph and the int attributes of the model built for it."""

    graph: OpGraph
    ints: dict[str, int]


def int_attributes(model) -> dict[str, int]:
    return {
        k: v
        for k, v in vars(model).items()
        if isinstance(v, int) and not isinstance(v, bool) and not k.startswith("_")
    }


def bind(main: Trace, others: Sequence[Trace]) -> OpGraph:
    """``main.graph`` with size-dependent view shapes (``graph.sizes``) and scalars (``expr``
    inputs) written over run-time quantities; unchanged when the traces differ in structure."""
    graph = main.graph
    traces = [main, *others]
    if not others or any(t.graph.op_names() != graph.op_names() for t in others):
        return graph
    ops = []
    for k, op in enumerate(graph.ops):
        if op.op in (*VIEW_OPS, "expand") and len(op.args) > 1 and isinstance(op.args[1], tuple):
            exprs = _view_sizes(traces, k)
            if exprs is not None:
                graph.sizes[op.name] = exprs
        elif op.op == "unflatten" and len(op.args) > 2 and isinstance(op.args[2], tuple):
            exprs = _split_sizes(traces, k)
            if exprs is not None:
                graph.sizes[op.name] = exprs
        elif op.op in SPLIT_OPS and len(op.args) > 1 and isinstance(op.args[1], int | tuple):
            exprs = _split_args(traces, k)
            if exprs is None:
                graph.unsized.add(op.name)
            else:
                graph.sizes[op.name] = exprs
        elif op.op in PAD_OPS and len(op.args) > 1 and isinstance(op.args[1], tuple):
            # Pads a module fixes (ReflectionPad2d(3)) are equal at every size; ones computed
            # from the sizes (a UNet padding to its skip's odd size) follow no rule we write.
            if any(t.graph.ops[k].args[1] != op.args[1] for t in others):
                graph.unsized.add(op.name)
        elif op.op == "slice" and len(op.args) > 1:
            exprs = _slice_bounds(traces, k)
            if exprs is None:
                graph.unsized.add(op.name)
            else:
                graph.sizes[op.name] = exprs
        elif op.op == "full" and op.args and isinstance(op.args[0], tuple) and op.args[0]:
            exprs = _full_shape(traces, k)
            if exprs is None:
                graph.unsized.add(op.name)
            else:
                graph.sizes[op.name] = exprs
        elif op.op == "arange":
            exprs = _arange_args(traces, k)
            if exprs is None:
                graph.unsized.add(op.name)
            else:
                graph.sizes[op.name] = exprs
        elif op.op in SCALAR_OPS:
            op = _bind_scalars(traces, k, graph)
        ops.append(op)
    graph.ops = ops
    return graph


def _view_sizes(traces: list[Trace], k: int) -> tuple[str, ...] | None:
    """The target shape of view op ``k`` as expressions over its input ``_x`` and ``self``."""
    shapes = [t.graph.ops[k].args[1] for t in traces]
    sources = [t.graph.value_of(t.graph.ops[k].args[0]) for t in traces]
    if any(not isinstance(s, Value) for s in sources) or len({len(s) for s in shapes}) != 1:
        return None
    out, unknown = [], 0
    for i, sizes in enumerate(zip(*shapes, strict=True)):
        if len(set(sizes)) == 1 and sizes[0] in (-1, 1):
            out.append(str(sizes[0]))
            continue
        dims = [j for j in range(sources[0].rank) if _same(sizes, [s.shape[j] for s in sources])]
        attrs = [a for a in traces[0].ints if _same(sizes, [t.ints.get(a) for t in traces])]
        if dims:
            out.append(f"_x.shape[{i if i in dims else dims[0]}]")
        elif attrs:
            out.append(f"self.{attrs[0]}")
        elif len(set(sizes)) == 1:
            out.append(str(sizes[0]))  # the same at every size the evaluator runs
        else:
            out.append("-1")
            unknown += 1
    return tuple(out) if unknown <= 1 else None


def _split_sizes(traces: list[Trace], k: int) -> tuple[str, ...] | None:
    """The sizes one dim of ``unflatten`` op ``k`` splits into: a size equal at every traced
    size stays a literal, one that follows an int attribute reads it, and at most one other
    (the rest of the dim) is ``-1``."""
    splits = [t.graph.ops[k].args[2] for t in traces]
    if len({len(s) for s in splits}) != 1:
        return None
    out, unknown = [], 0
    for sizes in zip(*splits, strict=True):
        attrs = [a for a in traces[0].ints if _same(sizes, [t.ints.get(a) for t in traces])]
        if len(set(sizes)) == 1:
            out.append(str(sizes[0]))
        elif attrs:
            out.append(f"self.{attrs[0]}")
        else:
            out.append("-1")
            unknown += 1
    return tuple(out) if unknown <= 1 else None


def split_dim(op: Op) -> int:
    """The dim a split, chunk or unbind cuts (ATen's default is 0)."""
    pos = 1 if op.op == "unbind" else 2
    dim = op.args[pos] if len(op.args) > pos else op.kwargs.get("dim", 0)
    return int(dim)


def _split_args(traces: list[Trace], k: int) -> tuple[str, ...] | None:
    """The ints of split op ``k``'s second argument (a split size, a count, a list of sizes or
    indices) over run-time quantities: a literal where every trace agrees, an int attribute it
    follows, and for ``split``/``split_with_sizes`` an equal share of the cut dim
    (``_x.shape[d] // n``) or, for one size of a list, the rest of it. None when a number
    follows the size by no rule (the caller refuses the op) or the traces cut differently."""
    ops = [t.graph.ops[k] for t in traces]
    ints = [list(o.args[1]) if isinstance(o.args[1], tuple) else [o.args[1]] for o in ops]
    pieces = {len(o.out) if isinstance(o.out, tuple) else -1 for o in ops}
    if len(pieces) != 1 or -1 in pieces or len({len(i) for i in ints}) != 1:
        return None
    (n,) = pieces
    dim = split_dim(ops[0])
    sources = [t.graph.value_of(o.args[0]) for t, o in zip(traces, ops, strict=True)]
    if any(not isinstance(s, Value) for s in sources):
        return None
    cut = [s.shape[dim] for s in sources]
    sizes_of_pieces = ops[0].op in ("split", "split_with_sizes")
    out: list[str | None] = []
    for values in zip(*ints, strict=True):
        attrs = [a for a in traces[0].ints if _same(values, [t.ints.get(a) for t in traces])]
        if len(set(values)) == 1:
            out.append(str(values[0]))
        elif attrs:
            out.append(f"self.{attrs[0]}")
        elif sizes_of_pieces and all(v * n == c for v, c in zip(values, cut, strict=True)):
            out.append(f"_x.shape[{dim}] // {n}")
        else:
            out.append(None)
    unknown = [i for i, e in enumerate(out) if e is None]
    if len(unknown) == 1 and len(out) > 1 and sizes_of_pieces:
        # its sizes add up to the cut dim (ATen checks it), so one of them is what is left
        rest = " + ".join(e for e in out if e is not None)
        out[unknown[0]] = f"_x.shape[{dim}] - ({rest})"
    elif unknown:
        return None
    return tuple(e for e in out if e is not None)


SLICE_END = 2**62  # a slice bound at or past this is "to the end" (ATen writes sys.maxsize)


def slice_args(op: Op) -> tuple[int, Any, Any, int]:
    """``slice``'s dim, start, end and step as traced (ATen's defaults filled in)."""
    a = (*op.args[1:], None, None, None, None)
    dim, start, end, step = (a[0] if a[0] is not None else 0), a[1], a[2], a[3]
    return int(dim), start, end, int(step if step is not None else 1)


def _slice_bounds(traces: list[Trace], k: int) -> tuple[str, str] | None:
    """Start and end of slice op ``k`` over run-time quantities: ``None`` for the whole dim,
    a literal where every trace agrees, a share of the sliced dim (``_x.shape[d] // 2``: the
    halves of ``rotate_half``), or a forward argument's dim (a causal mask or a rotary cache
    cut to the sequence length). None when a bound follows the size by no such rule."""
    ops = [t.graph.ops[k] for t in traces]
    sources = [t.graph.value_of(o.args[0]) for t, o in zip(traces, ops, strict=True)]
    if any(not isinstance(s, Value) for s in sources):
        return None
    dim = slice_args(ops[0])[0] % sources[0].rank
    cut = [s.shape[dim] for s in sources]
    out = []
    for pos in (1, 2):
        values = [slice_args(o)[pos] for o in ops]
        if any(v is not None and not isinstance(v, int) for v in values):
            return None
        values = [None if v is not None and v >= SLICE_END else v for v in values]
        if all(v is None for v in values) or (pos == 2 and values == cut):
            out.append("None")
        elif pos == 1 and all(v == 0 for v in values):
            out.append("None")
        elif None in values:
            return None
        elif len(set(values)) == 1:
            out.append(str(values[0]))
        else:
            found = _int_expr(traces, values, dim, cut)
            if found is None:
                return None
            out.append(found)
    return out[0], out[1]


def _full_shape(traces: list[Trace], k: int) -> tuple[str, ...] | None:
    """The shape of ``full`` op ``k`` (a mask made in ``forward``: ``torch.full((t, t),
    min)``): a literal where every trace agrees, else a forward argument's dim."""
    shapes = [t.graph.ops[k].args[0] for t in traces]
    if len({len(s) for s in shapes}) != 1:
        return None
    return _per_position(traces, shapes)


def _arange_args(traces: list[Trace], k: int) -> tuple[str, ...] | None:
    """``arange``'s int arguments (end; start, end; or start, end, step) over run-time
    quantities: a literal where every trace agrees, else a forward argument's dim (the
    sequence length of ``arange(ids.size(-1))``). None for a float argument or no rule."""
    args = [t.graph.ops[k].args for t in traces]
    if len({len(a) for a in args}) != 1:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int) for a in args for v in a):
        return None
    return _per_position(traces, args)


def _per_position(traces: list[Trace], lists: list) -> tuple[str, ...] | None:
    """Each position of the traces' int lists: a literal where every trace agrees, else a
    run-time expression (``_int_expr``); None where a position follows no rule."""
    out = []
    for values in zip(*lists, strict=True):
        if len(set(values)) == 1:
            out.append(str(values[0]))
        elif (found := _int_expr(traces, list(values))) is not None:
            out.append(found)
        else:
            return None
    return tuple(out)


def _int_expr(
    traces: list[Trace], values: list[int], dim: int | None = None, cut: list[int] | None = None
) -> str | None:
    for n in (2, 3, 4) if cut is not None else ():
        if all(c % n == 0 and c // n == v for c, v in zip(cut, values, strict=True)):
            return f"_x.shape[{dim}] // {n}"
    graph = traces[0].graph
    for inp in graph.inputs:
        if inp.kind != "arg" or not isinstance(inp.value, Value):
            continue
        for j in range(inp.value.rank):
            if _same(values, [_arg_dim(t.graph, inp.position, j) for t in traces]):
                return f"{graph.forward_args[inp.position or 0]}.shape[{j}]"
    return None


def _same(values: Sequence[Any], other: Sequence[Any]) -> bool:
    return all(a == b for a, b in zip(values, other, strict=True))


def _bind_scalars(traces: list[Trace], k: int, graph: OpGraph):
    """Op ``k`` with each float operand that changes with size replaced by an ``expr`` input."""
    op = graph.ops[k]
    args = list(op.args)
    for i, value in enumerate(op.args):
        if not isinstance(value, float):
            continue
        values = [t.graph.ops[k].args[i] for t in traces]
        if not all(isinstance(v, float) for v in values) or len(set(values)) == 1:
            continue
        expr = _scalar_expr(traces, values)
        if expr is None:
            continue
        ref = Ref(f"expr_{op.name}_{i}")
        graph.inputs.append(Input(ref.name, "expr", Value((), "float32"), None, expr))
        args[i] = ref
    return dataclasses.replace(op, args=tuple(args))


_FORMS = (
    ("{}", lambda v: v),
    ("1 / {}", lambda v: 1 / v),
    ("({}) ** 0.5", math.sqrt),
    ("({}) ** -0.5", lambda v: v**-0.5),
)


def _scalar_expr(traces: list[Trace], values: list[float]) -> str | None:
    """A Python expression over the forward's tensor arguments and ``self`` that gives
    ``values[t]`` in every trace ``t``: an input dimension, or one divided by an int attribute,
    under one of a few forms (identity, inverse, square root, inverse square root)."""
    graph = traces[0].graph
    dims = []
    for inp in graph.inputs:
        if inp.kind == "arg" and isinstance(inp.value, Value):
            name = graph.forward_args[inp.position or 0]
            for j in range(inp.value.rank):
                sizes = [_arg_dim(t.graph, inp.position, j) for t in traces]
                if None not in sizes and all(sizes):
                    dims.append((f"{name}.shape[{j}]", sizes))
    quantities = list(dims)
    for (expr, sizes), attr in itertools.product(dims, traces[0].ints):
        divisors = [t.ints.get(attr) for t in traces]
        if all(divisors):
            ratios = [s / d for s, d in zip(sizes, divisors, strict=True)]
            quantities.append((f"{expr} / self.{attr}", ratios))
    for (expr, sizes), (form, fn) in itertools.product(quantities, _FORMS):
        if all(math.isclose(fn(s), v, rel_tol=1e-9) for s, v in zip(sizes, values, strict=True)):
            return form.format(expr)
    return None


def _arg_dim(graph: OpGraph, position: int | None, j: int) -> int | None:
    inp = next((i for i in graph.inputs if i.kind == "arg" and i.position == position), None)
    if inp is None or not isinstance(inp.value, Value) or j >= inp.value.rank:
        return None
    return inp.value.shape[j]
