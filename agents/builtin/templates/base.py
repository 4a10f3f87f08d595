"""What a template is: a matcher over the op graph, a config space, and a code emitter.

A template claims a *segment*: an anchor op (``linear``, ``softmax``, the first op of an
elementwise chain) plus the ops it fuses (usually an elementwise epilogue). The generated
``ModelNew.forward`` runs the segments in graph order, one or more kernel launches each.

Emitted code is standalone: kernels are ``@triton.jit`` functions in the candidate file, named
with the segment's prefix so that two segments never collide. Host code may allocate, view and
read shapes (what the static gate allows); every value is computed by a kernel.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from ..trace import OpGraph, Ref

# Config values are small ints or strings; a config is {knob: value}.
Config = dict[str, Any]


@dataclasses.dataclass
class Segment:
    template: str
    anchor: str  # the anchor op's name
    ops: list[str]  # every op name this segment computes (anchor included)
    inputs: list[Ref]  # values read from outside the segment
    output: Ref  # the value the segment produces
    spec: dict[str, Any]  # template-specific facts found by matching (dims, eps, epilogue...)

    def describe(self) -> str:
        return f"{self.template}({', '.join(self.ops)})"


@dataclasses.dataclass
class Emitted:
    defs: str  # module-level source: @triton.jit kernels and host helpers, names prefixed
    call: list[str]  # forward lines; they read ``EmitContext.expr`` and assign ``out_var``


@dataclasses.dataclass
class EmitContext:
    prefix: str  # e.g. "_s0": prefix for every module-level name this segment defines
    exprs: dict[Ref, str]  # Python expression of each value the segment reads
    out_var: str  # the variable the segment's call lines must assign
    dtype: str  # the problem's dtype: "float32", "float16", "bfloat16"

    def expr(self, ref: Ref) -> str:
        return self.exprs[ref]


class Template(Protocol):
    name: str
    # Ordered values per knob (small to large), for the search to move along.
    knobs: dict[str, tuple[Any, ...]]

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        """A segment anchored at ``graph.ops[index]``, or None. Must not claim ops in
        ``claimed`` and may only read values computed before the anchor (or graph inputs)."""

    def default(self, seg: Segment) -> Config:
        """A config that is correct for every size and reasonable on a current GPU."""

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        """Kernels and forward lines computing ``seg.output`` into ``ctx.out_var``."""


def available_before(graph: OpGraph, index: int):
    """A predicate: the value exists before ``graph.ops[index]`` runs (an input or earlier op)."""
    earlier = {o.name for o in graph.ops[:index]}

    def ok(ref: Ref) -> bool:
        return graph.input(ref.name) is not None or ref.name in earlier

    return ok


def pow2_at_most(n: int, cap: int) -> int:
    p = 1
    while p * 2 <= min(n, cap):
        p *= 2
    return p
