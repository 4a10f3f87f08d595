"""What a candidate's names are bound to, read with ``ast``: the static gate's view of scope.

Three questions the gate asks of a name, answered for the whole file at once:

- is it bound by the source at all? A name nobody imports, assigns or defines can only come from
  somewhere else: a builtin, or something that was slipped into the module's globals at run time
  (the Triton interpreter copies its own globals, ``np`` and ``inspect`` among them, into the
  module of a kernel it runs). Only the safe builtins are allowed to be such names.
- does it hold an object the candidate created (``self``, ``ctx``, an instance of its own class)?
  Only those may have attributes set (threat row 24).
- does it hold a plain Python container, so that ``.add()`` or ``.sort()`` on it is not a tensor
  op?
"""

from __future__ import annotations

import ast
import builtins

from . import gate_reach
from .gate_rules import HOST_NAMESPACES
from .gate_source import dotted, is_dunder, root, under

# Builtins a candidate may name. The rest reach objects by name, run code, touch files or the
# terminal (their own rules report them) or are interpreter plumbing (__build_class__, ...).
UNSAFE_BUILTINS = frozenset(
    """__import__ open exec eval compile globals locals vars breakpoint help input exit quit
    copyright credits license memoryview""".split()
)
SAFE_BUILTINS = frozenset(
    n for n in dir(builtins) if not n.startswith("_") and n not in UNSAFE_BUILTINS
) | {"__name__"}
CONTAINER_CALLS = frozenset("list set dict tuple sorted frozenset str range".split())
CONTAINER_NODES = (
    ast.List,
    ast.Set,
    ast.Dict,
    ast.Tuple,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.Constant,
    ast.JoinedStr,
)


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the source binds anywhere: targets, parameters, definitions, imports,
    ``except ... as``, ``global``/``nonlocal``, match captures."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names |= set(node.names)
    return names


def _assignments(tree: ast.AST) -> dict[str, list[ast.AST | None]]:
    """name -> every value assigned to it (None where it is bound some other way)."""
    out: dict[str, list[ast.AST | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                value = node.value if isinstance(t, ast.Name) else None
                for n in ast.walk(t):
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                        out.setdefault(n.id, []).append(value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            if isinstance(node.target, ast.Name):
                out.setdefault(node.target.id, []).append(getattr(node, "value", None))
        elif isinstance(node, (ast.For, ast.comprehension, ast.withitem)):
            target = getattr(node, "target", None) or getattr(node, "optional_vars", None)
            for n in ast.walk(target) if target is not None else ():
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    out.setdefault(n.id, []).append(None)
        elif isinstance(node, ast.arg):
            out.setdefault(node.arg, []).append(None)
    return out


def own_roots(tree: ast.AST) -> set[str]:
    """Names whose attributes the candidate may set: its classes, the first parameter of their
    methods (``self``, ``cls``, an autograd Function's ``ctx``), and names only ever bound to a
    new instance of one of its classes (``cfg = LaunchCfg()``)."""
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    own = {c.name for c in classes}
    firsts = {
        f.args.args[0].arg
        for c in classes
        for f in ast.walk(c)
        if isinstance(f, ast.FunctionDef) and f.args.args
    }
    names = own | firsts
    for name, values in _assignments(tree).items():
        calls = [v for v in values if isinstance(v, ast.Call)]
        if values and len(calls) == len(values):
            if all(isinstance(c.func, ast.Name) and c.func.id in own for c in calls):
                names.add(name)
    return names


def containers(tree: ast.AST) -> set[str]:
    """Names only ever bound to a plain Python container, string or number."""
    out = set()
    for name, values in _assignments(tree).items():
        if values and all(is_container(v) for v in values):
            out.add(name)
    return out


def is_container(value: ast.AST | None) -> bool:
    if isinstance(value, CONTAINER_NODES):
        return True
    f = getattr(value, "func", None)
    return isinstance(f, ast.Name) and f.id in CONTAINER_CALLS


def annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation (parameters, returns, annotated assignments)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for r in roots for n in ast.walk(r)}


def private(name: str) -> bool:
    return name.startswith("_") and not is_dunder(name)


def private_ok(q: str | None) -> bool:
    """Private names along an allowed path: Inductor's helper library (torch._inductor...)."""
    return q is not None and under(q, HOST_NAMESPACES) or q in gate_reach.MEMBERS


def attr_root(node: ast.AST) -> str | None:
    """The name an attribute target hangs from, through attributes and subscripts only: for
    ``self.cache[k].x`` it is ``self``; for ``type(x).y`` or ``[m][0].y`` there is none."""
    return root(node.value) if isinstance(node, ast.Attribute) else root(node)


def import_fallback(node: ast.Try) -> bool:
    """``try: from a import f`` / ``except ImportError: from b import f`` (or ``f = tl.math``):
    how real projects find libdevice across Triton builds. Only imports and plain renames run,
    so nothing can fall back to torch compute."""
    caught = [h.type for h in node.handlers]
    names = [n for t in caught for n in (t.elts if isinstance(t, ast.Tuple) else [t])]
    return (
        bool(names)
        and None not in caught
        and all(isinstance(n, ast.Name) and n.id in IMPORT_ERRORS for n in names)
        and all(map(binds_only, node.body))
        and all(binds_only(st) for h in node.handlers for st in h.body)
        and not node.orelse
        and not node.finalbody
    )


IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def binds_only(st: ast.stmt) -> bool:
    if isinstance(st, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    return (
        isinstance(st, ast.Assign)
        and all(isinstance(t, ast.Name) for t in st.targets)
        and (dotted(st.value) is not None or isinstance(st.value, ast.Constant))
    )
