"""What a candidate's source defines, read with ``ast`` only: names, aliases, kernels, flows.

:class:`SourceModel` resolves every name to its qualified import (``F.relu`` ->
``torch.nn.functional.relu``), finds the backend markers and kernels, and follows values through
assignments, containers and calls, so a kernel or an ``nn`` module renamed on its way to a call is
still recognised. The static gate (``static_gate.py``) judges what this model reports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .gate_rules import (
    LOAD_INLINE,
    LOAD_KERNEL,
    NN_HOLDERS,
    PASS_THROUGH,
    REGISTER_METHODS,
    TRITON_JIT,
)

# Rounds of label propagation: an honest file needs a handful; thousands of chained renames
# (a = b; b = c; ...) would cost quadratic time in the orchestrator.
MAX_ROUNDS = 32


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def last(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)


def under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def base_op(name: str) -> str:  # in-place ``add_`` -> ``add``
    return name[:-1] if name.endswith("_") and not name.startswith("_") else name


def literal(args: list[ast.expr]) -> str | None:
    """The string of a one-element argument slice holding a string literal, else None."""
    if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        return args[0].value
    return None


def target_names(t: ast.AST) -> list[str]:
    if isinstance(t, (ast.Tuple, ast.List)):
        return [n for e in t.elts for n in target_names(e)]
    if isinstance(t, (ast.Subscript, ast.Starred)):
        return target_names(t.value)
    return [d] if (d := dotted(t)) else []


def flows(node: ast.AST) -> list[tuple[ast.AST, ast.AST]]:
    """(target, value) pairs through which a kernel or a module can reach another name."""
    if isinstance(node, ast.Assign):
        return [(t, node.value) for t in node.targets]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
        return [(node.target, node.value)]
    if isinstance(node, (ast.For, ast.comprehension)):
        return [(node.target, node.iter)]
    f = getattr(node, "func", None)
    if isinstance(f, ast.Attribute) and f.attr in REGISTER_METHODS:  # layers.append(nn.X())
        return [(f.value, a) for a in node.args]
    return []


class SourceModel:
    """Name resolution and value tracking over one parsed candidate."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.nodes = list(ast.walk(tree))
        self.aliases: dict[str, str] = {}  # local name -> qualified name
        for node in self.nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    local = a.asname or a.name.split(".")[0]
                    self.aliases[local] = a.name if a.asname else local
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        # Imports never rebound: a parameter called `math` is not the module.
        names = [n for n in self.nodes if isinstance(n, ast.Name)]
        bound = {n.id for n in names if not isinstance(n.ctx, ast.Load)}
        bound |= {a.arg for a in self.nodes if isinstance(a, ast.arg)}
        self.modules = set(self.aliases) - bound
        for node in self.nodes:  # `mm = torch.matmul`: a local name for an imported thing
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if (q := self.qual(node.value)) is not None:
                    self.aliases[node.targets[0].id] = q
        funcs = {n.name: n for n in self.nodes if isinstance(n, ast.FunctionDef)}
        self.defined = set(funcs)
        jitted = [fn for fn in funcs.values() if any(map(self._is_jit, fn.decorator_list))]
        self.jit = {fn.name: fn for fn in jitted}
        for node in self.nodes:  # `kernel = triton.jit(body)`
            v = getattr(node, "value", None)
            if isinstance(node, ast.Assign) and isinstance(v, ast.Call) and self._is_jit(v):
                if v.args and last(v.args[0]) in funcs:
                    for name in target_names(node.targets[0]):
                        self.jit[name] = funcs[last(v.args[0])]
        self.jit_key = {id(fn): name for name, fn in self.jit.items()}
        calls = [n for n in self.nodes if isinstance(n, ast.Call)]
        self.loads = {label: c.lineno for c in calls if (label := self._load_label(c))}
        texts = [n.value for n in self.nodes if isinstance(n, ast.Constant)]
        has_global = any("__global__" in t for t in texts if isinstance(t, str))
        self.markers = {
            "cuda-inline": any(k.startswith(LOAD_INLINE) for k in self.loads),
            "cuda": has_global and any(k.startswith(LOAD_KERNEL) for k in self.loads),
            "triton": bool(self.jit),
        }
        self.held: dict[str, set[str]] = {}  # dotted name -> labels of what it may hold
        self.factories: dict[str, set[str]] = {}  # function name -> labels of what it returns
        self._track()

    def qual(self, node: ast.AST) -> str | None:
        """Qualified name of ``node`` if it is rooted at an imported (or aliased) name."""
        head, dot, rest = (dotted(node) or "").partition(".")
        base = self.aliases.get(head)
        return None if base is None else base + dot + rest

    def backend(self) -> str | None:
        return next((b for b in ("cuda-inline", "cuda", "triton") if self.markers[b]), None)

    def _is_jit(self, deco: ast.AST) -> bool:
        return self.qual(deco.func if isinstance(deco, ast.Call) else deco) == TRITON_JIT

    def _load_label(self, call: ast.Call) -> str | None:
        q = self.qual(call.func)
        return f"{q}@{call.lineno}:{call.col_offset}" if q in (LOAD_KERNEL, LOAD_INLINE) else None

    def _seed(self, e: ast.AST) -> set[str]:
        if isinstance(e, ast.Name) and e.id in self.jit:
            return {e.id}
        if isinstance(e, ast.Call):
            if label := self._load_label(e):
                return {label}
            q = self.qual(e.func) or ""
            cls = q.rsplit(".", 1)[-1]
            if q.startswith("torch.nn.") and cls[:1].isupper() and cls not in NN_HOLDERS:
                return {"nn." + cls}
        return set()

    def labels(self, e: ast.AST | None) -> set[str]:
        """What ``e`` may hold: jit kernel names, ``load_*@line`` handles, ``nn.Class`` modules."""
        if e is None:
            return set()
        out = self._seed(e)
        if (d := dotted(e)) is not None:
            return out | self.held.get(d, set())
        parts: list[ast.AST] = []
        if isinstance(e, (ast.Subscript, ast.Starred, ast.NamedExpr)):
            parts = [e.value]
        elif isinstance(e, ast.Call):
            out |= self.factories.get(last(e.func) or "", set())
            if last(e.func) == "getattr" and (name := literal(e.args[1:2])):
                out |= self.held.get(f"{dotted(e.args[0])}.{name}", set())
            if (self.qual(e.func) or "").startswith("torch.nn.") or last(e.func) in PASS_THROUGH:
                parts = [*e.args, *(k.value for k in e.keywords)]
        elif isinstance(e, ast.IfExp):
            parts = [e.body, e.orelse]
        elif isinstance(e, (ast.BoolOp, ast.Dict)):
            parts = e.values
        elif isinstance(e, (ast.Tuple, ast.List, ast.Set)):
            parts = e.elts
        elif isinstance(e, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            parts = [e.value if isinstance(e, ast.DictComp) else e.elt]
        for p in parts:
            out |= self.labels(p)
        return out

    def _track(self) -> None:
        """Propagate labels through assignments, loops, registrations and returns to a fixpoint."""
        size, rounds = -1, 0
        while size != (size := sum(map(len, [*self.held.values(), *self.factories.values()]))):
            rounds += 1
            if rounds > MAX_ROUNDS:  # each round follows one more link of a chain
                raise RecursionError("value flow too long to follow")
            for node in self.nodes:
                for target, value in flows(node):
                    if labels := self.labels(value):
                        for name in target_names(target):
                            self.held.setdefault(name, set()).update(labels)
                if isinstance(node, ast.FunctionDef):
                    for r in ast.walk(node):
                        if isinstance(r, ast.Return) and (labels := self.labels(r.value)):
                            self.factories.setdefault(node.name, set()).update(labels)
