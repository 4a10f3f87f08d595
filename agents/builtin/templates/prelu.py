"""``nn.PReLU`` (``prelu``): a learned slope per channel, or one for all (``kernels/prelu.py``).

Super-resolution networks (ESPCN, SRGAN's residual blocks) and face models put it after their
convolutions. PyTorch's channel is dim 1 for inputs of rank 2 or more; a 1-d input takes the
single shared weight only. Inputs of rank 1 to 4 are read through their strides.
"""

from __future__ import annotations

import math

from ..kernels import prelu as seed_kernel
from ..trace import OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}


class PReLU:
    name = "prelu"
    knobs = {"BLOCK": (256, 512, 1024, 2048), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in ("prelu", "_prelu_kernel") or op.name in claimed or op.kwargs:
            return None
        if len(op.args) != 2 or not all(isinstance(a, Ref) for a in op.args):
            return None
        x, w = (graph.value_of(a) for a in op.args)
        if x is None or w is None or x.dtype not in _FLOATS or not 1 <= x.rank <= 4:
            return None
        shared = math.prod(w.shape) == 1
        if not shared and (x.rank < 2 or w.rank != 1):
            return None
        if not all(available_before(graph, index)(a) for a in op.args):
            return None
        spec = {"rank": x.rank, "per_channel": not shared, "dtype": op.value.dtype}
        return Segment(self.name, op.name, [op.name], list(op.args), Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        x, w = (ctx.expr(r) for r in seg.inputs)
        out, p, rank = ctx.out_var, ctx.prefix, seg.spec["rank"]
        # As [N, C, A, B]: unit dims before a 1-d input's only dim, after the others' last.
        pad = 3 if rank == 1 else 4 - rank
        lead = 1 if rank == 1 else 0
        dims = ["1"] * lead + [f"{x}.shape[{d}]" for d in range(rank)] + ["1"] * (pad - lead)
        strides = ["0"] * lead + [f"{x}.stride({d})" for d in range(rank)] + ["0"] * (pad - lead)
        block = config["BLOCK"]
        lines = [
            f"{out} = torch.empty({x}.shape, device={x}.device, "
            f"dtype={TORCH_DTYPES[seg.spec['dtype']]})",
            f"if {out}.numel():",
            f"    {p}_prelu_kernel[(triton.cdiv({out}.numel(), {block}),)](",
            f"        {x}, {w}, {out}, {out}.numel(), {', '.join(dims[1:])},",
            f"        {', '.join(strides)},",
            f"        PER_CHANNEL={seg.spec['per_channel']}, BLOCK={block},",
            f"        num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["prelu_kernel"], p + "_"), lines)


__all__ = ["PReLU"]
