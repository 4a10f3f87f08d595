"""2-D max pooling without ceil mode: ``pool_nd.Pool`` restricted to its first template's scope.

It keeps its own name and knob (``BLOCK``: output positions per program), so searches and
records that know ``maxpool2d`` keep working; the kernel is ``kernels/pool.py``'s, as for every
other pool. A ceil-mode or ``_with_indices`` 2-d max pool falls through to ``Pool``.
"""

from __future__ import annotations

from ..trace import OpGraph
from .base import Config, EmitContext, Emitted, Segment
from .pool_nd import Pool, taps_per_step


class MaxPool2d(Pool):
    name = "maxpool2d"
    knobs = {"BLOCK": (64, 128, 256, 512, 1024), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        if graph.ops[index].op != "max_pool2d":
            return None
        seg = super().match(graph, index, claimed)
        if seg is None or seg.spec["ceil_mode"] or seg.spec["rank"] != 4:
            return None
        return seg

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 64, "num_warps": 4}  # a 1024-element tile for a 3x3 window

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        tile = config["BLOCK"] * taps_per_step(seg.spec)
        return super().emit(graph, seg, {"MAX_BLOCK": tile, "num_warps": config["num_warps"]}, ctx)
