"""Padding: ``pad`` (constant, reflect, replicate) and the ``*_pad{1,2,3}d`` ops it dispatches
to, over the last three dims at most (``kernels/pad.py``).

Reflection and zero padding before convolutions are how GAN generators and style-transfer
networks (CycleGAN's and pix2pix's ResNet blocks) keep their borders. The pads are the traced
ones, written as literals: a module's ``ReflectionPad2d(3)`` is a constant. A pad that changes
with the size (a UNet matching its skip connection's odd size), seen by tracing at other sizes
(``sizes.py``), is refused: no literal is right for it. Circular padding is left to others.
"""

from __future__ import annotations

import math

from ..kernels import pad as seed_kernel
from ..trace import OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
_MODES = {"constant": 0, "reflect": 1, "replicate": 2}
# op -> mode, for the ops ``pad`` decomposes into (and ``constant_pad_nd``'s (x, pads, value))
_OPS = {
    "constant_pad_nd": "constant",
    **{f"reflection_pad{n}d": "reflect" for n in (1, 2, 3)},
    **{f"replication_pad{n}d": "replicate" for n in (1, 2, 3)},
}


class Pad:
    name = "pad"
    knobs = {"BLOCK": (256, 512, 1024, 2048), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or op.kwargs or not op.args or not isinstance(op.args[0], Ref):
            return None
        if op.op == "pad":  # (x, pads, mode="constant", value=None)
            mode = op.args[2] if len(op.args) > 2 else "constant"
            value = op.args[3] if len(op.args) > 3 else None
        elif op.op in _OPS:
            mode = _OPS[op.op]
            value = op.args[2] if op.op == "constant_pad_nd" and len(op.args) > 2 else None
        else:
            return None
        if op.name in graph.unsized:  # the pads change with the size: no literal is right
            return None
        pads = op.args[1] if len(op.args) > 1 else None
        src = graph.value_of(op.args[0])
        if mode not in _MODES or src is None or src.dtype not in _FLOATS or src.rank > 5:
            return None
        if not isinstance(pads, tuple | list) or len(pads) % 2 or not 2 <= len(pads) <= 6:
            return None
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in pads):
            return None
        if len(pads) // 2 > src.rank or (mode != "constant" and min(pads) < 0):
            return None
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return None
        if not math.isfinite(float(value or 0.0)) or not available_before(graph, index)(op.args[0]):
            return None
        spec = {
            "mode": _MODES[mode],
            "rank": src.rank,
            # (before, after) per padded dim, last dim first as F.pad lists them
            "pads": [(pads[2 * k], pads[2 * k + 1]) for k in range(len(pads) // 2)],
            "value": float(value or 0.0),
            "dtype": op.value.dtype,
        }
        return Segment(self.name, op.name, [op.name], [op.args[0]], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        x, out, rank = ctx.expr(seg.inputs[0]), ctx.out_var, spec["rank"]
        lead = 5 - rank
        dims = ["1"] * lead + [f"{x}.shape[{d}]" for d in range(rank)]
        strides = ["0"] * lead + [f"{x}.stride({d})" for d in range(rank)]
        before = [0, 0, 0]
        outs = list(dims[2:])
        for k, (lo, hi) in enumerate(spec["pads"]):  # k = 0: the last dim
            before[2 - k] = lo
            outs[2 - k] = f"{dims[4 - k]} + {lo + hi}"
        shape = [f"{x}.shape[{d}]" for d in range(rank - len(spec["pads"]))]
        shape += [outs[3 - len(spec["pads"]) + j] for j in range(len(spec["pads"]))]
        block = config["BLOCK"]
        lines = [
            f"{out} = torch.empty(({', '.join(shape)},), device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['dtype']]})",
            f"if {out}.numel():",
            f"    {p}_pad_kernel[(triton.cdiv({out}.numel(), {block}),)](",
            f"        {x}, {out}, {out}.numel(), {', '.join(dims[1:])}, {', '.join(outs)},",
            f"        {', '.join(map(str, before))}, {', '.join(strides)}, {spec['value']!r},",
            f"        MODE={spec['mode']}, BLOCK={block}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["pad_index", "pad_kernel"], p + "_"), lines)


__all__ = ["Pad"]
