"""Elementwise chains: any run of unary, binary and activation ops, fused into one kernel.

One program per ``BLOCK`` output elements of the contiguous output. Each operand is either read
flat (same shape and contiguous: the common case, vectorised) or through its broadcast strides
(a per-channel bias, a scalar tensor), decided per launch by a constexpr flag so neither case
pays for the other.
"""

from __future__ import annotations

import math

from .. import pointwise
from ..trace import OpGraph, Ref
from .base import Config, EmitContext, Emitted, Segment, available_before

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
TORCH_DTYPES = {
    "float32": "torch.float32",
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
    "float64": "torch.float64",
    "bool": "torch.bool",
}


class Elementwise:
    name = "elementwise"
    knobs = {"BLOCK": (256, 512, 1024, 2048, 4096), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or not pointwise.is_pointwise(op):
            return None
        out = graph.value_of(Ref(op.name))
        if out is None or out.dtype not in _FLOATS:
            return None
        anchor = next(
            (r for r in op.refs() if (v := graph.value_of(r)) is not None and v.shape == out.shape),
            None,
        )
        available = available_before(graph, index)
        if anchor is None or not available(anchor):
            return None
        chain = pointwise.absorb(graph, anchor, claimed, available=available, first=op)
        if not chain.ops:
            return None
        ops, refs, end = chain.ops, [anchor, *chain.operands], chain.out
        lines, result = chain.lines, chain.result
        joined = _joined(graph, index, chain, claimed, out.shape)
        if joined is not None:
            ops, refs, lines, result, end = joined
        if any(graph.value_of(r).dtype not in _FLOATS | {"bool"} for r in refs):
            return None
        final = graph.value_of(end)
        return Segment(
            self.name,
            op.name,
            ops,
            refs,
            end,
            {
                "rank": out.rank,
                "numel": math.prod(out.shape),
                "lines": lines,
                "result": result,
                "floats": [graph.value_of(r).dtype in _FLOATS for r in refs],
                "out_dtype": final.dtype,
            },
        )

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        rank, n_in = spec["rank"], len(seg.inputs)
        dims = [f"D{d}" for d in range(rank)]
        params = ["out_ptr"] + [f"in{i}_ptr" for i in range(n_in)] + ["n"] + dims
        params += [f"s{i}_{d}" for i in range(n_in) for d in range(rank)]
        params += [f"FLAT{i}: tl.constexpr" for i in range(n_in)] + ["BLOCK: tl.constexpr"]
        body = [
            "pid = tl.program_id(0).to(tl.int64)",
            "offs = pid * BLOCK + tl.arange(0, BLOCK)",
            "mask = offs < n",
        ]
        for i in range(n_in):
            body += _operand_load(i, rank, spec["floats"][i])
        names = ["acc"] + [f"o{i}" for i in range(n_in - 1)]
        body += [f"{names[i]} = x{i}" for i in range(n_in)]
        body += spec["lines"]
        body.append(
            f"tl.store(out_ptr + offs, ({spec['result']}).to(out_ptr.dtype.element_ty), mask=mask)"
        )
        kernel = (
            "@triton.jit\n"
            f"def {p}_kernel({', '.join(params)}):\n"
            + "\n".join("    " + line for line in body)
            + "\n"
        )
        x = [ctx.expr(r) for r in seg.inputs]
        out = ctx.out_var
        dtype = TORCH_DTYPES[spec["out_dtype"]]
        call = [
            f"{out} = torch.empty({x[0]}.shape, device={x[0]}.device, dtype={dtype})",
            f"{p}_in = [t.expand({out}.shape) for t in ({', '.join(x)},)]",
            f"if {out}.numel():",
            f"    {p}_kernel[(triton.cdiv({out}.numel(), {config['BLOCK']}),)](",
            f"        {out}, *{p}_in, {out}.numel(), *{out}.shape,",
            f"        *[s for t in {p}_in for s in t.stride()],",
            f"        *[t.is_contiguous() and t.stride() == {out}.stride() for t in {p}_in],",
            f"        BLOCK={config['BLOCK']}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(kernel, call)


def _joined(graph: OpGraph, index: int, chain: pointwise.Chain, claimed: set[str], shape):
    """The DAG a chain is one branch of, or None. In ``0.5 * x * (1 + tanh(...))`` the chain from
    ``0.5 * x`` stops at the product, whose other factor is computed after it; the DAG up to the
    last elementwise op of the output's shape takes both branches into one kernel."""
    users = graph.users(chain.out)
    if graph.is_output(chain.out) or len(users) != 1:
        return None

    def same(op) -> bool:
        v = graph.value_of(Ref(op.name))
        ok = op.name not in claimed and pointwise.is_pointwise(op)
        return ok and v is not None and v.shape == shape and v.dtype in _FLOATS

    sink = users[0]
    if not same(sink) or pointwise.expression(sink, lambda a: "v") is None:
        return None
    while not graph.is_output(Ref(sink.name)) and len(after := graph.users(Ref(sink.name))) == 1:
        if not same(after[0]) or pointwise.expression(after[0], lambda a: "v") is None:
            break
        sink = after[0]
    ops, leaves = pointwise.dag(graph, sink, sink.refs(), shape, claimed)
    ops.append(sink)
    if graph.index(ops[0].name) != index or not set(chain.ops) <= {o.name for o in ops}:
        return None
    full = [r for r in leaves if graph.value_of(r).shape == shape]
    if not full:  # the kernel's output takes the first operand's shape
        return None
    leaves = [full[0], *(r for r in leaves if r != full[0])]
    names = {leaves[0]: "acc", **{r: f"o{i}" for i, r in enumerate(leaves[1:])}}
    lines = pointwise.render(ops, names)
    return [o.name for o in ops], leaves, lines, names[Ref(sink.name)], Ref(sink.name)


def _operand_load(i: int, rank: int, is_float: bool) -> list[str]:
    coords = []
    if rank:
        coords.append("r = offs")
        for d in reversed(range(rank)):
            if d:
                coords += [f"c{d} = r % D{d}", f"r = r // D{d}"]
            else:
                coords.append("c0 = r")
    strided = " + ".join(f"c{d} * s{i}_{d}" for d in range(rank)) or "offs * 0"
    cast = ".to(tl.float32)" if is_float else ""
    return [
        f"if FLAT{i}:",
        f"    p{i} = offs",
        "else:",
        *["    " + c for c in coords],
        f"    p{i} = {strided}",
        f"x{i} = tl.load(in{i}_ptr + p{i}, mask=mask, other=0){cast}",
    ]
