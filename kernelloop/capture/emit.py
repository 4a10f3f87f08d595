"""One captured unit as a KernelBench-format problem file, written from its exported graph.

The file is *functional*: ``Model`` has no weights; its forward takes the call's tensor
arguments (positional, then keyword), then the module's parameters and buffers (only those the
graph reads), and runs one line per op, ``torch.ops.aten.<op>.<overload>(...)``, as
``torch.export`` traced it.
Sizes the trace kept symbolic are written as expressions over ``.size(i)`` of the inputs; a
device the trace baked in is the first input's device. ``get_inputs`` draws every input at the
scale of the real one (see :func:`_draw`) from module-level size constants, one per group of
dimensions the export ties together (``sizes.py``), named by role where one role explains every
use (``BATCH``, ``SEQ``, ``HEIGHT``, ``WIDTH``) and ``DIM_<value>`` otherwise. The constants are
the real shapes, the file's default (GPU) size; kernelloop derives a CPU size from them
(``kernelbench/autosize.py``).
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import keyword
import math
import operator
import re
import types
from typing import Any

import torch

from . import indices, sizes
from .manifest import TensorSpec, UnitInput
from .record import SHAPE_OPS, Call
from .sizes import Sizes

_SYM_OPS = {
    operator.add: "+", operator.sub: "-", operator.mul: "*", operator.floordiv: "//",
    operator.mod: "%", operator.truediv: "/", operator.pow: "**",
}  # fmt: skip
_SKIP = ("_assert_scalar", "sym_constrain_range", "sym_constrain_range_for_size",
         "_assert_tensor_metadata", "_assert_async")  # fmt: skip
_RESERVED = {"torch", "nn", "self", "Model", "math", "get_inputs", "get_init_inputs"}
_BUILTINS = frozenset(dir(builtins))
_NAMESPACES = ("aten", "prims")  # ops a problem file can call without registering anything
_VIEWS = {("view", "default"), ("_unsafe_view", "default")}  # written as reshape


class Unspellable(Exception):
    """The exported graph holds something a problem file cannot write (the reason is the text)."""


@dataclasses.dataclass
class Written:
    source: str
    inputs: tuple[UnitInput, ...]
    ops: tuple[str, ...]  # compute ops of the graph, in order ("linear", "silu", ...)


@dataclasses.dataclass
class Header:
    """What the docstring says about the unit."""

    kind: str
    sites: list[Call]
    model_spec: str
    dtype: str


def write(program, module: torch.nn.Module, call: Call, header: Header) -> Written:
    """The problem file of ``program`` (the export of ``call`` of ``module``)."""
    graph = program.graph_module.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    specs = program.graph_signature.input_specs
    user = [n for n, s in zip(placeholders, specs, strict=True) if s.kind.name == "USER_INPUT"]
    for n, s in zip(placeholders, specs, strict=True):
        if s.kind.name != "USER_INPUT" and n.users:
            raise Unspellable(f"its forward reads a tensor constant ({s.target or n.name})")
    inputs, tensors = _inputs(module, call, user)
    env: dict[Any, str] = {}
    for node, inp in zip(user, inputs, strict=True):
        env[node] = inp.name
    used = [(inp, t) for node, inp, t in zip(user, inputs, tensors, strict=True) if node.users]
    if not used:
        raise Unspellable("its output reads none of its inputs")
    first = used[0][0].name
    taken = _RESERVED | {inp.name for inp, _ in used}
    body, ops, out = [], [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            out = node.args[0]
            break
        if node.op != "call_function":
            raise Unspellable(f"its graph holds a {node.op} node ({node.target})")
        line = _statement(node, env, first, taken)
        if not line:
            continue
        body.append(line)
        if isinstance(node.target, torch._ops.OpOverload):
            name = node.target._opname.rstrip("_") or node.target._opname  # relu_ is a relu
            if name not in SHAPE_OPS:
                ops.append(name)
    # A None the module returns (an attention's weights under need_weights=False) is no output
    # of the problem: capture.json records where it goes back (Subgraph.none_outputs).
    results = [_expr(o, env, first) for o in (out or ()) if o is not None]
    body.append("return " + (f"({', '.join(results)},)" if call.returns_tuple else results[0]))
    reads = [(inp, node) for node, inp in zip(user, inputs, strict=True) if node.users]
    names = sizes.name_sizes(program, reads)
    tables = indices.tables(graph, env)
    source = _source(
        header, [inp for inp, _ in used], [t for _, t in used], body, names, ops, tables
    )
    return Written(source, tuple(inp for inp, _ in used), tuple(ops))


def _inputs(module, call: Call, user) -> tuple[list[UnitInput], list[torch.Tensor | None]]:
    """UnitInputs in the wrapper's order (positional tensor args, keyword ones, then state) and
    the state tensors."""
    params = dict(module.named_parameters())
    buffers = dict(module.named_buffers())
    arg_names = _arg_names(module, len(call.args))
    out: list[UnitInput] = []
    tensors: list[torch.Tensor | None] = []
    for i, a in enumerate(call.args):
        if a.tensor:
            out.append(UnitInput(arg_names[i], "arg", a.tensor, index=i))
            tensors.append(None)
    seen = {u.name for u in out}
    for k, a in call.kwargs.items():
        if a.tensor:
            name = _identifier(k, seen)
            seen.add(name)
            out.append(UnitInput(name, "arg", a.tensor, target=k))
            tensors.append(None)
    for target in [*params, *buffers]:
        t = params.get(target, buffers.get(target))
        name = _identifier(target.replace(".", "_"), seen)
        seen.add(name)
        spec = TensorSpec(tuple(int(s) for s in t.shape), str(t.dtype).removeprefix("torch."))
        kind = "param" if target in params else "buffer"
        out.append(UnitInput(name, kind, spec, target=target))
        tensors.append(t)
    if len(out) != len(user):
        raise Unspellable(f"the trace has {len(user)} inputs where {len(out)} were passed")
    return out, tensors


def _arg_names(module, n: int) -> list[str]:
    """The forward's own names for its positional arguments (x0, x1, ... past them)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    ]
    if len(names) < n:  # *args: x0, x1, ...
        names += [f"x{i}" for i in range(len(names), n)]
    out, seen = [], set()
    for name in names[:n]:
        name = _identifier(name, seen)
        seen.add(name)
        out.append(name)
    return out


def _identifier(text: str, taken: set[str]) -> str:
    name = re.sub(r"\W", "_", text) or "x"
    if name[0].isdigit():
        name = f"p{name}"
    if name in _BUILTINS:  # nn.Linear's "input": the static gate reads it as input()
        name = "x" if "x" not in taken else f"{name}_"
    if keyword.iskeyword(name) or name in _RESERVED or name.isupper():
        name += "_"  # upper case is kept for the size constants
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def _statement(node, env: dict, first: str, taken: set[str]) -> str | None:
    target = node.target
    args = node.args
    if target in _SYM_OPS:  # SymInt arithmetic: inline, in Python
        env[node] = (
            f"({_expr(args[0], env, first)} {_SYM_OPS[target]} {_expr(args[1], env, first)})"
        )
        return None
    if target is operator.neg:
        env[node] = f"(-{_expr(args[0], env, first)})"
        return None
    if target in (torch.sym_max, torch.sym_min):
        fn = "max" if target is torch.sym_max else "min"
        env[node] = f"{fn}({_expr(args[0], env, first)}, {_expr(args[1], env, first)})"
        return None
    if target is operator.getitem:  # one output of an op that returns several
        name = _var(node, taken)
        env[node] = name
        return f"{name} = {_expr(args[0], env, first)}[{args[1]!r}]"
    if not isinstance(target, torch._ops.OpOverload):
        raise Unspellable(f"its graph calls {getattr(target, '__name__', target)!r}")
    packet = target._opname
    if packet in _SKIP:  # the trace's own shape assertions
        return None
    if packet == "sym_size":
        env[node] = f"{_expr(args[0], env, first)}.size({args[1]})"
        return None
    if target.namespace not in _NAMESPACES:
        raise Unspellable(f"its graph calls torch.ops.{target.namespace}.{packet}, a custom op")
    parts = [_expr(a, env, first) for a in args]
    parts += [f"{k}={_expr(v, env, first)}" for k, v in node.kwargs.items()]
    name = _var(node, taken)
    env[node] = name
    overload = target._overloadname
    functional = _out_of_place(target)
    if functional is not None:
        # `nn.ReLU(inplace=True)`, `x.add_(y)`: the trace keeps the in-place op, which no
        # template (and no op key of the same op written out of place) matches. The problem
        # computes the value out of place; later reads of the mutated tensor read the result.
        packet, overload = functional._opname, functional._overloadname
        if isinstance(args[0], torch.fx.Node):
            env[args[0]] = name
    elif (packet, overload) in _VIEWS:
        # The export drops a `.contiguous()` that was a no-op at trace time (CPU attention
        # returns its output already transposed), so the `view` after it holds only for the
        # strides seen then; meta kernels and other backends lay tensors out otherwise. The
        # problem is about values: a reshape is the same view where a view exists.
        packet, overload = "reshape", "default"
    return f"{name} = torch.ops.{target.namespace}.{packet}.{overload}({', '.join(parts)})"


def _out_of_place(target) -> Any:
    """The out-of-place overload of an in-place ATen op (``relu_`` -> ``relu``), or None."""
    schema = target._schema
    info = schema.arguments[0].alias_info if schema.arguments else None
    name = target._opname
    if info is None or not info.is_write or not name.endswith("_") or name.startswith("_"):
        return None
    packet = getattr(getattr(torch.ops, target.namespace), name[:-1], None)
    return getattr(packet, target._overloadname, None) if packet is not None else None


def _var(node, taken: set[str]) -> str:
    name = _identifier(node.name, taken)
    taken.add(name)
    return name


def _expr(a: Any, env: dict, first: str) -> str:
    if isinstance(a, torch.fx.Node):
        if a not in env:
            raise Unspellable(f"the graph reads {a.name} before it is made")
        return env[a]
    if isinstance(a, list):
        return "[" + ", ".join(_expr(x, env, first) for x in a) + "]"
    if isinstance(a, tuple):
        inner = ", ".join(_expr(x, env, first) for x in a)
        return f"({inner},)" if len(a) == 1 else f"({inner})"
    if isinstance(a, torch.device):
        return f"{first}.device"
    if isinstance(a, torch.dtype | torch.layout | torch.memory_format):
        return str(a)
    if isinstance(a, bool) or a is None or isinstance(a, int | str):
        return repr(a)
    if isinstance(a, float):
        return repr(a) if math.isfinite(a) else f'float("{a}")'
    raise Unspellable(f"its graph passes a {type(a).__name__} ({a!r})")


# --- sizes and inputs -----------------------------------------------------------------------


def _draw(inp: UnitInput, tensor: torch.Tensor | None, arg_range, names: Sizes, table=None) -> str:
    """How ``get_inputs`` makes one input: activations ``randn``; integer arguments ``randint``
    over the range seen; parameters at the real ones' mean and spread (on meta, where there
    are no values: 1/sqrt(fan_in) for matrices, 1 for vectors); floating buffers positive
    (running variances must be), around the real ones' magnitude."""
    spec = inp.tensor
    shape = names.shape(inp)
    if spec.dtype == "bool":
        return f"torch.rand({shape}) < 0.5"
    if not spec.dtype.startswith(("float", "bfloat")):
        if arg_range is None:
            raise Unspellable(f"{inp.name} holds integers of unknown range")
        lo, hi = arg_range
        size = names.shape(inp, as_tuple=True)
        # Indices index something: the size of what they index where the graph says (an
        # embedding's rows: indices seen only up to 5 must not make a kernel right only below
        # the batch size pass), else the smallest size above the largest one seen (a class
        # count); either follows its constant when a smaller size is checked.
        bound = names.above(hi) if lo >= 0 else None
        if lo >= 0 and table is not None:
            name = names.dims[table[0]][table[1]]
            if name is not None and names.constants.get(name, 0) > hi:
                bound = name
        if bound is not None:
            return f"torch.randint(0, {bound}, {size})"
        return f"torch.randint({lo}, {hi + 1}, {size})"
    if inp.kind == "arg":
        return f"torch.randn({shape})"
    live = tensor is not None and tensor.device.type != "meta" and tensor.numel() > 0
    # Running variances and counts must stay positive; a buffer with negative or all-zero
    # values (a running mean, a rotary table) is drawn like a parameter: a running mean drawn
    # positive around 1 shifts a BatchNorm's output below zero and a ReLU after it kills it.
    if inp.kind == "buffer" and (not live or (tensor.min() >= 0 and tensor.abs().max() > 0)):
        mean = float(tensor.double().abs().mean()) if live else 1.0
        m = mean if math.isfinite(mean) and mean > 1e-6 else 1.0
        return f"torch.rand({shape}) * {m:.4g} + {0.5 * m:.4g}"
    if live:
        values = tensor.detach().double()
        mean, std = float(values.mean()), float(values.std()) if values.numel() > 1 else 0.0
        if not (math.isfinite(mean) and math.isfinite(std)):
            mean, std = 0.0, 1.0
        if std <= 0.01 * abs(mean) or std == 0.0:  # a norm's ones: keep some spread
            std = max(0.1 * abs(mean), 1e-2)
    else:
        fan_in = math.prod(spec.shape[1:]) if len(spec.shape) >= 2 else 0
        mean, std = 0.0, (1 / math.sqrt(fan_in) if fan_in else 1.0)
    text = f"torch.randn({shape})" + ("" if std == 1.0 else f" * {std:.4g}")
    if abs(mean) > 0.1 * std:
        text += f" + {mean:.4g}" if mean > 0 else f" - {-mean:.4g}"
    return text


# --- the file -------------------------------------------------------------------------------


def summary(kind: str, call: Call, sites: int, ops: list[str]) -> str:
    """The docstring's first line: kind, module, type and the ops, short."""
    groups: list[list] = []
    for op in ops:
        if groups and groups[-1][0] == op:
            groups[-1][1] += 1
        else:
            groups.append([op, 1])
    shown = [f"{op} x{n}" if n > 1 else op for op, n in groups]
    text = ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "")
    where = call.module or "the model"
    more = f" (+{sites - 1} identical)" if sites > 1 else ""
    return f"{kind.capitalize()} of {where}{more} ({call.module_type}): {text}"


def _source(header: Header, inputs, tensors, body, names, ops, tables=None) -> str:
    call = header.sites[0]
    sites = ", ".join(
        f"{c.module or '(model)'}" + (f" (call {c.call})" if c.call else "") for c in header.sites
    )
    draws = [
        f"    {inp.name} = "
        + _draw(inp, t, _range(call, inp, t), names, (tables or {}).get(inp.name))
        for inp, t in zip(inputs, tensors, strict=True)
    ]
    params = ", ".join(["self", *(i.name for i in inputs)])
    doc = [
        f'"""{summary(header.kind, call, len(header.sites), ops)}',
        "",
        f"Captured by `kernelloop capture {header.model_spec}` from {sites}.",
        "Functional: the module's parameters and buffers are forward inputs after its arguments,",
        "so a kernel verified here runs on the model's real weights (see capture.json).",
        '"""',
    ]
    constants = [f"{name} = {v}" for name, v in names.constants.items()]
    lines = [
        *doc,
        "",
        "import torch",
        "import torch.nn as nn",
        "",
        "# The captured call's sizes: the GPU size. On a CPU kernelloop derives a smaller one.",
        *constants,
        "",
        "EVAL_MODE = True",
        "REAL_SIZE = True  # the model's own sizes: a small one is a fact, not a bad benchmark",
        f'DTYPE = "{header.dtype}"',
        *_distributions(header.kind),
        "",
        "",
        "class Model(nn.Module):",
        f"    def forward({params}):",
        *(f"        {line}" for line in body),
        "",
        "",
        "def get_inputs():",
        *draws,
        f"    return [{', '.join(i.name for i in inputs)}]",
        "",
        "",
        "def get_init_inputs():",
        "    return []",
        "",
    ]
    return "\n".join(lines)


def _distributions(kind: str) -> list[str]:
    """The evaluator's "scaled" inputs multiply every input by 4, weights included: attention
    logits (x, Wq, x, Wk) grow 4^4 = 256 times and the softmax turns one-hot, where float32
    rounding alone leaves the tolerance. Such problems are checked on the other two."""
    if kind not in ("attention", "softmax"):
        return []
    return [
        "# x4 on every input, weights too, makes the softmax one-hot: rounding, not the kernel.",
        'INPUT_DISTRIBUTIONS = ["given", "sparse"]',
    ]


def _range(call: Call, inp: UnitInput, t: torch.Tensor | None):
    """An integer input's (min, max): as recorded for an argument (positional or keyword), read
    from the tensor for state."""
    if inp.kind != "arg":
        return _state_range(t)
    return (call.args[inp.index] if inp.index is not None else call.kwargs[inp.target]).int_range


def _state_range(t: torch.Tensor | None):
    if t is None or t.device.type == "meta" or t.is_floating_point() or not t.numel():
        return None
    return int(t.min()), int(t.max())


def check(source: str, outputs: tuple[TensorSpec, ...], dtype: str) -> None:
    """Run the written file once on the meta device at its own sizes (nothing is computed) and
    compare the output shapes with the call's: a file that does not run is never written."""
    module = types.ModuleType("kernelloop_captured")
    try:
        exec(compile(source, "<captured problem>", "exec"), module.__dict__)  # our own code
        with torch.device("meta"), torch.no_grad():
            target = getattr(torch, dtype)
            inputs = [x.to(target) if x.is_floating_point() else x for x in module.get_inputs()]
            out = module.Model()(*inputs)
    except Exception as exc:
        raise Unspellable(f"the written problem does not run: {type(exc).__name__}: {exc}") from exc
    outs = out if isinstance(out, tuple | list) else (out,)
    got = [tuple(o.shape) for o in outs]
    want = [tuple(o.shape) for o in outputs]
    if got != want:
        raise Unspellable(f"the written problem returns shapes {got}, the module {want}")
