"""A fused elementwise epilogue for kernels that compute a 2-D ``[rows, cols]`` tile.

The anchor's output is viewed as ``[M, N]`` (``N`` its last dim). Each extra operand of the
chain (a bias, a residual, a scale) is broadcast to the output's shape and viewed the same way on
the host, so the kernel reads it through two strides: ``0`` along a broadcast dim. A broadcast
that no 2-D view can express (a per-channel bias of an NCHW output) is materialised by
``reshape``: correct, at the price of one extra read.

Use: ``fuse`` at match time (stores the chain in the segment's spec), then in the kernel the
lines of ``kernel_lines`` after the accumulator is computed, with ``kernel_params`` in its
signature and ``host_lines``/``host_args`` in the launch.
"""

from __future__ import annotations

from .. import pointwise
from ..trace import OpGraph, Ref

_FLOATS = {"float32", "float16", "bfloat16", "float64"}


def fuse(
    graph: OpGraph, anchor: Ref, claimed: set[str], available
) -> tuple[dict, list[str], list[Ref], Ref]:
    """The epilogue after ``anchor``: (spec["epilogue"], op names, operand refs, output ref).

    Operands that are not float tensors end the chain before the op that needs them."""

    def ok(ref: Ref) -> bool:
        v = graph.value_of(ref)
        return available(ref) and v is not None and v.dtype in _FLOATS

    chain = pointwise.absorb(graph, anchor, claimed, available=ok)
    out = graph.value_of(chain.out)
    spec = {
        "lines": chain.lines,
        "result": chain.result,
        "operands": len(chain.operands),
        "out_dtype": out.dtype if out else None,
    }
    return spec, chain.ops, chain.operands, chain.out


def kernel_params(spec: dict) -> list[str]:
    return [f"e{i}_{s}" for i in range(spec["operands"]) for s in ("ptr", "sm", "sn")]


def kernel_lines(spec: dict, rows: str, cols: str, mask: str, acc: str = "acc") -> list[str]:
    """Lines that turn float32 ``acc`` (shape ``[BM, BN]``, or ``[BN]`` when ``rows`` is a
    scalar row index) into the epilogue's result, assigned back to ``acc``."""
    lines = []
    for i in range(spec["operands"]):
        offset = f"{rows} * e{i}_sm + {cols} * e{i}_sn"
        lines.append(f"o{i} = tl.load(e{i}_ptr + {offset}, mask={mask}, other=0.0).to(tl.float32)")
    if spec["lines"]:
        if acc != "acc":
            lines.append(f"acc = {acc}")
        lines += spec["lines"]
        lines.append(f"{acc} = {spec['result']}")
    return lines


def host_lines(prefix: str, spec: dict, operand_exprs: list[str], out_var: str) -> list[str]:
    """Forward lines making ``{prefix}_ep``: (tensor, row stride, col stride) per operand."""
    if not spec["operands"]:
        return [f"{prefix}_ep = []"]
    views = ", ".join(operand_exprs)
    return [
        f"{prefix}_ep = []",
        f"for _t in ({views},):",
        f"    _t = _t.expand({out_var}.shape).reshape(-1, {out_var}.shape[-1])",
        f"    {prefix}_ep += [_t, _t.stride(0), _t.stride(1)]",
    ]


def host_args(prefix: str) -> str:
    """The launch arguments matching :func:`kernel_params`."""
    return f"*{prefix}_ep"
