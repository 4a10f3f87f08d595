"""One module call as a pure function of its tensors, traced by ``torch.export``.

A problem file has no weights of its own: its forward takes the call's tensor arguments
(positional, then keyword) and then the module's parameters and buffers, so a kernel verified on
it can run on the user's real weights. The trace comes from ``torch.export.export`` (non-strict)
of a wrapper whose forward takes ``(args..., kwargs..., state...)`` and calls the original module
through ``torch.func.functional_call``; non-tensor arguments, positional or keyword, are baked in
as constants.

Three tries, from most to least general (:data:`MODES`): every dimension of every input as
``Dim.AUTO`` (view and reshape sizes then come out as expressions over input sizes, so a smaller
size still runs the same code), the activations only, and a static trace. A forward that no
try can trace (Python control flow on tensor values, say) raises :class:`CaptureError` naming the
construct, as export reported it, and the module.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re

import torch
from torch.export import Dim

from .errors import CaptureError
from .record import Call

MODES = ("all", "args", "static")  # which inputs get Dim.AUTO dimensions, in the order tried
CONSTANTS = (int, float, bool, str, type(None))


def why_not_standalone(call: Call, device: str) -> str | None:
    """Why this call cannot be one problem before anything is traced, or None."""
    named = [(f"argument {i}", a) for i, a in enumerate(call.args)]
    named += [(f"keyword argument {k}", a) for k, a in call.kwargs.items()]
    for what, a in named:
        if a.tensor is None and not _constant(a.value):
            return (
                f"{what} is a {type(a.value).__name__}: a problem takes tensors and "
                "plain constants (numbers, booleans, strings, None, tuples of them)"
            )
        if a.tensor and a.tensor.dtype != "bool" and _integer(a.tensor.dtype):
            if a.int_range is None:
                return (
                    f"{what} is an integer tensor whose range is unknown on the {device} "
                    "device (the problem must draw valid indices): capture with --device cpu"
                )
    if call.outputs is None:
        return "its forward returns something other than a tensor or a tuple of tensors"
    if not any(a.tensor for _, a in named) and not call.state:
        return "it takes no tensor: nothing to write a kernel over"
    return None


def _constant(v) -> bool:
    if isinstance(v, tuple | list):
        return all(_constant(x) for x in v)
    return isinstance(v, CONSTANTS)


def _integer(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


class _Wrapper(torch.nn.Module):
    """forward(*tensors): the call's positional tensor arguments, its keyword tensor arguments
    (in the order passed), then the module's state, in order; other values as traced."""

    def __init__(self, module: torch.nn.Module, call: Call, targets: list[str]) -> None:
        super().__init__()
        self.module = module
        self.layout = [("tensor", None) if a.tensor else ("value", a.value) for a in call.args]
        self.keywords = [(k, a.tensor is not None, a.value) for k, a in call.kwargs.items()]
        self.targets = targets

    def forward(self, *tensors):
        it = iter(tensors)
        args = tuple(next(it) if kind == "tensor" else value for kind, value in self.layout)
        kwargs = {k: next(it) if tensor else value for k, tensor, value in self.keywords}
        state = dict(zip(self.targets, it, strict=True))
        return torch.func.functional_call(self.module, state, args, kwargs)


def state_targets(module: torch.nn.Module) -> list[str]:
    return [n for n, _ in module.named_parameters()] + [n for n, _ in module.named_buffers()]


def example_inputs(module: torch.nn.Module, call: Call) -> list[torch.Tensor]:
    """Tensors of the call's shapes on the module's device (export only reads their shapes:
    it traces with fake tensors), then the module's own parameters and buffers."""
    named = dict(module.named_parameters())
    named.update(module.named_buffers())
    device = next((t.device for t in named.values()), torch.device("cpu"))
    args = [
        torch.zeros(a.tensor.shape, dtype=getattr(torch, a.tensor.dtype), device=device)
        for a in [*call.args, *call.kwargs.values()]
        if a.tensor
    ]
    return args + [named[t].detach() for t in state_targets(module)]


def export_call(module: torch.nn.Module, call: Call, mode: str, train: bool = False):
    """The ``ExportedProgram`` of the call in ``mode`` (one of :data:`MODES`); in eval mode
    unless ``train`` (the patch asks whether a module's training mode changes its graph)."""
    inputs = example_inputs(module, call)
    n_args = sum(1 for a in [*call.args, *call.kwargs.values()] if a.tensor)

    def dims(i: int, t: torch.Tensor):
        dynamic = mode == "all" or (mode == "args" and i < n_args)
        return {d: Dim.AUTO for d in range(t.dim())} if dynamic and t.dim() else None

    shapes = (tuple(dims(i, t) for i, t in enumerate(inputs)),)  # forward(*tensors): one group
    wrapper = _Wrapper(module, call, state_targets(module)).train(train)  # as it ran: eval
    with _quiet():
        return torch.export.export(
            wrapper,
            tuple(inputs),
            dynamic_shapes=None if mode == "static" else shapes,
            strict=False,
        )


def untraceable(call: Call, exc: BaseException, modules: dict) -> CaptureError:
    """The error for a call no mode could trace: export's first line, the user's line of code
    export points at when it gives one, and the module whose forward holds that line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    where, name, kind = "", call.module or "the model", call.module_type
    m = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s*(.+)', text)
    if m:
        where = f" at {m.group(1)}:{m.group(2)} ({m.group(4).strip()})"
        inner = _module_at(modules, call.module, m.group(1), int(m.group(2)))
        if inner is not None:
            name = inner or "the model"
            kind = f"{type(modules[inner]).__module__}.{type(modules[inner]).__qualname__}"
    return CaptureError(
        f"torch.export cannot trace {name} ({kind}){where}: "
        f"{type(exc).__name__}: {first}. Python control flow on tensor values cannot be "
        "captured: rewrite it with torch.where or torch.cond, or move it out of forward"
    )


def _module_at(modules: dict, prefix: str, file: str, line: int) -> str | None:
    """The deepest module under ``prefix`` whose forward's code holds ``file:line``."""
    found = None
    for name, module in modules.items():
        if prefix and name != prefix and not name.startswith(prefix + "."):
            continue
        code = getattr(type(module).forward, "__code__", None)
        if code is None or code.co_filename != file:
            continue
        lines = [n for _, _, n in code.co_lines() if n is not None]
        if lines and min(lines) <= line <= max(lines):
            if found is None or name.count(".") > found.count("."):
                found = name
    return found


def mutation_why(program) -> str | None:
    """A forward that updates its arguments or buffers in place is not a pure function."""
    sig = program.graph_signature
    changed = [*sig.buffers_to_mutate.values(), *sig.user_inputs_to_mutate.values()]
    if changed:
        return (
            f"its forward updates state in place ({', '.join(sorted(changed))}): a problem "
            "is a pure function of its inputs"
        )
    return None


@contextlib.contextmanager
def _quiet():
    """Export prints graphs and warnings on failure; the capture reports its own error."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        logger.setLevel(level)
