"""The call shapes at which a captured module computes its problem, from export's guards.

``torch.export`` with ``Dim.AUTO`` traces one path through the forward and says when it holds:
a dimension the code compared with a number is specialised (``if x.shape[0] == 6``), others
are guarded (``x.shape[1] % 2 == 0``, ``x.shape[1] > 8``), and every symbolic size is assumed
at least 2 (0 and 1 broadcast differently). At other shapes the module's own forward takes
another branch, while the problem, and every kernel verified for it, computes the traced one.
So a patched call is routed only at shapes where all of that holds (:meth:`Shapes.holds`,
decided once per shape signature).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .sizes import _Shape

_MAX_REMEMBERED = 256  # shape signatures decided per route; more are decided again


class Shapes:
    """Export's conditions on the wrapper's inputs, checked on a call's problem inputs."""

    def __init__(self, program) -> None:
        nodes = [n for n in program.graph_module.graph.nodes if n.op == "placeholder"]
        specs = program.graph_signature.input_specs
        user = [n for n, s in zip(nodes, specs, strict=True) if s.kind.name == "USER_INPUT"]
        # Problem input k is the k-th wrapper input the graph reads (emit.write's order).
        self.used = [i for i, n in enumerate(user) if n.users]
        self.traced: list[list[int]] = []
        self.pins: list[tuple[int, int, int]] = []  # (wrapper input, dim, the only size)
        self.ranges: list[tuple[int, int, float, float]] = []  # (input, dim, lowest, highest)
        bounds = getattr(program, "range_constraints", {}) or {}
        for i, node in enumerate(user):
            val = node.meta.get("val")
            shape = list(val.shape) if isinstance(val, torch.Tensor) else []
            self.traced.append([_hint(d) for d in shape])
            for d, size in enumerate(shape):
                if not isinstance(size, torch.SymInt):
                    self.pins.append((i, d, int(size)))
                    continue
                expr = size.node.expr
                found = bounds.get(expr)
                if found is not None and expr.is_symbol:
                    self.ranges.append((i, d, _number(found.lower), _number(found.upper)))
        self.guards = _function(getattr(program, "_guards_code", None) or [])
        self._seen: dict[tuple, bool] = {}

    def holds(self, tensors: list[torch.Tensor]) -> bool:
        if torch.compiler.is_compiling():  # Dynamo decides once while tracing, guarding shapes
            return self._decide([list(t.shape) for t in tensors])
        key = tuple([t.shape for t in tensors])
        found = self._seen.get(key)
        if found is None:
            found = self._decide([list(s) for s in key])
            if len(self._seen) < _MAX_REMEMBERED:
                self._seen[key] = found
        return found

    def _decide(self, shapes: list[list[int]]) -> bool:
        if len(shapes) != len(self.used):
            return False
        full = [list(s) for s in self.traced]
        for k, i in enumerate(self.used):
            if len(shapes[k]) != len(full[i]):
                return False
            full[i] = shapes[k]
        if self.guards is None:
            return full == self.traced
        if any(full[i][d] != v for i, d, v in self.pins):
            return False
        if any(not lo <= full[i][d] <= hi for i, d, lo, hi in self.ranges):
            return False
        try:
            return bool(self.guards({"tensors": [_Shape(s) for s in full]}))
        except Exception:  # a form this cannot read: only where it is sure
            return full == self.traced


def _function(code: list[str]):
    """Export's guard expressions as one Python function of ``L`` (a function, not ``eval`` per
    call, so that Dynamo can trace it), or None where they do not parse."""
    body = " and ".join(f"({c})" for c in code) or "True"
    scope: dict[str, Any] = {"__builtins__": {}, "math": math, "max": max, "min": min, "abs": abs}
    try:
        exec(compile(f"def guards(L):\n    return {body}\n", "<export guards>", "exec"), scope)
    except SyntaxError:
        return None
    return scope["guards"]


def _hint(size: Any) -> int:
    return int(size) if not isinstance(size, torch.SymInt) else int(size.node.hint or -1)


def _number(bound: Any) -> float:
    try:
        return float(bound)
    except (TypeError, ValueError):
        return math.inf if str(bound) in ("oo", "int_oo") else -math.inf
