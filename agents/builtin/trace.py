"""The reference's op graph for the templates, with what changes at other sizes written over
run-time quantities.

``kernelbench/trace.py`` makes the graph at one size; here the builtin coder traces again at
the problem's public hold-outs (or sizes it probes itself) so that ``sizes.py`` can tell which
numbers in the graph follow the sizes. Shapes in the graph are those of the traced size; the
generated kernels read shapes from their tensors at run time, so they also serve other sizes.
"""

from __future__ import annotations

from typing import Any

from ...kernelbench import autosize
from ...kernelbench.opgraph import Input, Op, OpGraph, Ref, TraceError, Value
from ...kernelbench.problem import Problem
from ...kernelbench.trace import trace_at
from . import sizes
from .constants import simplify

__all__ = ["Input", "Op", "OpGraph", "Ref", "TraceError", "Value", "trace"]


def trace(problem: Problem, overrides: dict[str, Any] | None = None) -> OpGraph:
    """The op graph of ``problem``'s forward at the size ``overrides`` selects, with what
    changes at the problem's hold-out sizes written over run-time quantities (``sizes.py``)."""
    graph, model = trace_at(problem, overrides)
    graph = simplify(graph)  # 0-d constants as literals, unread buffers dropped
    others = []
    main = overrides or {}
    # The declared hold-outs are public; derived ones are secret, drawn per evaluation, so
    # the coder probes sizes of its own choosing instead.
    probes = [{**main, **h} for h in problem.holdout] or autosize.coder_probes(problem, main)
    for sized in probes:
        try:
            other, other_model = trace_at(problem, sized, bind_attributes=False)
        except TraceError:
            return graph
        other = simplify(other)
        others.append(sizes.Trace(other, sizes.int_attributes(other_model)))
    return sizes.bind(sizes.Trace(graph, sizes.int_attributes(model)), others)
