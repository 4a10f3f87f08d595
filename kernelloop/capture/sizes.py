"""Which dimensions of a captured problem's inputs share a size constant, and the constants' names.

A problem's ``get_inputs`` draws every input from module-level size constants, and autosize
derives the CPU size and the hold-outs by changing them. So a constant must stand for exactly
the dimensions that must stay equal: one per dimension *value* merges unrelated sizes that happen
to be equal (sequence 16 and head size 16 could then never differ), while giving tied dimensions
(the hidden size of ``x`` and of the weight it meets) separate constants builds inputs the
reference rejects.

The ties come from the export (``functional.py`` traces with ``Dim.AUTO``):

1. a dimension export kept symbolic is keyed by its symbol (export gives dimensions it proved
   equal one symbol, ``s0``); one it specialised (a static trace, a size the code fixes) by its
   value, as before;
2. export proves some equalities only as guards on the inputs (``q.view(b, t, 4, c // 4)`` keeps
   ``q``'s rows a symbol of their own, guarded ``q_rows // 4 == c // 4``). Of the symbols of one
   value, one the guards let move alone (the last projection's output width) gets a constant of
   its own; the rest stay tied. The guards are evaluated at trial sizes, nothing is traced again.

Names as before: a role where one role explains every use (``BATCH``, ``SEQ``, ``HEIGHT``,
``WIDTH``), else ``DIM_<value>``, then ``DIM_<value>_2``, ... for further groups of one value.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from .manifest import UnitInput

_TRIALS = (1, 2, 4, 8, 16)  # steps up from the real size: growing never trips a size floor


@dataclasses.dataclass
class Sizes:
    """The constants (name -> value, in first-use order) and each input's dims as names."""

    constants: dict[str, int]
    dims: dict[str, list[str | None]]  # input name -> a constant per dim (None: a 1, inline)

    def shape(self, inp: UnitInput, as_tuple: bool = False) -> str:
        parts = [n or str(v) for n, v in zip(self.dims[inp.name], inp.tensor.shape, strict=True)]
        if as_tuple:
            return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
        return ", ".join(parts) if parts else "()"

    def above(self, hi: int) -> str | None:
        """The constant of the smallest size above ``hi`` (what indices up to ``hi`` index)."""
        found = [(v, n) for n, v in self.constants.items() if v > hi]
        return min(found)[1] if found else None


def name_sizes(program, used: list[tuple[UnitInput, Any]]) -> Sizes:
    """``used``: each input the graph reads, with its placeholder node in ``program``."""
    positions = {n: i for i, n in enumerate(_user_nodes(program))}
    keys: dict[tuple[str, int], Any] = {}  # (input, dim) -> its symbol's name or ("value", v)
    for inp, node in used:
        val = node.meta.get("val")
        for d, v in enumerate(inp.tensor.shape):
            if v == 1:
                continue
            sym = val.shape[d] if isinstance(val, torch.Tensor) and val.dim() > d else None
            # The expression after export's replacements: a number where it specialised later.
            expr = sym.node.expr if isinstance(sym, torch.SymInt) else None
            free = expr is not None and bool(expr.free_symbols)
            keys[inp.name, d] = str(expr) if free else ("value", v)
    value = {keys[inp.name, d]: v for inp, _ in used for d, v in enumerate(inp.tensor.shape)
             if (inp.name, d) in keys}  # fmt: skip
    at = {k: [(positions[node], d) for (inp, node) in used for d in range(len(inp.tensor.shape))
              if keys.get((inp.name, d)) == k] for k in value}  # fmt: skip
    shapes = [list(inp.tensor.shape) for inp in _all_inputs(program, used)]
    tie = _Ties(getattr(program, "_guards_code", None) or [], shapes, at)
    group: dict[Any, Any] = {k: k for k in value}
    for v in dict.fromkeys(value.values()):
        symbols = [k for k in value if value[k] == v and isinstance(k, str)]
        for kept in tie.groups(symbols, v):
            for k in kept:
                group[k] = kept[0]
    return _named(used, keys, group, value)


def _user_nodes(program) -> list:
    nodes = [n for n in program.graph_module.graph.nodes if n.op == "placeholder"]
    specs = program.graph_signature.input_specs
    return [n for n, s in zip(nodes, specs, strict=True) if s.kind.name == "USER_INPUT"]


def _all_inputs(program, used) -> list:
    """Every user input's shape holder in wrapper order (the guards index them so); unread ones
    come from their placeholder, they never move."""
    by_node = {node: inp for inp, node in used}
    out = []
    for node in _user_nodes(program):
        if node in by_node:
            out.append(by_node[node])
        else:
            val = node.meta.get("val")
            dims = val.shape if isinstance(val, torch.Tensor) else ()
            # The traced example's size; no hint leaves -1, which fails the guards: unusable.
            shape = tuple(d if isinstance(d, int) else (d.node.hint or -1) for d in dims)
            out.append(_Fixed(shape))
    return out


@dataclasses.dataclass
class _Fixed:
    shape: tuple[int, ...]

    @property
    def tensor(self):  # reads like a UnitInput's spec
        return self


class _Ties:
    """Evaluates export's input guards at trial sizes (a few dozen string expressions)."""

    def __init__(self, code: list[str], shapes: list[list[int]], at: dict) -> None:
        self.shapes, self.at = shapes, at
        try:
            self.guards = [compile(c, "<export guard>", "eval") for c in code]
        except SyntaxError:
            self.guards = []
        # Guards that do not hold at the real sizes (a form this evaluator misreads) say nothing.
        self.usable = bool(self.guards) and self._holds({})

    def groups(self, symbols: list[str], v: int) -> list[list[str]]:
        """Of symbols of value ``v``: the ones the guards let move alone each alone, the rest
        one group (tied, or undecided: sharing a constant is what it was before)."""
        if len(symbols) < 2:
            return [symbols] if symbols else []
        if not self.usable:
            return [[s] for s in symbols]  # only export's symbols to go on
        rest, alone = list(symbols), []
        changed = True
        while changed and len(rest) > 1:
            changed = False
            for s in rest:
                others = [o for o in rest if o != s]
                if self._moves([s], v) and self._moves(others, v):
                    alone.append([s])
                    rest = others
                    changed = True
                    break
        return [rest, *alone]

    def _moves(self, symbols: list[str], v: int) -> bool:
        return any(self._holds({s: v + step for s in symbols}) for step in _TRIALS)

    def _holds(self, new: dict[str, int]) -> bool:
        shapes = [list(s) for s in self.shapes]
        for key, size in new.items():
            for i, d in self.at[key]:
                shapes[i][d] = size
        scope = {"L": {"tensors": [_Shape(s) for s in shapes]}, "math": math}
        scope.update(max=max, min=min, abs=abs)
        try:
            return all(eval(g, {"__builtins__": {}}, scope) for g in self.guards)  # export's
        except Exception:  # a form this evaluator cannot read: assume the sizes do not work
            return False


class _Shape:
    """What a guard reads of an input: its sizes, and the strides of a contiguous tensor."""

    def __init__(self, shape: list[int]) -> None:
        self._shape = shape

    def size(self, d: int | None = None):
        return self._shape if d is None else self._shape[d]

    def stride(self, d: int | None = None):
        out, step = [], 1
        for s in reversed(self._shape):
            out.append(step)
            step *= max(s, 1)
        out.reverse()
        return out if d is None else out[d]

    def dim(self) -> int:
        return len(self._shape)

    def storage_offset(self) -> int:
        return 0


def _named(used, keys: dict, group: dict, value: dict) -> Sizes:
    roles: dict[Any, set[str | None]] = {}
    for inp, _ in used:
        for d in range(len(inp.tensor.shape)):
            if (inp.name, d) in keys:
                g = group[keys[inp.name, d]]
                roles.setdefault(g, set()).add(_role(inp, len(inp.tensor.shape), d))
    names: dict[Any, str] = {}
    for g, found in roles.items():
        (role,) = found if len(found) == 1 else (None,)
        taken = set(names.values())
        tries = [role] if role else []
        tries += [f"DIM_{value[g]}" + (f"_{k}" if k > 1 else "") for k in range(1, len(roles) + 2)]
        names[g] = next(t for t in tries if t not in taken)
    dims = {
        inp.name: [
            names[group[keys[inp.name, d]]] if (inp.name, d) in keys else None
            for d in range(len(inp.tensor.shape))
        ]
        for inp, _ in used
    }
    return Sizes({names[g]: value[g] for g in roles}, dims)


def _role(inp: UnitInput, ndim: int, d: int) -> str | None:
    if inp.kind != "arg" or ndim < 2:
        return None
    if d == 0:
        return "BATCH"
    if ndim == 3 and d == 1:
        return "SEQ"
    if ndim == 4 and d in (2, 3):
        return ("HEIGHT", "WIDTH")[d - 2]
    return None
