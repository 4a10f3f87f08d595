"""Cover the op graph with template segments, or say which ops no template covers.

Two passes. The heavy templates (attention, quantized linear, matmul, conv) go first over the
whole graph, because they also claim ops *before* their anchor (``repeat_interleave`` of K/V for
grouped-query attention, the dequantisation chain of a quantized weight). Then every op still
unclaimed, in graph order, is offered to every template; views become host-side views. The
segments run in the order of their first op; a plan whose segment reads a value produced by a
later segment is rejected rather than emitted wrong.
"""

from __future__ import annotations

import dataclasses

from .templates import HEAVY, LIGHT
from .templates.base import Segment
from .templates.layout import MULTI_VIEWS, VIEWS
from .trace import OpGraph, Ref


@dataclasses.dataclass
class Plan:
    segments: list[Segment]
    unmatched: list[str]  # "op" names (with their ATen overload) that no template covers

    @property
    def ok(self) -> bool:
        return not self.unmatched and bool(self.segments)

    def describe(self) -> str:
        if not self.ok:
            return "no template for: " + ", ".join(self.unmatched or ["(empty graph)"])
        return " -> ".join(s.describe() for s in self.segments if s.template != "layout")


def plan(graph: OpGraph) -> Plan:
    claimed: set[str] = set()
    segments: list[Segment] = []

    def take(seg: Segment) -> None:
        segments.append(seg)
        claimed.update(seg.ops)

    for template in HEAVY:
        for i, op in enumerate(graph.ops):
            if op.name not in claimed and (seg := template.match(graph, i, claimed)):
                take(seg)
    unmatched: list[str] = []
    for i, op in enumerate(graph.ops):
        if op.name in claimed:
            continue
        seg = next((s for t in LIGHT if (s := t.match(graph, i, claimed))), None)
        if seg is None:
            name = f"{op.op}.{op.overload}" if op.overload != "default" else op.op
            if op.op in VIEWS:  # a view is only refused when its shape cannot follow the sizes
                name += " (a reshape that cannot be rewritten over run-time sizes)"
            elif (op.op, op.overload) in MULTI_VIEWS:
                name += " (its split sizes follow the problem's size by no rule we know)"
            unmatched.append(name)
        else:
            take(seg)
    order = {o.name: i for i, o in enumerate(graph.ops)}
    segments.sort(key=lambda s: min(order[n] for n in s.ops))
    if not unmatched:
        unmatched = _order_problems(graph, segments)
    return Plan(segments, unmatched)


def _order_problems(graph: OpGraph, segments: list[Segment]) -> list[str]:
    """Values a segment reads must be graph inputs or outputs of earlier segments."""
    ready = {i.name for i in graph.inputs}
    for seg in segments:
        missing = [r.name for r in seg.inputs if r.name not in ready]
        if missing:
            return [f"{seg.describe()} (needs {', '.join(missing)} before it is computed)"]
        ready.add(seg.output.name)
    lost = [r.name for r in graph.outputs if r.name not in ready]
    return [f"output {name} (no segment produces it)" for name in lost]


def main_segment(segments: list[Segment]) -> int | None:
    """The segment the search tunes first: the heaviest kind, then the largest output."""
    weight = {
        "attention": 5,
        "qlinear": 4,
        "matmul": 4,
        "conv2d": 4,
        "conv": 4,
        "conv_transpose": 4,
    }
    best = None
    for i, s in enumerate(segments):
        if s.template == "layout":
            continue
        key = (weight.get(s.template, 1), s.spec.get("numel", 0))
        if best is None or key > best[0]:
            best = (key, i)
    return best[1] if best else None


__all__ = ["Plan", "Ref", "main_segment", "plan"]
