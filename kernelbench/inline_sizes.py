"""Sizes written inline in ``get_inputs``: ``torch.rand(batch_size, 3, 224, 224)``.

KernelBench writes some sizes as literals inside ``get_inputs`` instead of module constants
(an AlexNet stem's 224x224 image). Each int literal in the size arguments of a torch tensor
maker there becomes a constant of its own, ``get_inputs_1``, ``get_inputs_2``, ... in source
order: ``--set`` can override it, ``--size auto`` can shrink it (the probe says whether the
model still builds), and the coder's view of the file shows the evaluated value.
"""

from __future__ import annotations

import ast
from typing import Any

from .. import pyast

PREFIX = "get_inputs_"
_MAKERS = {"rand", "randn", "zeros", "ones", "empty", "randint", "full"}


def _size_nodes(call: ast.Call) -> list[ast.expr]:
    """The arguments of a tensor maker that hold its size."""
    name = call.func.attr  # type: ignore[attr-defined]
    args = list(call.args)
    if name == "randint":  # randint(high, size) or randint(low, high, size)
        args = args[2:] if len(args) >= 3 else args[1:]
    elif name == "full":  # full(size, fill_value)
        args = args[:1]
    sizes = [kw.value for kw in call.keywords if kw.arg == "size"]
    out: list[ast.expr] = []
    for a in args + sizes:
        out += list(a.elts) if isinstance(a, ast.Tuple | ast.List) else [a]
    return out


def _literals(tree: ast.Module) -> list[ast.Constant]:
    fn = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_inputs"), None
    )
    if fn is None:
        return []
    found = []
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
            and node.func.attr in _MAKERS
        ):
            found += [
                a
                for a in _size_nodes(node)
                if isinstance(a, ast.Constant) and type(a.value) is int and a.lineno == a.end_lineno
            ]
    return sorted(found, key=lambda c: (c.lineno, c.col_offset))


def constants(tree: ast.Module) -> dict[str, int]:
    """``get_inputs_<k>`` -> its literal value, for every inline size."""
    return {f"{PREFIX}{k}": c.value for k, c in enumerate(_literals(tree), 1)}


def rewrite(tree: ast.Module, overrides: dict[str, Any]) -> ast.Module:
    """``tree`` with the inline sizes ``overrides`` names set to their values."""
    for k, c in enumerate(_literals(tree), 1):
        if f"{PREFIX}{k}" in overrides:
            c.value = int(overrides[f"{PREFIX}{k}"])
    return tree


def rewrite_lines(source: str, lines: list[str], overrides: dict[str, Any]) -> None:
    """The same, on the source's lines (what an agent reads), right to left within a line."""
    literals = list(enumerate(_literals(pyast.parse(source)), 1))
    for k, c in sorted(literals, key=lambda kc: (kc[1].lineno, -kc[1].col_offset)):
        name = f"{PREFIX}{k}"
        if name in overrides:
            line = lines[c.lineno - 1]
            lines[c.lineno - 1] = (
                line[: c.col_offset] + str(int(overrides[name])) + line[c.end_col_offset :]
            )
