"""Batch, instance and group norm on the split two-pass kernels of ``kernels/norm.py``.

``batch_norm`` in training mode normalises with the batch's statistics (mean and biased
variance over every dim but the channel dim); in eval mode with the running ones (no statistics
pass). ``instance_norm`` takes per-(sample, channel) statistics (or the running ones when
``use_input_stats`` is off), ``group_norm`` per-(sample, group). Weight, bias and running
statistics are per-channel vectors; any of them may be absent. The running-statistics update of
a training-mode batch norm changes buffers, not the output, so it is not reproduced.

How a tensor maps onto the kernels' ``[P, Q, R, I]`` view and how groups are split across
programs is explained in ``kernels/norm.py``; ``launch`` writes the host side for this template
and for ``vector_norm``.
"""

from __future__ import annotations

import math

from ..kernels import norm as seed_kernel
from ..trace import OpGraph, Ref, Value
from . import epilogue, seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
# Kernel statistics kinds (``KIND`` in kernels/norm.py).
MOMENTS, SUMSQ, SUMABS, MAXABS, RUNNING = 0, 1, 2, 3, 4
KNOBS = {
    "MAX_BLOCK": (1024, 2048, 4096, 8192, 16384),
    "BLOCK_I": (16, 32, 64, 128),
    "PROGRAMS": (1, 256, 1024, 4096),  # aim for about this many programs per pass
    "num_warps": (1, 2, 4, 8, 16),
}
# op -> names of its arguments after the input
_ARGS = {
    "batch_norm": ("weight", "bias", "mean", "var", "stats", "momentum", "eps"),
    "instance_norm": ("weight", "bias", "mean", "var", "stats", "momentum", "eps"),
    "group_norm": ("groups", "weight", "bias", "eps"),
}
_KWARGS = {"running_mean": "mean", "running_var": "var", "training": "stats",
           "use_input_stats": "stats", "num_groups": "groups"}  # fmt: skip


def default_config() -> Config:
    return {"MAX_BLOCK": 4096, "BLOCK_I": 32, "PROGRAMS": 1024, "num_warps": 8}


class StatNorm:
    name = "statnorm"
    knobs = KNOBS

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        names = _ARGS.get(op.op)
        if op.name in claimed or names is None or not op.args or not isinstance(op.args[0], Ref):
            return None
        x = op.args[0]
        src = graph.value_of(x)
        if src is None or src.rank < 2 or src.dtype not in _FLOATS or not isinstance(op.out, Value):
            return None
        a = dict(zip(names, op.args[1:], strict=False))
        a.update({_KWARGS.get(k, k): v for k, v in op.kwargs.items()})
        available = available_before(graph, index)
        channels = src.shape[1]
        eps = a.get("eps", 1e-5)
        if not isinstance(eps, int | float) or isinstance(eps, bool) or not available(x):
            return None
        stats = op.op == "group_norm" or a.get("stats", True) is True
        vectors = {k: a.get(k) for k in ("weight", "bias")}
        if not stats:
            vectors.update(mean=a.get("mean"), var=a.get("var"))
            if vectors["mean"] is None or vectors["var"] is None:
                return None
        for ref in vectors.values():
            v = graph.value_of(ref) if isinstance(ref, Ref) else None
            if ref is not None and (v is None or v.shape != (channels,) or not available(ref)):
                return None
        groups = a.get("groups", 1) if op.op == "group_norm" else None
        if groups is not None and (not isinstance(groups, int) or channels % groups):
            return None
        present = [k for k, r in vectors.items() if r is not None]
        ep, ep_ops, ep_refs, final = epilogue.fuse(graph, Ref(op.name), claimed, available)
        return Segment(
            self.name,
            op.name,
            [op.name, *ep_ops],
            [x, *(vectors[k] for k in present), *ep_refs],
            final,
            {
                "op": op.op,
                "rank": src.rank,
                "stats": stats,
                "groups": groups,
                # elements of one statistics group (instance and group norm)
                "group_size": math.prod(src.shape[2:]) * channels // (groups or channels),
                "vectors": present,
                "eps": float(eps),
                "epilogue": ep,
                "out_dtype": ep["out_dtype"] if ep_ops else op.out.dtype,
                "numel": math.prod(src.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        return default_config()

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        names = [ctx.expr(r) for r in seg.inputs]
        x, out, rank = names[0], ctx.out_var, spec["rank"]
        k = 1 + len(spec["vectors"])
        vectors = dict(zip(spec["vectors"], names[1:k], strict=True))
        space = " * ".join(f"{x}.shape[{d}]" for d in range(2, rank)) or "1"
        lines = [f"{p}_n, {p}_c, {p}_s = {x}.shape[0], {x}.shape[1], {space}"]
        n, c, s = f"{p}_n", f"{p}_c", f"{p}_s"
        perm = None
        if spec["op"] == "batch_norm" and rank == 2:  # channels are contiguous: make them columns
            view, channel = [n, "1", "1", c], [c, "1", "1"]
        elif spec["op"] == "batch_norm":
            view, channel = [n, c, s, "1"], [c, "1", s]
        else:
            g = spec["groups"] or c
            per = "1" if spec["op"] == "instance_norm" else f"{c} // {g}"
            view, channel = ["1", f"{n} * {g}", f"{per} * {s}", "1"], [str(g), per, s]
            if spec["group_size"] * 16 <= config["MAX_BLOCK"]:  # short groups: side by side
                perm = (0, 3, 2, 1)
        lines.append(
            f"{out} = torch.empty({x}.shape, device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})"
        )
        lines += launch(
            p,
            x,
            out,
            view,
            config,
            perm=perm,
            kind=MOMENTS if spec["stats"] else RUNNING,
            channel=channel,
            vectors=vectors,
            eps=repr(spec["eps"]),
            ep=spec["epilogue"],
            ep_operands=names[k:],
        )
        return Emitted(source(p, spec["epilogue"]), lines)


# Where a fused epilogue goes in the apply kernel: its parameters after the run-time scalars,
# its lines between computing ``y`` and storing it at contiguous output offset ``oofs``.
_PARAMS = "    CQ, CPG, RPC, eps, eps_out, lo,\n"
_STORE = "            tl.store(out_ptr + oofs, y.to(out_ptr.dtype.element_ty), mask=mask)\n"


def source(p: str, ep: dict | None = None) -> str:
    """The kernels for segment prefix ``p``, with elementwise epilogue ``ep`` fused into the
    apply kernel (``templates/epilogue.py``: the output viewed as ``[rows, L]``)."""
    names = ["norm_element", "norm_stats_kernel", "norm_apply_kernel"]
    text = seed.source(seed_kernel, names, p + "_")
    if not ep or not (ep["lines"] or ep["operands"]):
        return text
    for piece in (_PARAMS, _STORE):
        if text.count(piece) != 1:
            raise ValueError(f"the norm seed kernel changed: no single {piece.strip()!r}")
    params = "".join(f"{q}, " for q in ["L", *epilogue.kernel_params(ep)])
    lines = ["acc = y"]
    if ep["operands"]:
        lines += ["ep_rows = oofs // L", "ep_cols = oofs % L"]
    lines += [*epilogue.kernel_lines(ep, "ep_rows", "ep_cols", "mask"), "y = acc"]
    text = text.replace(_PARAMS, _PARAMS + "    " + params.rstrip() + "\n")
    return text.replace(_STORE, "".join(" " * 12 + t + "\n" for t in lines) + _STORE)


def launch(
    p: str,
    x: str,
    out: str,
    view: list[str],
    config: Config,
    *,
    kind: int,
    perm: tuple[int, ...] | None = None,
    channel: list[str] | None = None,
    vectors: dict[str, str] | None = None,
    eps: str = "0.0",
    eps_out: str = "0.0",
    mean: bool = False,
    root: bool = False,
    clamp: str | None = None,
    stat_only: bool = False,
    ep: dict | None = None,
    ep_operands: list[str] | None = None,
) -> list[str]:
    """Forward lines running both passes over ``x`` reshaped to ``view`` (4 size expressions)
    and permuted by ``perm`` into the kernels' ``[P, Q, R, I]``, writing ``out`` (allocated by
    the caller: ``x``'s shape, or with ``stat_only`` one value per group, contiguous).
    ``vectors``: per-channel ``weight``/``bias``/``mean``/``var`` expressions; ``channel``: the
    ``CQ, CPG, RPC`` expressions of their index."""
    vectors = vectors or {}
    cap, inner, target = config["MAX_BLOCK"], config["BLOCK_I"], config["PROGRAMS"]
    P, Q, R, I = (f"{p}_{d}" for d in "PQRI")  # noqa: N806 (the kernels' names)
    permute = f".permute{perm}" if perm else ""
    shape = ", ".join(view)
    out_strides = f"0, {I}, 0, 1" if stat_only else f"*{out}.view({shape}){permute}.stride()"
    ptr = {k: vectors.get(k, x) for k in ("weight", "bias", "mean", "var")}
    lines = [
        f"{p}_x = {x}.reshape({shape}){permute}",
        f"{P}, {Q}, {R}, {I} = {p}_x.shape",
        f"{p}_T = {P} * {R}",
        # Groups side by side: BLOCK_I of them, or more when groups are too short to fill a tile.
        f"{p}_BI = min(triton.next_power_of_2({I}), "
        f"max({inner}, {cap} // triton.next_power_of_2({p}_T)))",
        f"{p}_BE = min(triton.next_power_of_2({p}_T), {cap} // {p}_BI)",
        f"{p}_G = {Q} * triton.cdiv({I}, {p}_BI)",
        # Split each group into enough chunks to reach about `target` programs, never more
        # than one chunk a tile, and few enough that a program combines them in one tile.
        f"{p}_split = max(1, min(triton.cdiv({p}_T, {p}_BE), triton.cdiv({target}, {p}_G), "
        f"4096 // {p}_BI))",
        f"{p}_chunk = triton.cdiv(triton.cdiv({p}_T, {p}_split), {p}_BE) * {p}_BE",
        f"{p}_split = triton.cdiv({p}_T, {p}_chunk)",
        f"{p}_dims = ({Q}, {R}, {I}, *{p}_x.stride())",
        f"{p}_flat = dict(ONE_P={P} == 1, ONE_R={R} == 1)",
    ]
    if kind != RUNNING:
        lines.append(
            f"{p}_part = torch.empty((2, {Q}, {p}_split, {I}), device={x}.device, "
            "dtype=torch.float32)"
        )
    fused = bool(ep and (ep["lines"] or ep["operands"]))
    if fused:
        lines += epilogue.host_lines(p, ep, ep_operands or [], out)
    part = f"{p}_part" if kind != RUNNING else x
    warps = config["num_warps"]
    lines.append(f"if {out}.numel() and {p}_T:")
    if kind != RUNNING:
        lines += [
            f"    {p}_norm_stats_kernel[({p}_G, {p}_split)](",
            f"        {p}_x, {part}, *{p}_dims, {p}_T, {p}_chunk, {p}_split,",
            f"        KIND={kind}, **{p}_flat, BE={p}_BE, BI={p}_BI, num_warps={warps},",
            "    )",
        ]
    cq, cpg, rpc = channel or ["1", "0", "1"]
    lines += [
        f"    {p}_norm_apply_kernel[({p}_G, {1 if stat_only else f'{p}_split'})](",
        f"        {p}_x, {part}, {ptr['weight']}, {ptr['bias']}, {ptr['mean']}, {ptr['var']},",
        f"        {out}, *{p}_dims, {out_strides}, {p}_T, {p}_chunk, {p}_split,",
        f"        {cq}, {cpg}, {rpc}, {eps}, {eps_out}, {clamp or '0.0'},"
        + (f" {out}.shape[-1], {epilogue.host_args(p)}," if fused else ""),
        f"        KIND={kind}, **{p}_flat, MEAN={mean}, ROOT={root}, CLAMP={clamp is not None},",
        f"        HAS_W={'weight' in vectors}, HAS_B={'bias' in vectors}, STAT_ONLY={stat_only},",
        f"        BE={p}_BE, BI={p}_BI, BS=triton.next_power_of_2({p}_split), num_warps={warps},",
        "    )",
    ]
    return lines


__all__ = ["StatNorm", "launch", "source"]
