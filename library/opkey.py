"""The op key of any problem: a name for *what it computes*, whatever its file is called.

Library entries are filed under an op key. The efficiency modules register theirs by hand
(``attention``, ``conv2d``, ...); any other problem gets one from its normalised op graph, so a
kernel verified for one problem file serves every file (and every captured model subgraph) that
computes the same thing:

- the reference is traced on the ``meta`` device (``kernelbench/trace.py``), no memory used;
- values are renamed by position (``i0`` the first input, ``o3`` the fourth op's result), so
  names chosen by export or by the author do not matter, except parameters' and buffers'
  state-dict names, through which an entry is given the reference's values;
- shapes are left out (they go into the entry's bucket), and a number that changes when the
  problem is traced again at other public sizes becomes the input dimension it equals at every
  size (``view(x, [batch, -1])`` records ``[x.dim0, -1]``): it follows the size, not the
  computation;
- every other constant stays as traced: a softmax over another dim, another eps or stride,
  another float attribute, and a size-following number that is no input dimension (``n // 2``
  and ``n // 4`` must not share a key, and only the traced values tell them apart).

Two problems share a key only when their graphs agree on all of that, which is the bar for
handing one's kernel to the other (it is then still only used for calls in a verified bucket).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .ops import pow2_bucket

if TYPE_CHECKING:
    import torch

    from ..kernelbench.opgraph import OpGraph
    from ..kernelbench.problem import Problem

PREFIX = "graph."
HASH_CHARS = 10
_MAX_BUCKET_CHARS = 80
# Ops that only rearrange: left out of the readable part of the key (never out of the hash).
_LAYOUT = {
    "view", "reshape", "_unsafe_view", "permute", "transpose", "t", "contiguous", "expand",
    "unsqueeze", "squeeze", "flatten", "getitem", "clone", "alias", "_to_copy", "to",
}  # fmt: skip


def is_graph_key(op: str) -> bool:
    return op.startswith(PREFIX)


def for_problem(problem: Problem, size: str | None = None) -> str:
    """The op key of ``problem`` (traced at ``size``, default its declared GPU size: on the meta
    device that costs nothing, and it is the size the problem is about)."""
    from ..kernelbench import autosize
    from ..kernelbench.opgraph import TraceError
    from ..kernelbench.trace import trace_at

    main = problem.overrides_for(size)
    graph, _ = trace_at(problem, main, bind_attributes=False)
    others = []
    for probe in autosize.coder_probes(problem, main):
        try:
            other, _ = trace_at(problem, {**main, **probe}, bind_attributes=False)
        except TraceError:
            continue  # a probe the model cannot take tells nothing about its numbers
        if [o.op for o in other.ops] == [o.op for o in graph.ops]:
            others.append(other)
    return for_graph(graph, others)


def for_graph(graph: OpGraph, others: Sequence[OpGraph] = ()) -> str:
    """The key of ``graph``; ``others`` are traces of the same problem at other sizes."""
    names = _positions(graph)
    traces = [graph, *others]
    forms = [[_op_form(op, _positions(g)) for op in g.ops] for g in traces]
    dims = [_dim_tokens(g) for g in traces]
    mine = [_merge([f[k] for f in forms], dims) for k in range(len(graph.ops))]
    form = {
        # A parameter's state-dict name stays: an entry receives the reference's values by
        # name, so a kernel for ``self.linear`` cannot serve a ``self.proj``.
        "inputs": [
            [
                i.kind,
                i.value.rank if i.value else None,
                _dtype(i),
                i.target if i.kind != "arg" else None,
            ]
            for i in graph.inputs
        ],
        "ops": mine,
        "outputs": [names.get(r.name, r.name) for r in graph.outputs],
    }
    digest = hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()
    return f"{PREFIX}{_readable(graph)}.{digest[:HASH_CHARS]}"


def bucket(tensors: Sequence[Any]) -> str:
    """The shape bucket of a call: each tensor's dims rounded up to a power of two.

    Non-tensor arguments are not part of it (their values are in the op key or are the
    problem's init arguments)."""
    import torch

    parts = [
        "x".join(str(pow2_bucket(int(d), lo=1)) for d in t.shape) or "scalar"
        for t in tensors
        if isinstance(t, torch.Tensor)
    ]
    text = "_".join(parts) or "none"
    if len(text) > _MAX_BUCKET_CHARS:  # entry ids are folder names: keep them short
        text = "b" + hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]
    return text


def tensors_dtype(tensors: Sequence[torch.Tensor]) -> str:
    """The dtype an entry is filed under: the first floating tensor's, else the first's."""
    import torch

    found = [t for t in tensors if isinstance(t, torch.Tensor)]
    floating = [t for t in found if t.is_floating_point()]
    chosen = (floating or found)[0] if found else None
    return str(chosen.dtype).removeprefix("torch.") if chosen is not None else "none"


def _positions(graph: OpGraph) -> dict[str, str]:
    names = {inp.name: f"i{k}" for k, inp in enumerate(graph.inputs)}
    names.update({op.name: f"o{k}" for k, op in enumerate(graph.ops)})
    return names


def _form(value: Any, names: dict[str, str]) -> Any:
    from ..kernelbench.opgraph import Ref

    if isinstance(value, Ref):
        return ["ref", names.get(value.name, value.name)]
    if isinstance(value, tuple | list):
        return [_form(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _form(v, names) for k, v in sorted(value.items())}
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


def _op_form(op, names: dict[str, str]) -> list[Any]:
    return [op.op, op.overload, _form(list(op.args), names), _form(op.kwargs, names)]


def _dim_tokens(graph: OpGraph) -> dict[int, set[str]]:
    """Each size in ``graph``'s inputs -> the names of the input dimensions (and products of
    adjacent ones, what a flattening view records) that have it: ``"i0.d1"``, ``"i0.d1-2"``."""
    found: dict[int, set[str]] = {}
    for k, inp in enumerate(graph.inputs):
        shape = inp.value.shape if inp.value is not None else ()
        for j in range(len(shape)):
            product = 1
            for last in range(j, len(shape)):
                product *= shape[last]
                name = f"i{k}.d{j}" if last == j else f"i{k}.d{j}-{last}"
                found.setdefault(product, set()).add(name)
    return found


def _merge(values: list[Any], dims: list[dict[int, set[str]]]) -> Any:
    """One leaf or subtree of the main trace's form, given the same place in every trace."""
    first = values[0]
    if all(isinstance(v, list) and len(v) == len(first) for v in values) and isinstance(
        first, list
    ):
        return [_merge([v[i] for v in values], dims) for i in range(len(first))]
    if all(isinstance(v, dict) and v.keys() == first.keys() for v in values) and isinstance(
        first, dict
    ):
        return {k: _merge([v[k] for v in values], dims) for k in first}
    if all(v == first for v in values) or not all(type(v) is int for v in values):
        return first  # the same at every size, or not a size: the value itself
    # A size that follows the inputs: the dimension it equals at every traced size, if one does.
    common = set.intersection(*(d.get(v, set()) for v, d in zip(values, dims, strict=True)))
    return ["dim", min(common)] if common else first


def _dtype(inp) -> str | None:
    return inp.value.dtype if inp.value is not None else None


def _readable(graph: OpGraph) -> str:
    seen: list[str] = []
    for op in graph.ops:
        if op.op not in _LAYOUT and op.op not in seen:
            seen.append(op.op)
    text = "_".join(seen[:4]) or "layout"
    return re.sub(r"[^A-Za-z0-9_]+", "", text)[:40] or "op"
