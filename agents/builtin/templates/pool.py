"""2-D max pooling: each program takes one (image, channel) plane and ``BLOCK`` output positions.

The window is unrolled at compile time (kernel size, stride, padding and dilation are the traced
op's: hold-out instances change sizes, not the pooling geometry). Out-of-bounds taps read
``-inf``, which is what PyTorch's implicit padding means for a max. Input strides are read at
run time, so channels-last inputs work without a copy; the output is contiguous NCHW.
"""

from __future__ import annotations

import math

from ..trace import OpGraph, Ref
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}


def _pair(v, default) -> tuple[int, int] | None:
    if v is None or v == () or v == []:
        return default
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, tuple | list) and len(v) in (1, 2) and all(isinstance(i, int) for i in v):
        return (v[0], v[-1])
    return None


class MaxPool2d:
    name = "maxpool2d"
    knobs = {"BLOCK": (64, 128, 256, 512, 1024), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or op.op != "max_pool2d" or not op.args:
            return None
        x = op.args[0]
        src = graph.value_of(x) if isinstance(x, Ref) else None
        if src is None or src.rank != 4 or src.dtype not in _FLOATS:
            return None
        a = list(op.args) + [None] * (6 - len(op.args))
        kernel = _pair(a[1], None)
        stride = _pair(a[2], kernel)
        padding = _pair(a[3] if a[3] is not None else op.kwargs.get("padding"), (0, 0))
        dilation = _pair(a[4] if a[4] is not None else op.kwargs.get("dilation"), (1, 1))
        ceil_mode = a[5] if a[5] is not None else op.kwargs.get("ceil_mode", False)
        if None in (kernel, stride, padding, dilation) or ceil_mode:
            return None
        if not available_before(graph, index)(x):
            return None
        out = op.value
        return Segment(
            self.name,
            op.name,
            [op.name],
            [x],
            Ref(op.name),
            {
                "kernel": list(kernel),
                "stride": list(stride),
                "padding": list(padding),
                "dilation": list(dilation),
                "out_dtype": out.dtype,
                "numel": math.prod(out.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 256, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        (kh, kw), (sh, sw) = spec["kernel"], spec["stride"]
        (ph, pw), (dh, dw) = spec["padding"], spec["dilation"]
        kernel = f"""@triton.jit
def {p}_kernel(x_ptr, out_ptr, C, H, W, OH, OW, xs0, xs1, xs2, xs3, BLOCK: tl.constexpr):
    plane = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < OH * OW
    oh = offs // OW
    ow = offs % OW
    base = x_ptr + (plane // C) * xs0 + (plane % C) * xs1
    acc = tl.full([BLOCK], -float("inf"), tl.float32)
    for i in tl.static_range({kh}):
        ih = oh * {sh} - {ph} + i * {dh}
        for j in tl.static_range({kw}):
            iw = ow * {sw} - {pw} + j * {dw}
            ok = mask & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
            v = tl.load(base + ih * xs2 + iw * xs3, mask=ok, other=-float("inf"))
            acc = tl.maximum(acc, v.to(tl.float32))
    tl.store(out_ptr + plane * OH * OW + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)
"""
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        dtype = TORCH_DTYPES[spec["out_dtype"]]
        call = [
            f"{p}_n, {p}_c, {p}_h, {p}_w = {x}.shape",
            f"{p}_oh = ({p}_h + {2 * ph} - {dh * (kh - 1)} - 1) // {sh} + 1",
            f"{p}_ow = ({p}_w + {2 * pw} - {dw * (kw - 1)} - 1) // {sw} + 1",
            f"{out} = torch.empty(({p}_n, {p}_c, {p}_oh, {p}_ow), device={x}.device, "
            f"dtype={dtype})",
            f"if {out}.numel():",
            f"    {p}_kernel[({p}_n * {p}_c, triton.cdiv({p}_oh * {p}_ow, {config['BLOCK']}))](",
            f"        {x}, {out}, {p}_c, {p}_h, {p}_w, {p}_oh, {p}_ow, *{x}.stride(),",
            f"        BLOCK={config['BLOCK']}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(kernel, call)
