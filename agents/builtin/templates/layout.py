"""Views: ops that only re-describe memory (``view``, ``transpose``, ``unsqueeze``...).

They become host-side tensor views in ``forward`` (no kernel, no copy), so the kernels after
them read through strides. Sizes in the traced graph are those of the traced problem size; a
view's target shape is rewritten in terms of its input's run-time sizes, so the same code works
at every size (``bias.view(1, 16, 1, 1)`` becomes ``bias.view(1, -1, 1, 1)``).

Ops with several outputs (``split``, ``chunk``, ``unbind``, ``tensor_split``) are views too: the
op becomes the tuple of views and each ``getitem`` of it one item. A split size that follows
the problem's size is written over run-time sizes as well (``_x.shape[2] // 3``,
``self.n_embd``); one that follows it by no known rule is refused, not baked in.
"""

from __future__ import annotations

from ..sizes import SLICE_END, SPLIT_OPS, slice_args, split_dim
from ..trace import Op, OpGraph, Ref
from .base import Config, EmitContext, Emitted, Segment

VIEWS = {
    "view",
    "reshape",
    "_unsafe_view",
    "unsqueeze",
    "squeeze",
    "permute",
    "transpose",
    "t",
    "numpy_T",
    "expand",
    "expand_as",
    "slice",
    "flatten",
    "unflatten",
    "select",
    "alias",
    "contiguous",
    "clone",
    "detach",
}
# Views with several outputs, read through ``getitem``: the op becomes the host-side tuple of
# views (``_x.split(...)``) and each getitem one item of it, so nothing is copied. The overloads
# whose second argument is an int or a list of ints (tensor_split by a tensor is not).
MULTI_VIEWS = {
    ("split", "Tensor"),
    ("split", "sizes"),
    ("split_with_sizes", "default"),
    ("chunk", "default"),
    ("unbind", "int"),
    ("tensor_split", "sections"),
    ("tensor_split", "indices"),
}


def symbolic_shape(src: tuple[int, ...], dst: tuple[int, ...], var: str) -> str | None:
    """``dst`` as a Python tuple expression over ``var.shape``: each target size that is a run of
    consecutive source sizes (their product) is written with those, ``1`` stays ``1``, and at
    most one size that is neither (a split) becomes ``-1``."""
    dims = [(j, s) for j, s in enumerate(src) if s != 1]
    out: list[str] = []
    k = 0
    for size in dst:
        if size == 1:
            out.append("1")
            continue
        run, product = [], 1
        while k < len(dims) and product < size:
            run.append(dims[k][0])
            product *= dims[k][1]
            k += 1
        if product == size and run:
            out.append(" * ".join(f"{var}.shape[{j}]" for j in run))
        else:
            return _with_one_unknown(dst)
    if k != len(dims):
        return _with_one_unknown(dst)
    return "(" + ", ".join(out) + ",)"


def _with_one_unknown(dst: tuple[int, ...]) -> str | None:
    # A split of a source dim: only expressible when exactly one target size is not 1 (-1).
    big = [s for s in dst if s != 1]
    if len(big) != 1:
        return None
    return "(" + ", ".join("-1" if s != 1 else "1" for s in dst) + ",)"


def _split_fallback(sizes: tuple[int, ...]) -> tuple[str, ...]:
    """Split sizes when no other size was traced: the largest becomes ``-1`` (the rest of the
    dim, as a head or embedding width is), the others stay as traced; exact at the traced size,
    and the evaluator's hold-out trials check the others."""
    if not sizes:
        return ()
    big = sizes.index(max(sizes))
    return tuple("-1" if i == big else str(s) for i, s in enumerate(sizes))


class Layout:
    name = "layout"
    knobs: dict = {}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if (op.op, op.overload) in MULTI_VIEWS or op.op == "getitem":
            return _match_split(graph, op, claimed)
        if op.op not in VIEWS or op.name in claimed or not op.args:
            return None
        src = op.args[0]
        if not isinstance(src, Ref) or graph.value_of(src) is None:
            return None
        if op.op == "slice":
            if op.name in graph.unsized:  # a bound follows the size by no rule we know
                return None
            bounds = graph.sizes.get(op.name) or _traced_bounds(graph, op)
            spec = {"bounds": bounds}
        elif op.op == "expand" and (shape := _expand_shape(graph, op)) is not None:
            spec = {"shape": shape}
        elif op.op in ("view", "reshape", "_unsafe_view", "expand"):
            shape = symbolic_shape(graph.value_of(src).shape, op.value.shape, "_x")
            if shape is None and op.name in graph.sizes:  # a split, told by other sizes' traces
                shape = "(" + ", ".join(graph.sizes[op.name]) + ",)"
            if shape is None:
                return None
            spec = {"shape": shape}
        elif op.op == "unflatten":
            sizes = graph.sizes.get(op.name) or _split_fallback(tuple(op.args[2]))
            spec = {"sizes": "(" + ", ".join(sizes) + ",)"}
        elif op.op == "expand_as":  # a squeeze-excitation gate's (b, c, 1, 1) over (b, c, h, w)
            if len(op.args) < 2 or not isinstance(op.args[1], Ref):
                return None
            # The shape is the other tensor's at run time: no size to rewrite.
            return Segment(self.name, op.name, [op.name], [src, op.args[1]], Ref(op.name), {})
        else:
            spec = {}
        return Segment(self.name, op.name, [op.name], [src], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        op: Op = graph.producer(seg.output)  # type: ignore[assignment]
        x = ctx.expr(seg.inputs[0])
        a = op.args[1:]
        kind = op.op
        if kind == "getitem":  # an item of a split's tuple of views
            return Emitted("", [f"{ctx.out_var} = {x}[{a[0]}]"])
        if kind in SPLIT_OPS or kind == "unbind":
            return Emitted("", [f"_x = {x}", f"{ctx.out_var} = {_split_call(op, seg.spec)}"])
        if kind in ("view", "reshape", "_unsafe_view", "expand"):
            method = "expand" if kind == "expand" else "reshape"
            line = f"_x = {x}\n{ctx.out_var} = _x.{method}(*{seg.spec['shape']})"
        elif kind == "slice":  # a strided view, as ``x[..., a:b]`` is; nothing is copied
            dim, _, _, step = slice_args(op)
            dim %= graph.value_of(seg.inputs[0]).rank
            start, end = seg.spec["bounds"]
            cut = f"{'' if start == 'None' else start}:{'' if end == 'None' else end}"
            cut += f":{step}" if step != 1 else ""
            line = f"_x = {x}\n{ctx.out_var} = _x[{':, ' * dim}{cut}]"
        elif kind == "unsqueeze":
            line = f"{ctx.out_var} = {x}.unsqueeze({a[0]})"
        elif kind == "squeeze":
            line = f"{ctx.out_var} = {x}.squeeze({', '.join(map(str, a))})"
        elif kind == "permute":
            line = f"{ctx.out_var} = {x}.permute({tuple(a[0])})"
        elif kind == "transpose":
            line = f"{ctx.out_var} = {x}.transpose({a[0]}, {a[1]})"
        elif kind in ("t", "numpy_T"):
            dims = graph.value_of(seg.inputs[0]).rank
            line = f"{ctx.out_var} = {x}.permute({tuple(reversed(range(dims)))})"
        elif kind == "flatten":
            line = f"{ctx.out_var} = {x}.flatten({', '.join(map(str, a))})"
        elif kind == "expand_as":
            line = f"{ctx.out_var} = {x}.expand_as({ctx.expr(seg.inputs[1])})"
        elif kind == "unflatten":  # nn.MultiheadAttention's packed q/k/v: (.., 3 * E) -> (.., 3, E)
            line = f"{ctx.out_var} = {x}.unflatten({a[0]}, {seg.spec['sizes']})"
        elif kind == "select":
            line = f"{ctx.out_var} = {x}.select({a[0]}, {a[1]})"
        else:  # alias, contiguous, clone, detach: the same values
            line = f"{ctx.out_var} = {x}"
        return Emitted("", line.splitlines())


def _traced_bounds(graph: OpGraph, op: Op) -> tuple[str, str]:
    """A slice's bounds when no trace at another size told how they follow it: as traced, an
    end at or past the dim written as "to the end"; the hold-out trials check the rest."""
    dim, start, end, _ = slice_args(op)
    size = graph.value_of(op.args[0]).shape[dim]  # type: ignore[union-attr]
    first = "None" if not start else str(start)
    last = "None" if end is None or end >= min(size, SLICE_END) else str(end)
    return first, last


def _expand_shape(graph: OpGraph, op: Op) -> str | None:
    """``expand``'s sizes with ``-1`` (keep) wherever the source already has the size (aligned
    from the right, as broadcasting is), and for a dim grown from 1 (``repeat_kv``'s
    ``n_rep``, a broadcast batch) the size other traces told, else the traced one; None (the
    product-run rule of ``symbolic_shape`` is tried next) where other traces saw that size
    change by no rule."""
    src, dst = graph.value_of(op.args[0]).shape, op.value.shape  # type: ignore[union-attr]
    told = graph.sizes.get(op.name)
    lead = len(dst) - len(src)
    out = []
    for i, size in enumerate(dst):
        j = i - lead
        if j >= 0 and src[j] == size:
            out.append("-1")
        elif told and told[i] != "-1":  # a literal, an attribute or another source dim
            out.append(told[i])
        elif told:  # it changes with the size by no rule: refused, not baked in
            return None
        else:
            out.append(str(size))
    return "(" + ", ".join(out) + ",)"


def _match_split(graph: OpGraph, op: Op, claimed: set[str]) -> Segment | None:
    """A split-like op (its output is the tuple of views) or a ``getitem`` of one."""
    if op.name in claimed or not op.args or not isinstance(op.args[0], Ref):
        return None
    src = op.args[0]
    if op.op == "getitem":
        producer = graph.producer(src)
        if producer is None or (producer.op, producer.overload) not in MULTI_VIEWS:
            return None
        if not isinstance(op.args[1], int):
            return None
        return Segment("layout", op.name, [op.name], [src], Ref(op.name), {})
    if graph.value_of(src) is None or not isinstance(op.out, tuple):
        return None
    if op.name in graph.unsized:  # a size follows the problem's size by no rule we know
        return None
    if op.op == "unbind":
        spec: dict = {}
    else:
        sizes = graph.sizes.get(op.name) or _traced_split(graph, op)
        spec = {"sizes": sizes}
    return Segment("layout", op.name, [op.name], [src], Ref(op.name), spec)


def _traced_split(graph: OpGraph, op: Op) -> tuple[str, ...]:
    """A split's numbers when no trace at another size told how they follow it: as traced,
    except an equal split size, written as that share of the cut dim (``_x.shape[d] // n``),
    as the halves of a GLU or the thirds of a packed q/k/v are; the evaluator's hold-out
    trials check the guess."""
    arg = op.args[1]
    n, dim = len(op.out), split_dim(op)  # type: ignore[arg-type]
    cut = graph.value_of(op.args[0]).shape[dim]  # type: ignore[union-attr]
    if op.op == "split" and isinstance(arg, int) and arg * n == cut:
        return (f"_x.shape[{dim}] // {n}",)
    return tuple(str(v) for v in (arg if isinstance(arg, tuple) else (arg,)))


def _split_call(op: Op, spec: dict) -> str:
    """The tensor method that makes the same tuple of views as ``op``, over ``_x``."""
    dim = split_dim(op)
    if op.op == "unbind":
        return f"_x.unbind({dim})"
    sizes = spec["sizes"]
    # a list argument stays a list (split by sizes, tensor_split at indices), an int an int
    arg = f"[{', '.join(sizes)}]" if isinstance(op.args[1], tuple) else sizes[0]
    method = "split" if op.op == "split_with_sizes" else op.op
    return f"_x.{method}({arg}, {dim})"
