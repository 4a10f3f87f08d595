"""Whole-tensor sums and means, and the elementwise ops that feed them: losses, mostly.

``torch.mean((a - b) ** 2)``, ``mean(clamp(1 - p * t, min=0))``, ``F.mse_loss``,
``F.smooth_l1_loss``, ``F.huber_loss``, ``F.l1_loss``, ``F.kl_div(log(p), t, 'batchmean')``: a
*term* computed per element from a few tensors, then summed over every element and scaled (by
``1 / n`` for a mean, ``1 / batch`` for ``batchmean``). The term is the DAG of elementwise ops
that only feed the sum (``pointwise.expression``, the named losses' ``pointwise.LOSSES``), so
the whole loss reads each input once and writes one number.

Two kernels. The first is generated (the term is the problem's): ``P`` programs stride over the
elements, each accumulating its share in float32 and writing one partial; operands are read
flat when contiguous, else through broadcast strides (a per-row label against a ``[B, N]``
prediction). The second is ``kernels/loss.py``'s ``_finish``: one program adds the ``P``
partials in a fixed order and scales. Refused: reductions over some dims only (``reduction``'s),
a ``dtype=`` on the sum, terms of integer tensors.
"""

from __future__ import annotations

import math

from .. import pointwise
from ..kernels import loss as loss_kernels
from ..trace import Op, OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment
from .elementwise import TORCH_DTYPES, _operand_load

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
_TOTALS = {("sum", "default"), ("mean", "default"), ("sum", "dim_IntList"), ("mean", "dim")}


def _total_kind(graph: OpGraph, op: Op) -> str | None:
    """The kind ("sum" or "mean") of an op reducing a whole float tensor to a number, or None."""
    if pointwise.loss_reduction(op) in (1, 2):
        return "mean" if pointwise.loss_reduction(op) == 1 else "sum"
    if (op.op, op.overload) not in _TOTALS or not op.args or not isinstance(op.args[0], Ref):
        return None
    src = graph.value_of(op.args[0])
    if src is None or src.dtype not in _FLOATS or op.kwargs.get("dtype") is not None:
        return None
    if op.overload != "default":
        dims = op.args[1] if len(op.args) > 1 else op.kwargs.get("dim")
        if dims in (None, (), []):
            return op.op
        if not isinstance(dims, tuple | list) or sorted(d % src.rank for d in dims) != [
            *range(src.rank)
        ]:
            return None
    return op.op


class Loss:
    name = "loss"
    knobs = {
        "BLOCK": (256, 512, 1024, 2048, 4096),
        "PROGRAMS": (64, 128, 256, 512, 1024),
        "num_warps": (1, 2, 4, 8),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or not (pointwise.is_pointwise(op) or _total_kind(graph, op)):
            return None  # a segment starts at its term's first op, or at the sum itself
        for total in graph.ops[index:]:
            if total.name in claimed or _total_kind(graph, total) is None:
                continue
            seg = _segment(graph, total, claimed)
            if seg is not None and min(graph.index(n) for n in seg.ops) == index:
                return seg
        return None

    def default(self, seg: Segment) -> Config:
        # ~8 programs an SM on an H100 stream at full bandwidth; small tensors take fewer
        return {"BLOCK": 1024, "PROGRAMS": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        rank, n_in = spec["rank"], len(seg.inputs)
        params = ["part_ptr"] + [f"in{i}_ptr" for i in range(n_in)] + ["n"]
        params += [f"D{d}" for d in range(rank)]
        params += [f"s{i}_{d}" for i in range(n_in) for d in range(rank)]
        params += [f"FLAT{i}: tl.constexpr" for i in range(n_in)] + ["BLOCK: tl.constexpr"]
        body = ["offs = (start + tl.arange(0, BLOCK)).to(tl.int64)", "mask = offs < n"]
        for i in range(n_in):
            body += _operand_load(i, rank, spec["floats"][i])
        body += spec["lines"]
        # masked lanes compute on fill values (log(0), 0 / 0): they must not reach the sum
        body.append(f"total += tl.where(mask, ({spec['result']}).to(tl.float32), 0.0)")
        kernel = (
            "@triton.jit\n"
            f"def {p}_partials({', '.join(params)}):\n"
            "    pid = tl.program_id(0)\n"
            "    total = tl.zeros([BLOCK], tl.float32)\n"
            "    for start in range(pid * BLOCK, n, tl.num_programs(0) * BLOCK):\n"
            + "".join(f"        {line}\n" for line in body)
            + "    tl.store(part_ptr + pid, tl.sum(total, axis=0))\n"
        )
        x = [ctx.expr(r) for r in seg.inputs]
        block, programs = config["BLOCK"], config["PROGRAMS"]
        scale = {
            "sum": "1.0",
            "mean": f"1.0 / max({p}_n, 1)",
            "batch": f"1.0 / {p}_shape[0]",
        }.get(spec["scale"], repr(spec["scale"]))
        call = [
            f"{p}_in = ({', '.join(x)},)",
            f"{p}_shape = torch.broadcast_shapes(*[_t.shape for _t in {p}_in])",
            f"{p}_in = [_t.expand({p}_shape) for _t in {p}_in]",
            f"{p}_n = math.prod({p}_shape)",
            f"{p}_P = max(1, min(triton.cdiv({p}_n, {block}), {programs}))",
            f"{p}_part = torch.empty(({p}_P,), device={x[0]}.device, dtype=torch.float32)",
            f"{p}_partials[({p}_P,)](",
            f"    {p}_part, *{p}_in, {p}_n, *{p}_shape,",
            f"    *[s for _t in {p}_in for s in _t.stride()],",
            f"    *[_t.is_contiguous() for _t in {p}_in],",
            f"    BLOCK={block}, num_warps={config['num_warps']},",
            ")",
            f"{out} = torch.empty({spec['out_shape']!r}, device={x[0]}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"{p}_finish[(1,)]({p}_part, {out}, {p}_P, {scale}, "
            f"BLOCK=triton.next_power_of_2({p}_P))",
        ]
        return Emitted(kernel + "\n\n" + seed.source(loss_kernels, ["_finish"], p), call)


def _segment(graph: OpGraph, total: Op, claimed: set[str]) -> Segment | None:
    kind = _total_kind(graph, total)
    named = pointwise.loss_reduction(total) is not None
    ops, output, scale = [total.name], Ref(total.name), kind
    after = graph.users(output)
    if kind == "sum" and len(after) == 1 and not graph.is_output(output):
        div = after[0]  # batchmean: a sum divided by the batch size
        if div.op == "div" and div.args[0] == output and isinstance(div.args[1], int | float):
            first = graph.value_of(total.args[0])
            if div.name in claimed or not div.args[1] or first is None:
                pass
            elif first.rank and div.args[1] == first.shape[0]:
                scale, ops, output = "batch", [*ops, div.name], Ref(div.name)
            else:
                scale, ops, output = 1.0 / div.args[1], [*ops, div.name], Ref(div.name)
    roots = list(total.args[:2]) if named else [total.args[0]]
    if not all(isinstance(r, Ref) for r in roots):
        return None
    term = _term(graph, total, roots, claimed, named)
    if term is None:
        return None
    dag, leaves, lines, result, shape = term
    if _divides_a_leaf(graph, output, leaves):
        return None
    out = graph.value_of(output)
    if out is None or out.dtype not in _FLOATS:
        return None
    return Segment(
        "loss",
        total.name,
        [*dag, *ops],
        leaves,
        output,
        {
            "rank": len(shape),
            "lines": lines,
            "result": result,
            "floats": [graph.value_of(r).dtype in _FLOATS for r in leaves],
            "scale": scale,
            "out_shape": out.shape,
            "out_dtype": out.dtype,
            "numel": math.prod(shape),
        },
    )


def _term(graph: OpGraph, total: Op, roots: list[Ref], claimed: set[str], named: bool):
    """(op names, leaves, lines, result var, term shape): the elementwise ops feeding ``total``
    that nothing else uses (``pointwise.dag``), rendered over leaf operands ``x0, x1...``."""
    shape = graph.value_of(roots[0]).shape
    if any(graph.value_of(r) is None or graph.value_of(r).shape != shape for r in roots):
        return None
    dag, leaves = pointwise.dag(graph, total, roots, shape, claimed)
    if any(graph.value_of(r).dtype not in _FLOATS | {"bool"} for r in leaves):
        return None
    var: dict[Ref, str] = {r: f"x{i}" for i, r in enumerate(leaves)}
    lines = pointwise.render(dag, var)
    if named:
        result = pointwise.loss_term(total, lambda a: _render(a, var))
    else:
        result = _render(roots[0], var)
    if result is None:
        return None
    return [o.name for o in dag], leaves, lines, result, shape


def _divides_a_leaf(graph: OpGraph, output: Ref, leaves: list[Ref]) -> bool:
    """``x / sqrt(sum(x ** 2))``: the sum is a norm, which the vector-norm template fuses with
    the division; a loss is an end value."""
    frontier, seen = [output], 0
    while frontier and seen < 8:
        ref = frontier.pop()
        for user in graph.users(ref):
            if user.op == "div" and user.args[0] in leaves and user.args[1] == ref:
                return True
            if pointwise.is_pointwise(user):
                seen += 1
                frontier.append(Ref(user.name))
    return False


def _render(arg: object, var: dict[Ref, str]) -> str:
    return var[arg] if isinstance(arg, Ref) else pointwise._f(arg)


class Broadcast:
    """``broadcast_tensors(a, b)[i]`` (what ``F.mse_loss`` and the other named losses do to
    their operands) as the host view ``a.expand(shape)``: the kernels read through strides."""

    name = "broadcast"
    knobs: dict = {}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op == "broadcast_tensors":  # claimed with its first item
            op = next(iter(graph.users(Ref(op.name))), op)
        bt = graph.producer(op.args[0]) if op.op == "getitem" and op.args else None
        if bt is None or bt.op != "broadcast_tensors" or op.name in claimed:
            return None
        sources = bt.args[0]
        if not isinstance(op.args[1], int) or not all(isinstance(r, Ref) for r in sources):
            return None
        ops = [op.name] if bt.name in claimed else [bt.name, op.name]
        return Segment(self.name, op.name, ops, list(sources), Ref(op.name), {"item": op.args[1]})

    def default(self, seg: Segment) -> Config:
        return {}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        x = [ctx.expr(r) for r in seg.inputs]
        shape = f"torch.broadcast_shapes({', '.join(f'{t}.shape' for t in x)})"
        return Emitted("", [f"{ctx.out_var} = {x[seg.spec['item']]}.expand({shape})"])
