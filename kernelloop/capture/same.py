"""Whether a live module call still computes the problem a capture wrote for it.

``kernelloop.patch`` hands a module's calls to kernels verified for a problem file. Nothing
about the module object says it is the one the capture traced: the same class can be built with
another ``eps``, slope or Python flag (``self.act = "relu"``), the user may have edited the
forward since, sites with equal shapes share one problem, and the capture folder is plain files
anyone can edit. Each of those would route calls to a kernel for another function.

So the patch traces the live module again, exactly as the capture did (``functional.py``: the
captured argument specs and constants, the module's own state, eval mode), writes its forward
with ``emit.write`` and requires it to equal the problem file's ``Model.forward`` statement for
statement (compared as syntax trees, so layout does not matter). Equal forwards are the same
ATen ops on the same inputs with the same constants; the kernels were verified for that file.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

import torch

from .. import pyast
from . import emit, functional, guards
from .manifest import Subgraph, TensorSpec
from .record import Arg, Call


@dataclasses.dataclass(frozen=True)
class Check:
    why: str | None  # why the module does not compute the problem, or None: it does
    training_matters: bool = True  # its training mode changes its graph (dropout, batch norm)
    shapes: guards.Shapes | None = None  # the call shapes at which the trace holds


def check(module: torch.nn.Module, sub: Subgraph, problem_source: str) -> Check:
    """Whether ``module`` computes ``problem_source`` (the file of ``sub``) in eval mode, and
    whether it computes anything else in training mode."""
    want = _forward(problem_source)
    if want is None:
        return Check("the problem file has no Model.forward to compare the module with")
    # And where each of the problem's inputs comes from: capture.json's mapping, which the
    # patch routes by (two same-shaped weights or arguments swapped there compute another
    # function with the same forward), must be the one the trace gives.
    want += _mapping(sub.inputs)
    call = _call(sub)
    flags = [(m, m.training) for m in module.modules()]
    seen = None
    try:
        for mode in functional.MODES:
            text, program = _traced(module, call, mode, train=False)
            seen = text or seen
            if text == want:
                # Traced in training mode too: a module whose graph does not change (no dropout,
                # no batch norm, no `if self.training`) may be routed in either mode.
                other, _ = _traced(module, call, mode, train=True)
                return Check(None, other != want, guards.Shapes(program))
    finally:
        for m, training in flags:  # the trace set the modes: the user's back
            m.training = training
    if seen is None:
        return Check("the module cannot be traced at the captured shapes any more")
    return Check(
        "the module no longer computes its problem file (another constant, attribute or "
        "forward than the capture traced, or an edited problem file): capture it again"
    )


def _traced(module: torch.nn.Module, call: Call, mode: str, train: bool):
    """(the forward ``emit`` writes for the module's trace in ``mode``, the program), text None
    where the capture would have gone on to the next mode (or a mutating forward: no problem)."""
    try:
        program = functional.export_call(module, call, mode, train=train)
    except Exception:  # the capture goes on to the next mode too
        return None, None
    if functional.mutation_why(program):
        return None, None
    header = emit.Header("unit", [call], "", "")
    try:
        written = emit.write(program, module, call, header)
    except emit.Unspellable:
        return None, None
    forward = _forward(written.source)
    return (None if forward is None else forward + _mapping(written.inputs)), program


def _mapping(inputs) -> str:
    return "\n" + repr([(i.name, i.kind, i.index, i.target) for i in inputs])


def _forward(source: str) -> str | None:
    """``Model.forward``'s arguments and body as a syntax-tree dump, or None."""
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "forward":
                    body = [ast.dump(s) for s in item.body if not _docstring(s)]
                    return ast.dump(item.args) + "\n" + "\n".join(body)
    return None


def _docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _call(sub: Subgraph) -> Call:
    """The captured call as ``record`` saw it, rebuilt from ``capture.json``: tensors where it
    had tensors (one the graph never read, so not listed, as a scalar: only its presence
    counts), its constants everywhere else."""
    by_index = {i.index: i.tensor for i in sub.inputs if i.kind == "arg" and i.index is not None}
    by_keyword = {i.target: i.tensor for i in sub.inputs if i.kind == "arg" and i.index is None}
    constants = {int(k): v for k, v in sub.constants.items()}
    nargs = 1 + max([*by_index, *constants, *sub.unread_args], default=-1)
    args = []
    for i in range(nargs):
        if i in constants:
            args.append(Arg(None, _tuples(constants[i])))
        else:
            args.append(_tensor(by_index.get(i)))
    kwargs = {k: Arg(None, _tuples(v)) for k, v in sub.keyword_constants.items()}
    kwargs.update({k: _tensor(by_keyword.get(k)) for k in sub.keyword_tensors})
    site = sub.sites[0]
    return Call(
        id=0,
        module=site.module,
        module_type=site.module_type,
        call=site.call,
        parent=None,
        args=args,
        kwargs=kwargs,
        state_bytes=0,
        state=(),
        outputs=sub.outputs,
        returns_tuple=sub.returns_tuple,
        none_outputs=sub.none_outputs,
    )


def _tensor(spec: TensorSpec | None) -> Arg:
    spec = spec or TensorSpec((), "float32")
    # An integer argument's range only shapes get_inputs, never the forward compared here.
    floating = spec.dtype.startswith(("float", "bfloat")) or spec.dtype == "bool"
    return Arg(spec, None, None if floating else (0, 0))


def _tuples(value: Any) -> Any:
    """JSON turned the call's tuples into lists; the module saw tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
