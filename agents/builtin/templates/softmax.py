"""Softmax and log-softmax over any dim, with a fused elementwise epilogue.

The input is read as ``[outer, R, inner]`` (``rowview``). When ``R`` fits one tile the values are
read once and kept in registers; wider rows take an online pass (running max, and the sum of
exponentials rescaled whenever the max grows) and then a normalising pass. A running max of
``-inf`` (a fully masked column, or a row of ``-inf``) is replaced by ``0`` before subtracting, so
no ``-inf - -inf`` NaN reaches the sums.
"""

from __future__ import annotations

import math

from ..trace import OpGraph, Ref
from . import epilogue, rowview
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
_OPS = {"softmax": False, "_softmax": False, "log_softmax": True, "_log_softmax": True}


class Softmax:
    name = "softmax"
    knobs = rowview.KNOBS

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or op.op not in _OPS or len(op.args) < 2:
            return None
        x, dim = op.args[0], op.args[1]
        src = graph.value_of(x) if isinstance(x, Ref) else None
        if src is None or src.dtype not in _FLOATS or not isinstance(dim, int) or not src.rank:
            return None
        out = graph.value_of(Ref(op.name))
        if out is None or out.dtype not in _FLOATS:
            return None
        d = dim % src.rank
        ep, ep_ops, ep_refs, final = epilogue.fuse(
            graph, Ref(op.name), claimed, available_before(graph, index)
        )
        return Segment(
            self.name,
            op.name,
            [op.name, *ep_ops],
            [x, *ep_refs],
            final,
            {
                "log": _OPS[op.op],
                "rank": src.rank,
                "dim": d,
                "reduced": src.shape[d],
                "epilogue": ep,
                "out_dtype": ep["out_dtype"] if ep_ops else out.dtype,
                "numel": math.prod(src.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        return rowview.default_config(seg.spec["reduced"])

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        ep = spec["epilogue"]
        params = ["x_ptr", "out_ptr", "R", "I", "xs0", "xs1", "xs2", "L"]
        params += epilogue.kernel_params(ep)
        params += ["BR: tl.constexpr", "BI: tl.constexpr", "SINGLE: tl.constexpr"]
        kernel = (
            "@triton.jit\n"
            f"def {p}_kernel({', '.join(params)}):\n"
            + "\n".join("    " + line for line in _body(spec["log"], ep))
            + "\n"
        )
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        d = spec["dim"]
        call = [
            *rowview.host_view(p, x, spec["rank"], d, d + 1),
            f"{out} = torch.empty({x}.shape, device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            *rowview.host_blocks(p, config),
            *epilogue.host_lines(p, ep, [ctx.expr(r) for r in seg.inputs[1:]], out),
            f"if {out}.numel():",
            f"    {p}_kernel[{p}_grid](",
            f"        {p}_x, {out}, {p}_R, {p}_I, *{p}_x.stride(), {out}.shape[-1],",
            f"        {epilogue.host_args(p)},",
            f"        BR={p}_BR, BI={p}_BI, SINGLE={p}_R <= {p}_BR,",
            f"        num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(kernel, call)


def _finish(log: bool, rows: str, ep: dict) -> list[str]:
    """Lines turning the loaded tile ``x`` (rows ``rows``) into the stored result, given the
    column max ``safe`` and the sum ``s``."""
    if log:
        value = "acc = x - safe[None, :] - tl.log(s)[None, :]"
    else:
        value = "acc = tl.exp(x - safe[None, :]) * (1.0 / s)[None, :]"
    lines = [value, f"flat = (o * R + {rows}.to(tl.int64)[:, None]) * I + i[None, :]"]
    if ep["operands"]:
        lines += ["ep_rows = flat // L", "ep_cols = flat % L"]
    lines += epilogue.kernel_lines(ep, "ep_rows", "ep_cols", "mask")
    lines.append("tl.store(out_ptr + flat, acc.to(out_ptr.dtype.element_ty), mask=mask)")
    return lines


def _body(log: bool, ep: dict) -> list[str]:
    inf = "-float('inf')"
    load = f"x = tl.load(ptrs, mask=mask, other={inf}).to(tl.float32)"
    lines = rowview.kernel_prelude()
    lines.append("if SINGLE:")
    single = [
        *rowview.tile("r0"),
        load,
        "m = tl.max(x, axis=0)",
        "safe = tl.where(m == -float('inf'), 0.0, m)",
        "s = tl.sum(tl.exp(x - safe[None, :]), axis=0)",
        *_finish(log, "r0", ep),
    ]
    lines += ["    " + t for t in single]
    lines.append("else:")
    online = [
        f"m = tl.full([BI], {inf}, tl.float32)",
        "s = tl.zeros([BI], tl.float32)",
        "for start in range(0, R, BR):",
        "    r = start + r0",
        *["    " + t for t in rowview.tile("r")],
        "    " + load,
        "    m_new = tl.maximum(m, tl.max(x, axis=0))",
        "    safe = tl.where(m_new == -float('inf'), 0.0, m_new)",
        "    s = s * tl.exp(m - safe) + tl.sum(tl.exp(x - safe[None, :]), axis=0)",
        "    m = m_new",
        "safe = tl.where(m == -float('inf'), 0.0, m)",
        "for start in range(0, R, BR):",
        "    r = start + r0",
        *["    " + t for t in rowview.tile("r")],
        "    " + load,
        *["    " + t for t in _finish(log, "r", ep)],
    ]
    lines += ["    " + t for t in online]
    return lines
