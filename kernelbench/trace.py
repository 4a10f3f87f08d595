"""A problem's computation as an op graph: ``torch.export`` of the reference, as plain data.

``torch.export`` on the ``meta`` device records the reference's ATen ops (``linear``,
``softmax``, ``layer_norm`` stay whole: no decomposition) without allocating a byte, so tracing a
GPU-size problem on a laptop is instant. The builtin coder's templates match against the graph
(``agents/builtin/trace.py`` adds what changes at other sizes), and the library derives the op
key of any problem from it (``library/opkey.py``).

Tracing executes the problem file: trusted code, like the reference worker. It never touches a
candidate.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .opgraph import Input, Op, OpGraph, Ref, TraceError, Value
from .problem import Problem

__all__ = ["trace_at"]

# Ops that only check metadata or do nothing to values; dropped from the graph.
_NOISE = {"_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _value(meta: Any) -> Value | tuple[Value, ...] | None:
    if isinstance(meta, torch.Tensor):
        return Value(tuple(int(s) for s in meta.shape), _dtype_name(meta.dtype))
    if isinstance(meta, tuple | list) and meta and all(isinstance(m, torch.Tensor) for m in meta):
        return tuple(_value(m) for m in meta)  # type: ignore[misc]
    return None


def _arg(a: Any, scalars: dict[str, Any] | None = None) -> Any:
    if isinstance(a, torch.fx.Node):
        return scalars[a.name] if scalars and a.name in scalars else Ref(a.name)
    if isinstance(a, tuple | list):
        return tuple(_arg(x, scalars) for x in a)
    if isinstance(a, torch.dtype):
        return _dtype_name(a)
    if isinstance(a, torch.device | torch.memory_format | torch.layout):
        return str(a)
    return a


# ATen's alias ops (``torch.multiply`` records ``aten.multiply``): one name per computation,
# so every template knows them by the name it matches.
_ALIASES = {
    "multiply": "mul",
    "subtract": "sub",
    "divide": "div",
    "true_divide": "div",
    "clip": "clamp",
    "absolute": "abs",
    "negative": "neg",
    "arctan": "atan",
    "greater": "gt",
    "less": "lt",
    "greater_equal": "ge",
    "less_equal": "le",
    "not_equal": "ne",
    "special_expit": "sigmoid",
    "fix": "trunc",
}


def _short(target: Any) -> tuple[str, str]:
    if getattr(target, "__name__", "") == "getitem":
        return "getitem", "default"
    name = str(target)  # "aten.relu.default"
    parts = name.split(".")
    if len(parts) >= 3 and parts[0] == "aten":
        return _ALIASES.get(parts[1], parts[1]), parts[2]
    return name, "default"


def trace_at(
    problem: Problem, overrides: dict[str, Any] | None, *, bind_attributes: bool = True
) -> tuple[OpGraph, Any]:
    """The op graph of ``problem``'s forward at the size ``overrides`` selects, and the
    reference model it was traced from (built on the ``meta`` device)."""
    import inspect

    from .instance import init_inputs, torch_dtype

    module = problem.instantiate(overrides)
    dtype = torch_dtype(problem.dtype)
    try:
        with torch.device("meta"):
            torch.manual_seed(0)
            # The mode the reference runs in: training unless the problem declares EVAL_MODE
            # (KernelBench's batch norm uses batch statistics, not running ones).
            model = module.Model(*init_inputs(module)).to(dtype=dtype)
            model.train(not getattr(module, "EVAL_MODE", False))
            raw = list(module.get_inputs())
    except Exception as exc:
        raise TraceError(f"could not build the reference on the meta device: {exc}") from exc
    inputs = [
        x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in raw
    ]
    names = [p for p in inspect.signature(module.Model.forward).parameters if p != "self"]
    forward_args = names[: len(inputs)]
    graph = _graph(_export(model, inputs), forward_args)
    if not bind_attributes:  # a hold-out trace is only compared with the main one's numbers
        return graph, model
    return _bind_attributes(graph, model, inputs, forward_args), model


class _ScalarsOnCpu(torch.overrides.TorchFunctionMode):
    """``torch.tensor(0.5, device=x.device)`` in a forward makes a meta tensor when tracing on
    meta, and its value is lost; made on the CPU instead it stays a 0-d operand (allowed next to
    meta tensors) and export keeps its value among the constants, so it can become a literal."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.tensor and args and isinstance(args[0], int | float | bool):
            device = kwargs.get("device")
            if device is not None and torch.device(device).type == "meta":
                kwargs = {k: v for k, v in kwargs.items() if k != "device"}
        return func(*args, **kwargs)


def _export(model, inputs: list):
    try:
        with _ScalarsOnCpu():
            return torch.export.export(model, tuple(inputs), strict=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(f"torch.export could not trace the reference: {first[:300]}") from exc


# Ops whose scalar operands may stand for a model attribute (``x * self.scale``).
_ARITHMETIC = {
    "add", "sub", "mul", "div", "rsub", "maximum", "minimum", "min", "max", "clamp", "pow"
}  # fmt: skip


def _bind_attributes(graph: OpGraph, model, inputs: list, forward_args: list[str]) -> OpGraph:
    """Turn float literals that are really the model's float attributes into inputs.

    torch.export bakes ``self.scale`` into the graph as the traced value, but a hold-out
    instance may be built with another scale. Each float attribute is perturbed and the model
    re-traced: an arithmetic operand that changes to exactly the perturbed value *is* that
    attribute, and becomes an ``attr`` input the generated forward reads from ``self``.
    """
    floats = {
        k: v for k, v in vars(model).items() if isinstance(v, float) and not k.startswith("_")
    }
    for attr, value in floats.items():
        probe = value * 1.37 + 0.11
        setattr(model, attr, probe)
        try:
            other = _graph(_export(model, inputs), forward_args)
        except TraceError:
            continue  # the attribute steers control flow: leave it baked
        finally:
            setattr(model, attr, value)
        if [o.op for o in other.ops] != [o.op for o in graph.ops]:
            continue
        ref = Ref(f"attr_{attr}")
        rewritten = []
        for mine, theirs in zip(graph.ops, other.ops, strict=True):
            if mine.op in _ARITHMETIC and len(mine.args) == len(theirs.args):
                args = tuple(
                    ref if isinstance(a, float) and a == value and b == probe else a
                    for a, b in zip(mine.args, theirs.args, strict=True)
                )
                mine = dataclasses.replace(mine, args=args)
            rewritten.append(mine)
        if rewritten != graph.ops:
            graph.ops = rewritten
            graph.inputs.append(Input(ref.name, "attr", Value((), "float32"), None, attr))
    return graph


def _buffer_bookkeeping(node, short: str, kinds: dict) -> bool:
    """An in-place update of a buffer whose result nothing reads: batch norm's
    ``num_batches_tracked += 1`` in training mode. It never reaches an output."""
    first = node.args[0] if node.args else None
    return (
        short.endswith("_")
        and not node.users
        and isinstance(first, torch.fx.Node)
        and kinds.get(first.name, ("",))[0] == "buffer"
    )


# Ops that hand a lifted constant on unchanged in value (``torch.tensor(c)`` in a forward).
_CONSTANT_COPIES = {"lift_fresh_copy", "detach_", "detach", "clone", "alias", "_to_copy", "to"}


def _scalar_constants(exported) -> dict[str, Any]:
    """Placeholder name -> value of each 0-d constant tensor the forward made: it becomes a
    literal operand, as if the reference had written the number (``torch.min(x, c)``)."""
    found = {}
    for spec in exported.graph_signature.input_specs:
        value = exported.constants.get(spec.target) if spec.kind.name == "CONSTANT_TENSOR" else None
        if isinstance(value, torch.Tensor) and value.dim() == 0 and value.device.type != "meta":
            if not value.is_complex():
                found[spec.arg.name] = value.item()
    return found


def _graph(exported, forward_args: list[str]) -> OpGraph:
    sig = exported.graph_signature
    scalars = _scalar_constants(exported)
    kinds = {}
    for spec in sig.input_specs:
        kind = {"USER_INPUT": "arg", "PARAMETER": "param", "BUFFER": "buffer"}.get(
            spec.kind.name, "constant"
        )
        kinds[spec.arg.name] = (kind, spec.target)
    inputs: list[Input] = []
    ops: list[Op] = []
    outputs: list[Ref] = []
    position = 0
    for node in exported.graph.nodes:
        if node.op == "placeholder" and node.name in scalars:
            continue
        if node.op == "placeholder":
            kind, target = kinds.get(node.name, ("arg", None))
            value = _value(node.meta.get("val"))
            pos = None
            if kind == "arg":
                pos, position = position, position + 1
            inputs.append(Input(node.name, kind, value, pos, target))  # type: ignore[arg-type]
        elif node.op == "call_function":
            short, overload = _short(node.target)
            if short in _NOISE or _buffer_bookkeeping(node, short, kinds):
                continue
            first = node.args[0] if node.args else None
            if short in _CONSTANT_COPIES and getattr(first, "name", None) in scalars:
                scalars[node.name] = scalars[first.name]
                continue
            args = tuple(_arg(a, scalars) for a in node.args)
            kwargs = {k: _arg(v, scalars) for k, v in node.kwargs.items()}
            ops.append(Op(node.name, short, overload, args, kwargs, _value(node.meta.get("val"))))
        elif node.op == "output":
            outs = node.args[0]
            outs = outs if isinstance(outs, tuple | list) else (outs,)
            outputs = [Ref(o.name) for o in outs if isinstance(o, torch.fx.Node)]
    return OpGraph(inputs, ops, outputs, forward_args)
