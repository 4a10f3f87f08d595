"""Reductions over one span of dims: sum, mean, amax/amin, max/min (values or indices), argmax,
logsumexp.

The input is read as ``[outer, R, inner]`` (``rowview``); each program keeps a ``[BR, BI]`` tile
of running partial results in float32 and folds it once at the end, so the loop over ``R`` does
no cross-lane work. Index reductions keep, per lane, the first row reaching the lane's best
(strict ``>``), then take the smallest such row among the lanes that hold the column's best:
ties resolve to the first index, as in PyTorch. ``logsumexp`` keeps a running max and a sum
of exponentials rescaled to it per lane (one pass, no overflow), folded the same way.
"""

from __future__ import annotations

import math

from ..trace import Op, OpGraph, Ref
from . import rowview
from .base import Config, EmitContext, Emitted, Segment
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
_DTYPES = {**TORCH_DTYPES, "int64": "torch.int64"}
# op -> (kind, position of dims, position of keepdim); kind "max"/"min" may also give indices.
_OPS = {
    ("sum", "dim_IntList"): ("sum", 1, 2),
    ("sum", "default"): ("sum", None, None),
    ("mean", "dim"): ("mean", 1, 2),
    ("mean", "default"): ("mean", None, None),
    ("amax", "default"): ("max", 1, 2),
    ("amin", "default"): ("min", 1, 2),
    ("max", "dim"): ("max", 1, 2),
    ("min", "dim"): ("min", 1, 2),
    ("max", "default"): ("max", None, None),
    ("min", "default"): ("min", None, None),
    ("argmax", "default"): ("argmax", 1, 2),
    ("argmin", "default"): ("argmin", 1, 2),
    ("logsumexp", "default"): ("logsumexp", 1, 2),
}
_KWNAMES = {1: "dim", 2: "keepdim"}


def _arg(op: Op, pos: int | None, default: object) -> object:
    if pos is None:
        return default
    if len(op.args) > pos:
        return op.args[pos]
    return op.kwargs.get(_KWNAMES[pos], default)


def _getitems(graph: OpGraph, op: Op) -> dict[int, Op] | None:
    """The ``getitem`` users of a (values, indices) op by index; None if anything else uses it."""
    items: dict[int, Op] = {}
    for user in graph.users(Ref(op.name)):
        if user.op != "getitem" or user.args[1] not in (0, 1) or user.args[1] in items:
            return None
        items[user.args[1]] = user
    return items


def _used(graph: OpGraph, op: Op) -> bool:
    ref = Ref(op.name)
    return graph.is_output(ref) or bool(graph.users(ref))


class Reduction:
    name = "reduction"
    knobs = rowview.KNOBS

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        entry = _OPS.get((op.op, op.overload))
        if op.name in claimed or entry is None or not op.args or not isinstance(op.args[0], Ref):
            return None
        kind, dpos, kpos = entry
        src = graph.value_of(op.args[0])
        if src is None or src.dtype not in _FLOATS:
            return None
        if op.kwargs.get("dtype") is not None:
            return None
        dims, keepdim = _arg(op, dpos, None), bool(_arg(op, kpos, False))
        if kind in ("argmax", "argmin") and dims is None and keepdim:
            return None
        bounds = rowview.span(dims, src.rank)
        if bounds is None:
            return None
        ops, output = [op.name], Ref(op.name)
        if isinstance(op.out, tuple):  # max.dim / min.dim: (values, indices)
            items = _getitems(graph, op)
            if items is None or any(g.name in claimed for g in items.values()):
                return None
            used = [k for k, g in items.items() if _used(graph, g)]
            if len(used) > 1:
                return None
            pick = used[0] if used else 0
            if pick not in items:
                return None
            if pick == 1:
                kind = "arg" + kind
            ops += [g.name for g in items.values()]
            output = Ref(items[pick].name)
        out = graph.value_of(output)
        if out is None:
            return None
        lo, hi = bounds
        reduced = 1
        for d in range(lo, hi):
            reduced *= src.shape[d]
        return Segment(
            self.name,
            op.name,
            ops,
            [op.args[0]],
            output,
            {
                "kind": kind,
                "rank": src.rank,
                "lo": lo,
                "hi": hi,
                "keepdim": keepdim,
                "out_dtype": out.dtype,
                "reduced": reduced,
                "numel": math.prod(out.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        return rowview.default_config(seg.spec["reduced"])

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        kind, rank, lo, hi = spec["kind"], spec["rank"], spec["lo"], spec["hi"]
        kernel = (
            "@triton.jit\n"
            f"def {p}_kernel(x_ptr, out_ptr, R, I, xs0, xs1, xs2, "
            "BR: tl.constexpr, BI: tl.constexpr):\n"
            + "\n".join("    " + line for line in _body(kind))
            + "\n"
        )
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        shape = []
        for d in range(rank):
            if lo <= d < hi:
                if spec["keepdim"]:
                    shape.append("1")
            else:
                shape.append(f"{x}.shape[{d}]")
        shape_expr = "(" + "".join(f"{s}, " for s in shape) + ")"
        call = [
            *rowview.host_view(p, x, rank, lo, hi),
            f"{out} = torch.empty({shape_expr}, device={x}.device, "
            f"dtype={_DTYPES[spec['out_dtype']]})",
            *rowview.host_blocks(p, config),
            f"if {out}.numel():",
            f"    {p}_kernel[{p}_grid](",
            f"        {p}_x, {out}, {p}_R, {p}_I, *{p}_x.stride(),",
            f"        BR={p}_BR, BI={p}_BI, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(kernel, call)


def _body(kind: str) -> list[str]:
    big = kind in ("max", "argmax", "logsumexp")
    fill = {"sum": "0.0", "mean": "0.0"}.get(kind, "-float('inf')" if big else "float('inf')")
    lines = rowview.kernel_prelude()
    lines.append(f"acc = tl.full([BR, BI], {fill}, tl.float32)")
    if kind == "logsumexp":
        lines.append("s = tl.zeros([BR, BI], tl.float32)")
    if kind.startswith("arg"):
        lines.append("idx = tl.zeros([BR, BI], tl.int64)")
    lines += ["for start in range(0, R, BR):", "    r = start + r0"]
    lines += ["    " + t for t in rowview.tile("r")]
    lines.append(f"    x = tl.load(ptrs, mask=mask, other={fill}).to(tl.float32)")
    if kind in ("sum", "mean"):
        lines.append("    acc += x")
    elif kind == "logsumexp":  # rescale the lane's sum to its new max; -inf lanes stay at 0
        lines += [
            "    m = tl.maximum(acc, x)",
            "    base = tl.where(m == -float('inf'), 0.0, m)",
            "    s = s * tl.exp(acc - base) + tl.exp(x - base)",
            "    acc = m",
        ]
    elif kind in ("max", "min"):
        lines.append(f"    acc = tl.{'maximum' if big else 'minimum'}(acc, x)")
    else:
        lines += [
            f"    upd = x {'>' if big else '<'} acc",
            "    acc = tl.where(upd, x, acc)",
            "    idx = tl.where(upd, r.to(tl.int64)[:, None], idx)",
        ]
    if kind == "sum":
        lines.append("res = tl.sum(acc, axis=0)")
    elif kind == "mean":
        lines.append("res = tl.sum(acc, axis=0) / R")
    elif kind in ("max", "min"):
        lines.append(f"res = tl.{kind}(acc, axis=0)")
    elif kind == "logsumexp":
        lines += [
            "best = tl.max(acc, axis=0)",
            "base = tl.where(best == -float('inf'), 0.0, best)",
            "res = base + tl.log(tl.sum(s * tl.exp(acc - base[None, :]), axis=0))",
        ]
    else:
        lines += [
            f"best = tl.{'max' if big else 'min'}(acc, axis=0)",
            "res = tl.min(tl.where(acc == best[None, :], idx, R), axis=0)",
        ]
    lines.append("tl.store(out_ptr + o * I + i, res.to(out_ptr.dtype.element_ty), mask=imask)")
    return lines
