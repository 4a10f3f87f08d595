"""Pooling of every rank: max and average, fixed and adaptive windows (``kernels/pool.py``).

Covers ``max_pool{1,2,3}d`` (dilation, ceil mode; the ``_with_indices`` forms when only the
values are used), ``avg_pool{1,2,3}d`` (ceil mode, ``count_include_pad``, ``divisor_override``)
and ``adaptive_{avg,max}_pool{1,2,3}d`` for any output size (the global ``(1, 1)`` pool
included). A 2-d max pool without ceil mode is claimed first by ``pool.MaxPool2d``, this
template under its older name and knob.

Window geometry is the traced op's (constexpr in the kernel); an adaptive pool's output size is
too, while its window extents follow the input's run-time shape. The host computes the output
shape with PyTorch's formulas, so hold-out sizes get the same shapes the reference produces.
"""

from __future__ import annotations

import math

from ..kernels import pool as seed_kernel
from ..trace import Op, OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
# op -> (kind, spatial rank, names of the arguments after the input, in order)
_MAX = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
_AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_OPS = {
    **{f"max_pool{n}d": ("max", n, _MAX) for n in (1, 2, 3)},
    **{f"max_pool{n}d_with_indices": ("max", n, _MAX) for n in (1, 2, 3)},
    **{f"avg_pool{n}d": ("avg", n, _AVG) for n in (1, 2, 3)},
    **{f"adaptive_avg_pool{n}d": ("avg", n, ("output_size",)) for n in (1, 2, 3)},
    **{f"_adaptive_avg_pool{n}d": ("avg", n, ("output_size",)) for n in (2, 3)},
    **{f"adaptive_max_pool{n}d": ("max", n, ("output_size",)) for n in (1, 2, 3)},
}
_DEFAULTS = {
    "padding": 0,
    "dilation": 1,
    "ceil_mode": False,
    "count_include_pad": True,
    "divisor_override": None,
}


def _ntuple(v, n: int) -> tuple[int, ...] | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return (v,) * n
    if isinstance(v, tuple | list) and len(v) in (1, n) and all(isinstance(i, int) for i in v):
        return tuple(v) * (n // len(v))
    return None


def _values_item(graph: OpGraph, op: Op, claimed: set[str]) -> Op | None:
    """The ``getitem(op, 0)`` of a (values, indices) op whose indices nobody reads."""
    items = graph.users(Ref(op.name))
    if graph.is_output(Ref(op.name)) or any(u.op != "getitem" or u.name in claimed for u in items):
        return None
    for u in items:
        ref = Ref(u.name)
        if u.args[1] != 0 and (graph.users(ref) or graph.is_output(ref)):
            return None
    values = [u for u in items if u.args[1] == 0]
    return values[0] if len(values) == 1 else None


class Pool:
    name = "pool"
    knobs = {"MAX_BLOCK": (512, 1024, 2048, 4096, 8192, 16384), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        entry = _OPS.get(op.op)
        if op.name in claimed or entry is None or not op.args or not isinstance(op.args[0], Ref):
            return None
        kind, n, names = entry
        x = op.args[0]
        src = graph.value_of(x)
        if src is None or src.rank not in (n + 1, n + 2) or src.dtype not in _FLOATS:
            return None
        if not available_before(graph, index)(x):
            return None
        given = dict(zip(names, op.args[1:], strict=False))
        given.update({k: v for k, v in op.kwargs.items() if k in names})
        if len(op.args) - 1 > len(names) or set(op.kwargs) - set(names):
            return None
        ops, output = [op.name], Ref(op.name)
        if isinstance(op.out, tuple):
            item = _values_item(graph, op, claimed)
            if item is None:
                return None
            ops += [u.name for u in graph.users(Ref(op.name))]
            output = Ref(item.name)
        out = graph.value_of(output)
        if out is None:
            return None
        spec = {"kind": kind, "n": n, "rank": src.rank, "out_dtype": out.dtype}
        spec["numel"] = math.prod(out.shape)
        if "output_size" in names:
            size = _ntuple(given.get("output_size"), n)
            if size is None or min(size) < 1:
                return None
            spec.update(adaptive=True, out_size=[1] * (3 - n) + list(size))
        else:
            geometry = self._fixed(given, n)
            if geometry is None:
                return None
            spec.update(adaptive=False, **geometry)
        return Segment(self.name, op.name, ops, [x], output, spec)

    @staticmethod
    def _fixed(given: dict, n: int) -> dict | None:
        kernel = _ntuple(given.get("kernel_size"), n)
        stride = given.get("stride")
        stride = kernel if stride in (None, [], ()) else _ntuple(stride, n)
        values = {k: d if given.get(k) is None else given[k] for k, d in _DEFAULTS.items()}
        padding = _ntuple(values["padding"], n)
        dilation = _ntuple(values["dilation"], n)
        divisor = values["divisor_override"]
        if None in (kernel, stride, padding, dilation) or min(kernel + stride) < 1:
            return None
        if not all(isinstance(values[k], bool) for k in ("ceil_mode", "count_include_pad")):
            return None
        if divisor is not None and (isinstance(divisor, bool) or not isinstance(divisor, int)):
            return None
        lead = 3 - n
        return {
            "kernel": [1] * lead + list(kernel),
            "stride": [1] * lead + list(stride),
            "padding": [0] * lead + list(padding),
            "dilation": [1] * lead + list(dilation),
            "ceil_mode": values["ceil_mode"],
            "count_pad": values["count_include_pad"],
            "divisor": divisor or 0,
        }

    def default(self, seg: Segment) -> Config:
        # 8 elements a thread: larger tiles spill their index and pointer registers on sm_90.
        return {"MAX_BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        n, rank = spec["n"], spec["rank"]
        lead = rank - n  # 1 (unbatched) or 2 leading dims
        sizes, strides = ["1"] * (3 - n), ["0"] * (3 - n)
        sizes += [f"{x}.shape[{lead + j}]" for j in range(n)]
        strides += [f"{x}.stride({lead + j})" for j in range(n)]
        call = [f"{p}_i = ({', '.join(sizes)})"]
        if spec["adaptive"]:
            call.append(f"{p}_o = {tuple(spec['out_size'])}")
        else:
            call += _out_sizes(p, spec)
        shape = [f"{x}.shape[{d}]" for d in range(lead)]
        shape += [f"{p}_o[{3 - n + j}]" for j in range(n)]
        nstride = f"{x}.stride(0)" if lead == 2 else "0"
        call += [
            f"{out} = torch.empty(({', '.join(shape)},), device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"{p}_args = ({x}, {out}, {out}.numel(), {x}.shape[{lead - 1}], *{p}_i, *{p}_o, "
            f"{nstride}, {x}.stride({lead - 1}), {', '.join(strides)})",
        ]
        warps = config["num_warps"]
        # The interpreter pays per program and per step, not per register: 8x the tile on a CPU.
        cap = config["MAX_BLOCK"]  # elements of a [BLOCK, BT] tile
        call.append(f"{p}_tile = {cap} * (8 if {x}.device.type == 'cpu' else 1)")
        tile = f"{p}_tile"
        avg = spec["kind"] == "avg"
        if spec["adaptive"]:
            name = "adaptive_pool_kernel"
            call += [
                # The widest window along each dim: ceil(I / O), plus one when O does not
                # divide I (a window may then straddle two of the evenly spaced ones).
                f"{p}_k = tuple(-(-i // o) + (i % o > 0) for i, o in zip({p}_i, {p}_o))",
                f"{p}_BT = min(triton.next_power_of_2({p}_k[0] * {p}_k[1] * {p}_k[2]), {tile})",
                f"{p}_BLOCK = max({tile} // {p}_BT, 1)",
                f"if {out}.numel():",
                f"    {p}_{name}[(triton.cdiv({out}.numel(), {p}_BLOCK),)](",
                f"        *{p}_args, *{p}_k, AVG={avg},",
                f"        BLOCK={p}_BLOCK, BT={p}_BT, num_warps={warps},",
                "    )",
            ]
        else:
            name = "pool_kernel"
            bt = taps_per_step(spec)
            call.append(f"{p}_BLOCK = max({tile} // {bt}, 16)")
            geometry = ", ".join(
                f"{key}{axis}={v}"
                for key, field in (("K", "kernel"), ("S", "stride"), ("P", "padding"))
                + (("D", "dilation"),)
                for axis, v in zip("DHW", spec[field], strict=True)
            )
            call += [
                f"if {out}.numel():",
                f"    {p}_{name}[(triton.cdiv({out}.numel(), {p}_BLOCK),)](",
                f"        *{p}_args, {geometry},",
                f"        AVG={avg}, COUNT_PAD={spec.get('count_pad', True)}, "
                f"DIVISOR={spec.get('divisor', 0)},",
                f"        BLOCK={p}_BLOCK, BT={bt}, num_warps={warps},",
                "    )",
            ]
        return Emitted(seed.source(seed_kernel, [name], p + "_"), call)


def _out_sizes(p: str, spec: dict) -> list[str]:
    """Lines setting ``{p}_o``, PyTorch's pooling output size per dim (``pooling_output_shape``:
    in ceil mode the last window must start inside the input or its left padding)."""
    lines, dims = [], []
    for j in range(3):
        k, s, pad, d = (spec[f][j] for f in ("kernel", "stride", "padding", "dilation"))
        if (k, s, pad, d) == (1, 1, 0, 1):  # a unit dim (or a trivial pool along it)
            dims.append(f"{p}_i[{j}]")
            continue
        o, extra = f"{p}_o{j}", (s - 1 if spec["ceil_mode"] else 0)
        lines.append(f"{o} = ({p}_i[{j}] + {2 * pad - d * (k - 1) - 1 + extra}) // {s} + 1")
        if spec["ceil_mode"]:
            lines.append(f"{o} -= ({o} - 1) * {s} >= {p}_i[{j}] + {pad}")
        dims.append(o)
    return [*lines, f"{p}_o = ({', '.join(dims)})"]


def taps_per_step(spec: dict) -> int:
    """``BT`` of a fixed window: all its taps in one step, up to 64 (then a few steps)."""
    bt = 1
    while bt < min(math.prod(spec["kernel"]), 64):
        bt *= 2
    return bt


__all__ = ["Pool", "taps_per_step"]
