"""``full`` with a shape, and ``triu``/``tril`` of any tensor: the causal mask that Llama- and
Mistral-style eager attention builds in ``forward``
(``torch.triu(torch.full((t, t), finfo.min), diagonal=1)``), added to the scores; and
``arange`` with int arguments, the positions of a position embedding
(``wpe(torch.arange(ids.size(-1)))``).

A fill's shape and an arange's bounds are written over run-time sizes where traces at other
sizes told how they follow them (``sizes.py``: a literal, or a forward argument's dim such as
the sequence length); a number that follows them by no rule is refused rather than baked in.
0-d fills never get here: ``constants.py`` folds them into the ops that read them.
"""

from __future__ import annotations

from ..kernels import fill as seed_kernel
from ..trace import OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before, pow2_at_most
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
_POSITIONS = {"int64", "int32", *_FLOATS}


def _device_of(graph: OpGraph) -> str | None:
    """A forward tensor argument, whose device the filled tensor is made on."""
    for inp in graph.inputs:
        if inp.kind == "arg" and inp.value is not None:
            return graph.forward_args[inp.position or 0]
    return None


class Fill:
    name = "fill"
    knobs = {"BLOCK": (256, 512, 1024, 2048), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op != "full" or op.name in claimed or op.name in graph.unsized or len(op.args) < 2:
            return None
        shape, value = op.args[0], op.args[1]
        out = graph.value_of(Ref(op.name))
        if not isinstance(shape, tuple) or not shape or out is None or out.dtype not in _FLOATS:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        device = _device_of(graph)
        if device is None:
            return None
        sizes = graph.sizes.get(op.name) or tuple(str(s) for s in shape)
        spec = {"shape": list(sizes), "value": float(value), "dtype": out.dtype, "device": device}
        return Segment(self.name, op.name, [op.name], [], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        shape = "(" + ", ".join(spec["shape"]) + ",)"
        call = [
            f"{out} = torch.empty({shape}, device={spec['device']}.device, "
            f"dtype={TORCH_DTYPES[spec['dtype']]})",
            f"if {out}.numel():",
            f"    {p}_fill_kernel[(triton.cdiv({out}.numel(), {config['BLOCK']}),)](",
            f"        {out}, {out}.numel(), {spec['value']!r},",
            f"        BLOCK={config['BLOCK']}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_fill_kernel"], p), call)


class Triangle:
    name = "triangle"
    knobs = {"BN": (32, 64, 128, 256, 512), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in ("triu", "tril") or op.name in claimed or not op.args:
            return None
        src = op.args[0]
        diag = op.args[1] if len(op.args) > 1 else op.kwargs.get("diagonal", 0)
        if not isinstance(src, Ref) or not isinstance(diag, int) or isinstance(diag, bool):
            return None
        v = graph.value_of(src)
        if v is None or v.rank < 2 or v.dtype not in _FLOATS:
            return None
        if not available_before(graph, index)(src):
            return None
        spec = {"upper": op.op == "triu", "diag": diag, "n": v.shape[-1]}
        return Segment(self.name, op.name, [op.name], [src], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BN": max(32, pow2_at_most(max(seg.spec["n"], 32), 256)), "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        x = ctx.expr(seg.inputs[0])
        bn = config["BN"]
        call = [
            # a [B, M, N] view of any batch dims (a copy only where they cannot merge)
            f"{p}_x = {x}.reshape(-1, {x}.shape[-2], {x}.shape[-1])",
            f"{out} = torch.empty({x}.shape, device={x}.device, dtype={x}.dtype)",
            f"if {out}.numel():",
            f"    {p}_triangle_kernel[({p}_x.shape[0] * {p}_x.shape[1], "
            f"triton.cdiv({p}_x.shape[2], {bn}))](",
            f"        {p}_x, {out}, {p}_x.shape[1], {p}_x.shape[2], *{p}_x.stride(),",
            f"        {spec['diag']}, UPPER={spec['upper']}, BN={bn}, "
            f"num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_triangle_kernel"], p), call)


class Arange:
    name = "arange"
    knobs = {"BLOCK": (256, 512, 1024, 2048), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op != "arange" or op.name in claimed or op.name in graph.unsized or not op.args:
            return None
        out = graph.value_of(Ref(op.name))
        if out is None or out.dtype not in _POSITIONS or len(op.args) > 3:
            return None
        if any(isinstance(a, bool) or not isinstance(a, int) for a in op.args):
            return None  # float bounds: the length is a rounding rule, left to torch
        device = _device_of(graph)
        if device is None:
            return None
        args = list(graph.sizes.get(op.name) or (str(a) for a in op.args))
        start, end, step = (["0", *args, "1"] if len(args) == 1 else [*args, "1"])[:3]
        spec = {"start": start, "end": end, "step": step, "dtype": out.dtype, "device": device}
        return Segment(self.name, op.name, [op.name], [], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        dtype = {"int64": "torch.int64", "int32": "torch.int32"}.get(spec["dtype"]) or (
            TORCH_DTYPES[spec["dtype"]]
        )
        call = [
            f"{p}_start, {p}_step = int({spec['start']}), int({spec['step']})",
            # ATen's length: ceil((end - start) / step), never below 0
            f"{p}_n = max(0, -(-(int({spec['end']}) - {p}_start) // {p}_step))",
            f"{out} = torch.empty(({p}_n,), device={spec['device']}.device, dtype={dtype})",
            f"if {p}_n:",
            f"    {p}_arange_kernel[(triton.cdiv({p}_n, {config['BLOCK']}),)](",
            f"        {out}, {p}_n, {p}_start, {p}_step,",
            f"        BLOCK={config['BLOCK']}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_arange_kernel"], p), call)
