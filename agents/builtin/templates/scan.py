"""Cumulative sums and products along any dim, on the ``[outer, R, inner]`` view of ``rowview``.

The kernel is ``kernels/scan.py``; this template recognises the forms KernelBench writes and
sets its constexpr flags:

- ``cumsum(x, d)``, ``cumprod(x, d)``;
- reversed: ``cumsum(x.flip(d), d).flip(d)``;
- exclusive: ``cat((zeros_like(x.select(d, 0).unsqueeze(d)), cumsum(x.narrow(d, 0, n - 1), d)),
  d)`` (the output has x's shape: the identity, then the running totals);
- masked: ``cumsum(x * mask, d)`` with ``mask`` a bool tensor of x's shape.

A form is matched at its first op, so the elementwise and view templates never split it. Sums
and products are float32. Refused: integer inputs, a ``dtype=`` that changes the type, a flip
over other dims, an exclusive form over a slice that is not ``[0, n - 1)``.
"""

from __future__ import annotations

import math

from ..kernels import scan as seed_kernel
from ..trace import Op, OpGraph, Ref
from . import rowview, seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
_SCANS = {"cumsum": False, "cumprod": True}  # op -> PROD
# Views between x and the zeros of the exclusive form: they only give the zeros their shape.
_SHAPE_OPS = {"select", "unsqueeze", "view", "reshape", "slice", "narrow", "zeros_like"}


def _only_user(graph: OpGraph, ref: Ref) -> Op | None:
    users = graph.users(ref)
    return users[0] if len(users) == 1 and not graph.is_output(ref) else None


def _dim(op: Op, rank: int) -> int | None:
    d = op.args[1] if len(op.args) > 1 else op.kwargs.get("dim")
    return d % rank if isinstance(d, int) and rank else None


class CumSum:
    name = "cumsum"
    knobs = rowview.KNOBS

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed:
            return None
        found = _plain_or_masked(graph, op) or _reversed(graph, op) or _exclusive(graph, op)
        if found is None:
            return None
        scan, ops, inputs, output, flags = found
        src = graph.value_of(inputs[0])
        out = graph.value_of(output)
        d = _dim(scan, src.rank) if src is not None else None
        if d is None or out is None or src.dtype not in _FLOATS or out.shape != src.shape:
            return None
        if scan.kwargs.get("dtype") not in (None, src.dtype):
            return None
        order = {o.name: i for i, o in enumerate(graph.ops)}
        if min(order[n] for n in ops) != index or any(n in claimed for n in ops):
            return None
        if not all(available_before(graph, index)(r) for r in inputs):
            return None
        return Segment(
            self.name,
            op.name,
            ops,
            inputs,
            output,
            {
                "rank": src.rank,
                "dim": d,
                "reduced": src.shape[d],
                "out_dtype": out.dtype,
                "numel": math.prod(src.shape),
                **flags,
            },
        )

    def default(self, seg: Segment) -> Config:
        return rowview.default_config(seg.spec["reduced"])

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        d = spec["dim"]
        mask = f"{p}_x"
        call = [*rowview.host_view(p, x, spec["rank"], d, d + 1)]
        if spec["masked"]:
            mask = f"{p}_m"
            call.append(f"{mask} = {ctx.expr(seg.inputs[1])}.reshape({p}_O, {p}_R, {p}_I)")
        call += [
            *rowview.host_blocks(p, config),
            f"{out} = torch.empty({x}.shape, device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"if {out}.numel():",
            f"    {p}_scan_kernel[{p}_grid](",
            f"        {p}_x, {mask}, {out}, {p}_R, {p}_I, *{p}_x.stride(), *{mask}.stride(),",
            f"        PROD={spec['prod']}, REVERSE={spec['reverse']},",
            f"        EXCLUSIVE={spec['exclusive']}, MASKED={spec['masked']},",
            f"        BR={p}_BR, BI={p}_BI, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_scan_kernel"], p), call)


def _flags(scan: Op, **on: bool) -> dict:
    flags = {"prod": _SCANS[scan.op], "reverse": False, "exclusive": False, "masked": False}
    return {**flags, **on}


def _is_scan(op: Op | None) -> bool:
    return op is not None and op.op in _SCANS and bool(op.args) and isinstance(op.args[0], Ref)


def _plain_or_masked(graph: OpGraph, op: Op):
    """``scan(x)``, or ``scan(x * mask)`` matched at the ``mul``."""
    if _is_scan(op):
        x = op.args[0]
        return op, [op.name], [x], Ref(op.name), _flags(op)
    scan = _only_user(graph, Ref(op.name)) if op.op == "mul" and op.overload == "Tensor" else None
    if not _is_scan(scan) or len(op.args) != 2 or not all(isinstance(a, Ref) for a in op.args):
        return None
    values = [graph.value_of(a) for a in op.args]
    if None in values or values[0].shape != values[1].shape:
        return None
    kinds = [v.dtype == "bool" for v in values]
    if sorted(kinds) != [False, True]:
        return None
    x, mask = (op.args[1], op.args[0]) if kinds[0] else op.args
    return scan, [op.name, scan.name], [x, mask], Ref(scan.name), _flags(scan, masked=True)


def _reversed(graph: OpGraph, op: Op):
    """``scan(x.flip(d), d).flip(d)``, matched at the first flip."""
    if op.op != "flip" or not isinstance(op.args[0], Ref):
        return None
    scan = _only_user(graph, Ref(op.name))
    after = _only_user(graph, Ref(scan.name)) if _is_scan(scan) else None
    if after is None or after.op != "flip":
        return None
    rank = op.value.rank
    d = _dim(scan, rank)
    for f in (op, after):
        dims = f.args[1] if len(f.args) > 1 else f.kwargs.get("dims")
        if not isinstance(dims, tuple | list) or [x % rank for x in dims] != [d]:
            return None
    return (
        scan,
        [op.name, scan.name, after.name],
        [op.args[0]],
        Ref(after.name),
        _flags(scan, reverse=True),
    )


def _exclusive(graph: OpGraph, op: Op):
    """The exclusive form, matched at whichever of its ops comes first."""
    for cat in graph.ops[graph.index(op.name) :]:
        found = _exclusive_at(graph, cat) if cat.op == "cat" else None
        if found is not None and op.name in found[1]:
            return found
    return None


def _exclusive_at(graph: OpGraph, cat: Op):
    parts = cat.args[0] if cat.args else ()
    if len(parts) != 2 or not all(isinstance(p, Ref) for p in parts):
        return None
    zeros, scan = (graph.producer(p) for p in parts)
    if zeros is None or not _is_scan(scan) or _only_user(graph, Ref(scan.name)) is not cat:
        return None
    narrow = graph.producer(scan.args[0])
    x = narrow.args[0] if narrow is not None and narrow.args else None
    src = graph.value_of(x) if isinstance(x, Ref) else None
    d = _dim(scan, src.rank) if src is not None else None
    cat_dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
    if d is None or not isinstance(cat_dim, int) or cat_dim % src.rank != d:
        return None
    if not _all_but_last(narrow, d, src.shape[d]):
        return None
    if _only_user(graph, Ref(narrow.name)) is not scan:
        return None
    zero_ops = _zeros(graph, zeros, x, {cat.name})
    if zero_ops is None:
        return None
    ops = [narrow.name, scan.name, *zero_ops, cat.name]
    return scan, ops, [x], Ref(cat.name), _flags(scan, exclusive=True)


def _zeros(graph: OpGraph, zeros: Op, x: Ref, users: set[str]) -> list[str] | None:
    """The ops making the zeros block (``zeros_like`` of views of ``x``), each used only inside
    the form; None if the block is anything else."""
    if zeros.op != "zeros_like" or zeros.kwargs.get("dtype") not in (None,):
        return None
    ops: list[str] = []
    op: Op | None = zeros
    while op is not None:
        outside = [u for u in graph.users(Ref(op.name)) if u.name not in users]
        if op.op not in _SHAPE_OPS or outside or graph.is_output(Ref(op.name)):
            return None
        ops.append(op.name)
        users = {op.name}
        src = op.args[0]
        if not isinstance(src, Ref):
            return None
        if src == x:
            return ops
        op = graph.producer(src)
    return None


def _all_but_last(op: Op, d: int, n: int) -> bool:
    """``op`` is ``x.narrow(d, 0, n - 1)`` or ``x[..., :-1]`` along ``d``."""
    a = op.args
    if len(a) < 4 or not isinstance(a[1], int) or a[1] % len(op.value.shape) != d:
        return False
    if op.op == "narrow":
        return a[2] == 0 and a[3] == n - 1
    return op.op == "slice" and a[2] in (0, None) and a[3] in (n - 1, -1) and a[4:] in ((), (1,))
