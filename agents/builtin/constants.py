"""Graph rewrites before the templates match: 0-d constants (``torch.full([], v)``,
``torch.scalar_tensor(v)``) folded into the ops that read them, and allocations no op reads
(the ``input`` of a ``beta=0`` product) dropped.

Hugging Face attention writes its scale and its mask value as 0-d tensors
(``attn / torch.full([], head_dim ** 0.5)``, ``torch.where(mask, attn, torch.full([],
finfo.min))``) so that the dtype and device follow the scores. As graph values they would need
a kernel of their own and would stop the elementwise chain that reads them; as literals they are
what the expression means. A folded value is a float in the op's arguments, so ``sizes.py``
still writes one that follows the size (``head_dim ** 0.5``) over run-time quantities.
"""

from __future__ import annotations

import dataclasses

from ...kernelbench.opgraph import Op, OpGraph, Ref

_FLOATS = {"float32", "float16", "bfloat16", "float64"}


def _constant(op: Op) -> float | None:
    """The value of a 0-d floating constant op, or None."""
    if op.op == "full" and len(op.args) >= 2 and tuple(op.args[0]) == ():
        value = op.args[1]
    elif op.op == "scalar_tensor" and op.args:
        value = op.args[0]
    else:
        return None
    out = op.out
    if isinstance(value, bool) or not isinstance(value, int | float) or out is None:
        return None
    return float(value) if getattr(out, "dtype", None) in _FLOATS else None


def fold_scalar_constants(graph: OpGraph) -> OpGraph:
    """``graph`` with every 0-d floating constant that is no graph output replaced by its
    value in the arguments of the ops that read it, and the constant op dropped."""
    values = {
        op.name: v
        for op in graph.ops
        if (v := _constant(op)) is not None and not graph.is_output(Ref(op.name))
    }
    if not values:
        return graph

    def swap(a):
        if isinstance(a, Ref) and a.name in values:
            return values[a.name]
        if isinstance(a, tuple | list) and any(isinstance(x, Ref) for x in a):
            return type(a)(swap(x) for x in a)
        return a

    ops = []
    for op in graph.ops:
        if op.name in values:
            continue
        args = tuple(swap(a) for a in op.args)
        kwargs = {k: swap(v) for k, v in op.kwargs.items()}
        ops.append(dataclasses.replace(op, args=args, kwargs=kwargs))
    graph.ops = ops
    return graph


# Products that never read their ``input`` when ``beta`` is 0 (ATen skips it, NaNs included).
_BETA_PRODUCTS = {"baddbmm", "addmm", "addbmm", "addmv"}


def drop_unread_allocations(graph: OpGraph) -> OpGraph:
    """``graph`` without ``torch.empty`` buffers whose every use is the ``input`` of a product
    with ``beta=0`` (GPT-2's ``baddbmm(torch.empty(...), q, k, beta=0, alpha=scale)``): the
    allocation holds nothing the result depends on, so the product's ``input`` becomes 0."""
    unread = set()
    for op in graph.ops:
        if op.op not in ("empty", "empty_like") or graph.is_output(Ref(op.name)):
            continue
        users = graph.users(Ref(op.name))
        if users and all(
            u.op in _BETA_PRODUCTS
            and u.kwargs.get("beta", 1) == 0
            and u.args
            and u.args[0] == Ref(op.name)
            and Ref(op.name) not in u.args[1:]
            for u in users
        ):
            unread.add(op.name)
    if not unread:
        return graph
    ops = []
    for op in graph.ops:
        if op.name in unread:
            continue
        if op.args and isinstance(op.args[0], Ref) and op.args[0].name in unread:
            op = dataclasses.replace(op, args=(0.0, *op.args[1:]))
        ops.append(op)
    graph.ops = ops
    return graph


def bool_not_as_logical(graph: OpGraph) -> OpGraph:
    """``~mask`` on a bool tensor (``masked_fill(~causal_mask, min)``) is ``logical_not``, which
    the elementwise ops have; on integers it flips bits, and stays as it is (unmatched)."""
    ops = []
    for op in graph.ops:
        src = op.args[0] if op.args else None
        value = graph.value_of(src) if isinstance(src, Ref) else None
        if op.op == "bitwise_not" and value is not None and value.dtype == "bool":
            op = dataclasses.replace(op, op="logical_not", overload="default")
        ops.append(op)
    graph.ops = ops
    return graph


def fold_negated_masks(graph: OpGraph) -> OpGraph:
    """``masked_fill(x, ~mask, v)`` as ``where(mask, x, v)`` where the negation has no other
    user: GPT-2's causal mask, kept as a bool buffer and negated per call, then needs no kernel
    of its own (a bool result is nothing the elementwise template stores)."""
    nots = {
        op.name: op.args[0]
        for op in graph.ops
        if op.op == "logical_not"
        and not graph.is_output(Ref(op.name))
        and (users := graph.users(Ref(op.name)))
        and all(
            u.op == "masked_fill" and len(u.args) == 3 and u.args[1] == Ref(op.name)
            and Ref(op.name) not in (u.args[0], u.args[2])
            for u in users
        )
    }  # fmt: skip
    if not nots:
        return graph
    ops = []
    for op in graph.ops:
        if op.name in nots:
            continue
        if op.op == "masked_fill" and isinstance(op.args[1], Ref) and op.args[1].name in nots:
            x, mask, fill = op.args
            op = dataclasses.replace(
                op, op="where", overload="self", args=(nots[mask.name], x, fill)
            )
        ops.append(op)
    graph.ops = ops
    return graph


def simplify(graph: OpGraph) -> OpGraph:
    """Every rewrite, constants first so that the later ones see the literals."""
    graph = drop_unread_allocations(fold_scalar_constants(graph))
    return fold_negated_masks(bool_not_as_logical(graph))
