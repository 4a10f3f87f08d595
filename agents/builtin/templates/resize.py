"""Resizing: ``F.interpolate`` / ``nn.Upsample`` in nearest, nearest-exact and (bi/tri)linear
modes, 1-d to 3-d (``kernels/resize.py``; its docstring has PyTorch's index rules).

A UNet's or a diffusion model's decoder upsamples by a scale factor, an FPN or a segmentation
head to another tensor's size (``size=skip.shape[-2:]``). The host computes the output size
and the per-dim scale as PyTorch does at run time: ``floor(in * scale_factor)`` with the given
factor, else the traced output size, written as the matching dim of another forward argument
where one has it (the skip connection the size came from) and as a literal otherwise; the
hold-out trials tell which was right. Bicubic and antialiased resizes are not covered.

``pixel_shuffle`` (a super-resolution or diffusion upsampler's ``nn.PixelShuffle``) and
``pixel_unshuffle`` are permuted copies, by the factor traced (a module's constant).
"""

from __future__ import annotations

import math

from ..kernels import resize as seed_kernel
from ..trace import OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
# op -> (mode, spatial rank); mode 0 nearest, 1 nearest-exact, 2 linear (kernel's MODE)
_OPS = {
    **{f"upsample_nearest{n}d": (0, n) for n in (1, 2, 3)},
    **{f"_upsample_nearest_exact{n}d": (1, n) for n in (1, 2, 3)},
    "upsample_linear1d": (2, 1),
    "upsample_bilinear2d": (2, 2),
    "upsample_trilinear3d": (2, 3),
}


def _args(op, mode: int, n: int) -> tuple[list | None, bool, list | None] | None:
    """(output size, align_corners, scale factors) of either overload, or None."""
    a = list(op.args[1:])
    align = False
    if mode == 2:  # linear: (x, output_size, align_corners, ...)
        if len(a) < 2 or not isinstance(a[1], bool):
            return None
        align = a.pop(1)
    size = a[0] if a else None
    if op.overload == "vec":  # (x, output_size, [align], scale_factors)
        scales = a[1] if len(a) > 1 else None
    else:  # (x, output_size, [align], scales_d, scales_h, scales_w): one optional per dim
        scales = a[1 : 1 + n] if len(a) > 1 and any(s is not None for s in a[1:]) else None
    if size is not None and (len(size) != n or not all(isinstance(s, int) for s in size)):
        return None
    if scales is not None:
        if len(scales) != n or not all(isinstance(s, int | float) for s in scales):
            return None
        scales = [float(s) for s in scales]
    if size is None and scales is None:
        return None
    return size, align, scales


class Resize:
    name = "resize"
    knobs = {"BLOCK": (128, 256, 512, 1024, 2048), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        entry = _OPS.get(op.op)
        if op.name in claimed or entry is None or not op.args or not isinstance(op.args[0], Ref):
            return None
        mode, n = entry
        x = op.args[0]
        src = graph.value_of(x)
        if src is None or src.rank != n + 2 or src.dtype not in _FLOATS or op.kwargs:
            return None
        if op.overload not in ("vec", "default") or not available_before(graph, index)(x):
            return None
        found = _args(op, mode, n)
        if found is None:
            return None
        size, align, scales = found
        out = op.value
        inputs, sizes = [x], []
        for j in range(n):
            traced = out.shape[2 + j]
            if scales is not None and traced == int(src.shape[2 + j] * scales[j]):
                sizes.append(("scale", scales[j]))
                continue
            other = _sized_like(graph, x, 2 + j, traced)
            if other is not None:
                inputs.append(other)
                sizes.append(("input", len(inputs) - 1))
            else:
                sizes.append(("literal", traced))
        spec = {
            "mode": mode,
            "n": n,
            "align": align,
            "sizes": sizes,
            # PyTorch's index scale reads the factor even with an output size (vec passes both
            # only from interpolate's internals; the default overload's scales_h and scales_w).
            "factors": scales,
            "out_dtype": out.dtype,
            "numel": math.prod(out.shape),
        }
        return Segment(self.name, op.name, [op.name], inputs, Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        n = spec["n"]
        lines = [
            f"{p}_i = ({', '.join(['1'] * (3 - n) + [f'{x}.shape[{2 + j}]' for j in range(n)])})"
        ]
        outs = ["1"] * (3 - n)
        for j, (kind, v) in enumerate(spec["sizes"]):
            if kind == "scale":  # ATen: the input size times the factor, floored (in double)
                outs.append(f"int({x}.shape[{2 + j}] * {v!r})")
            elif kind == "input":
                outs.append(f"{ctx.expr(seg.inputs[v])}.shape[{2 + j}]")
            else:
                outs.append(str(v))
        lines.append(f"{p}_o = ({', '.join(outs)})")
        factors = [None] * (3 - n) + list(spec["factors"] or [None] * n)
        scales = []
        for d, f in enumerate(factors):
            i, o = f"{p}_i[{d}]", f"{p}_o[{d}]"
            if spec["align"]:
                scales.append(f"(({i} - 1) / ({o} - 1) if {o} > 1 else 0.0)")
            elif f is not None and f > 0:
                scales.append(repr(1.0 / f))
            else:
                scales.append(f"{i} / {o}")
        strides = ["0"] * (3 - n) + [f"{x}.stride({2 + j})" for j in range(n)]
        block, warps = config["BLOCK"], config["num_warps"]
        lines += [
            f"{out} = torch.empty(({x}.shape[0], {x}.shape[1], *{p}_o[{3 - n}:]), "
            f"device={x}.device, dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"if {out}.numel():",
            f"    {p}_resize_kernel[(triton.cdiv({out}.numel(), {block}),)](",
            f"        {x}, {out}, {out}.numel(), {x}.shape[1], *{p}_i, *{p}_o,",
            f"        {x}.stride(0), {x}.stride(1), {', '.join(strides)},",
            f"        {', '.join(scales)},",
            f"        MODE={spec['mode']}, ALIGN={spec['align']}, DEPTH={n == 3},",
            f"        BLOCK={block}, num_warps={warps},",
            "    )",
        ]
        names = ["resize_nearest_index", "resize_linear_index", "resize_kernel"]
        return Emitted(seed.source(seed_kernel, names, p + "_"), lines)


class PixelShuffle:
    name = "pixel_shuffle"
    knobs = {"BLOCK": (256, 512, 1024, 2048), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in ("pixel_shuffle", "pixel_unshuffle") or op.name in claimed:
            return None
        if len(op.args) != 2 or not isinstance(op.args[0], Ref) or op.kwargs:
            return None
        src, factor = graph.value_of(op.args[0]), op.args[1]
        if src is None or src.rank != 4 or src.dtype not in TORCH_DTYPES:
            return None
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            return None
        if not available_before(graph, index)(op.args[0]):
            return None
        spec = {"r": factor, "unshuffle": op.op == "pixel_unshuffle", "dtype": op.value.dtype}
        return Segment(self.name, op.name, [op.name], [op.args[0]], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        x, out, p, r = ctx.expr(seg.inputs[0]), ctx.out_var, ctx.prefix, seg.spec["r"]
        if seg.spec["unshuffle"]:
            shape = (
                f"{x}.shape[0], {x}.shape[1] * {r * r}, {x}.shape[2] // {r}, {x}.shape[3] // {r}"
            )
        else:
            shape = f"{x}.shape[0], {x}.shape[1] // {r * r}, {x}.shape[2] * {r}, {x}.shape[3] * {r}"
        block = config["BLOCK"]
        lines = [
            f"{out} = torch.empty(({shape}), device={x}.device, "
            f"dtype={TORCH_DTYPES[seg.spec['dtype']]})",
            f"if {out}.numel():",
            f"    {p}_pixel_shuffle_kernel[(triton.cdiv({out}.numel(), {block}),)](",
            f"        {x}, {out}, {out}.numel(), *{out}.shape[1:], *{x}.stride(),",
            f"        R={r}, UNSHUFFLE={seg.spec['unshuffle']}, BLOCK={block},",
            f"        num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["pixel_shuffle_kernel"], p + "_"), lines)


def _sized_like(graph: OpGraph, x: Ref, dim: int, size: int) -> Ref | None:
    """Another forward argument whose ``dim`` is ``size`` (the tensor a resize matches)."""
    for inp in graph.inputs:
        value = inp.value
        if inp.kind != "arg" or inp.name == x.name or value is None or value.rank <= dim:
            continue
        if value.shape[dim] == size:
            return Ref(inp.name)
    return None


__all__ = ["PixelShuffle", "Resize"]
