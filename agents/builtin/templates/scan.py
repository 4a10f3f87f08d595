"""Cumulative sum along any dim, on the ``[outer, R, inner]`` view of ``rowview``.

A program owns one outer index and ``BI`` inner columns and walks ``R`` in ``BR``-row tiles:
each tile is scanned in registers (``tl.cumsum``) and offset by the running total of the tiles
before it, so any length works with one pass over memory. Sums are float32.
"""

from __future__ import annotations

import math

from ..trace import OpGraph, Ref
from . import rowview
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}


class CumSum:
    name = "cumsum"
    knobs = rowview.KNOBS

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or op.op != "cumsum" or len(op.args) < 2:
            return None
        x, dim = op.args[0], op.args[1]
        src = graph.value_of(x) if isinstance(x, Ref) else None
        if src is None or src.dtype not in _FLOATS or not isinstance(dim, int) or src.rank == 0:
            return None
        if op.kwargs.get("dtype") not in (None, src.dtype) or not available_before(graph, index)(x):
            return None
        d = dim % src.rank
        return Segment(
            self.name,
            op.name,
            [op.name],
            [x],
            Ref(op.name),
            {
                "rank": src.rank,
                "dim": d,
                "reduced": src.shape[d],
                "out_dtype": op.value.dtype,
                "numel": math.prod(src.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        return rowview.default_config(seg.spec["reduced"])

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        body = [
            *rowview.kernel_prelude(),
            "carry = tl.zeros([BI], tl.float32)",
            "for start in range(0, R, BR):",
            "    rows = start + r0",
            *["    " + line for line in rowview.tile("rows")],
            "    x = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)",
            "    c = tl.cumsum(x, axis=0) + carry[None, :]",
            "    optrs = out_ptr + o * R * I + rows.to(tl.int64)[:, None] * I + i[None, :]",
            "    tl.store(optrs, c.to(out_ptr.dtype.element_ty), mask=mask)",
            "    carry += tl.sum(x, axis=0)",
        ]
        kernel = (
            "@triton.jit\n"
            f"def {p}_kernel(x_ptr, out_ptr, R, I, xs0, xs1, xs2, "
            "BR: tl.constexpr, BI: tl.constexpr):\n" + "\n".join("    " + b for b in body) + "\n"
        )
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        d = spec["dim"]
        call = [
            *rowview.host_view(p, x, spec["rank"], d, d + 1),
            *rowview.host_blocks(p, config),
            f"{out} = torch.empty({x}.shape, device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"if {out}.numel():",
            f"    {p}_kernel[{p}_grid](",
            f"        {p}_x, {out}, {p}_R, {p}_I, *{p}_x.stride(),",
            f"        BR={p}_BR, BI={p}_BI, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(kernel, call)
