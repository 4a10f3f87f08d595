"""Quantized linear: a ``matmul`` by a weight dequantised from packed integer codes.

The references of the ``qgemm.*`` ops (``modules/qgemm.py``) dequantise the whole weight, then
multiply: ``W = (unpack(packed) - zero) * scale`` per group of input features, ``x @ W.t()``.
The matcher follows that chain back from the matmul's weight operand, op by op, and claims it
only when it is exactly one of the layouts the seed kernels unpack (``kernels/qgemm_pack.py``):

- INT8: the packed bytes are the codes; INT4: ``stack([p & 15, p >> 4], -1)``; INT6: the
  little-endian 24-bit word of bytes ``3t, 3t+1, 3t+2`` split into four 6-bit fields, low first.
- then ``to(float)``, a view into ``(N, groups, group_size)``, ``sub`` of a constant zero
  (symmetric) or of ``zeros.unsqueeze(-1)``, ``mul`` by ``scales.unsqueeze(-1)``, a view back
  to ``(N, K)`` and ``t()``.

W8A8 is the same weight behind a per-row dynamic quantisation of x (``abs``/``amax``/``clamp``/
``div``, round half away from zero, clamp to +-127) and the row scale multiplied back after the
matmul. A bias ``add`` (and W8A8's final cast) after the matmul is fused. The seed kernels
(``kernels/qgemm.py``) are copied into the candidate; the launch follows its
``wxa16_linear`` / ``w8a8_linear``, with the group size read from the scales' shape at run time.
"""

from __future__ import annotations

import math

from ....kernels import qgemm as seed_kernel
from ..trace import OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .qlinear_chain import Walk, activation_quant, trailing, weight_chain

_FLOATS = {"float32", "float16", "bfloat16"}
_TORCH = {f: f"torch.{f}" for f in _FLOATS}
_KERNELS_A16 = ["_load_codes", "_tile_ids", "_store_tile", "_dot", "_partial", "_wxa16_kernel"]
_KERNELS_A8 = ["_tile_ids", "_store_tile", "_quantize_rows_kernel", "_w8a8_kernel"]


class QLinear:
    name = "qlinear"
    knobs = {
        "BLOCK_M": (16, 32, 64, 128),
        "BLOCK_N": (32, 64, 128),
        "BLOCK_K": (32, 64, 128),
        "SPLIT_K": (1, 2, 4, 8),
        "num_warps": (2, 4, 8),
        "num_stages": (2, 3, 4),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        anchor = graph.ops[index]
        if anchor.op not in ("matmul", "mm") or anchor.name in claimed or len(anchor.args) != 2:
            return None
        walk = Walk(graph, claimed)
        a, b = anchor.args
        weight = weight_chain(walk, b)
        if weight is None:
            return None
        act = activation_quant(walk, a)
        x = act["x"] if act else a
        xv = graph.value_of(x) if isinstance(x, Ref) else None
        if xv is None or xv.dtype not in _FLOATS or xv.rank < 2 or xv.shape[-1] != weight["k"]:
            return None
        if act and (xv.rank != 2 or act["dim"] not in (1, -1)):
            return None
        if not act and xv.dtype != weight["dtype"]:
            return None
        if act and weight["bits"] != 8 or act and weight["symmetric"] and weight["mid"] != 128:
            return None
        tail = trailing(walk, anchor, act, weight["n"])
        if tail is None:
            return None
        out, bias = tail
        ops = sorted({anchor.name, *walk.ops}, key=graph.index)
        inputs = [x, weight["packed"], weight["scales"]]
        inputs += [r for r in (weight["zeros"], bias) if r is not None]
        available = available_before(graph, graph.index(ops[0]))
        if not all(available(r) for r in inputs) or not walk.closed(ops, out):
            return None
        outv = graph.value_of(out)
        if outv is None or outv.dtype not in _FLOATS:
            return None
        return Segment(
            self.name,
            anchor.name,
            ops,
            inputs,
            out,
            {
                "bits": weight["bits"],
                "w8a8": bool(act),
                "eps": act["eps"] if act else None,
                "mid": weight["mid"],
                "symmetric": weight["symmetric"],
                "has_bias": bias is not None,
                "group_size": weight["group_size"],
                "m": math.prod(xv.shape[:-1]),
                "n": weight["n"],
                "k": weight["k"],
                "out_dtype": outv.dtype,
                "weight_dtype": weight["dtype"],
                "numel": math.prod(outv.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        spec = seg.spec
        if spec["w8a8"]:
            cfg = seed_kernel.w8a8_config(spec["m"])
        else:
            cfg = seed_kernel.fit_group(seed_kernel.wxa16_config(spec["m"]), spec["group_size"])
        return {
            "BLOCK_M": cfg.block_m,
            "BLOCK_N": cfg.block_n,
            "BLOCK_K": cfg.block_k,
            "SPLIT_K": 1,
            "num_warps": cfg.num_warps,
            "num_stages": cfg.num_stages,
        }

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        p, spec, out = ctx.prefix, seg.spec, ctx.out_var
        refs = list(seg.inputs)
        x, packed, scales = (ctx.expr(r) for r in refs[:3])
        rest = [ctx.expr(r) for r in refs[3:]]
        zeros = rest.pop(0) if not spec["symmetric"] else f"{p}_s"
        bias = f"{p}_b" if spec["has_bias"] else f"{p}_s"
        bm, bn, bk = config["BLOCK_M"], config["BLOCK_N"], config["BLOCK_K"]
        launch = f"num_warps={config['num_warps']}, num_stages={config['num_stages']},"
        tiles = f"BLOCK_M={bm}, BLOCK_N={bn}, BLOCK_K={bk}, GROUP_M=8,"
        call = [
            f"{p}_x = {x}.reshape(-1, {x}.shape[-1]).contiguous()",
            f"{p}_w = {packed}.contiguous()",
            f"{p}_s = {scales}.contiguous()",
            f"{p}_z = {zeros}.contiguous()",
            *([f"{p}_b = {rest[-1]}.contiguous()"] if spec["has_bias"] else []),
            f"{p}_M, {p}_K = {p}_x.shape",
            f"{p}_N = {p}_w.shape[0]",
            f"{p}_group = {p}_K // {p}_s.shape[1]",
            f"{p}_out = torch.empty(({p}_M, {p}_N), device={p}_x.device, "
            f"dtype={_TORCH[spec['out_dtype']]})",
        ]
        if spec["w8a8"]:
            call += _w8a8_host(p, spec, config["SPLIT_K"], bk)
            kernel = f"{p}_w8a8_kernel"
            args = [
                f"{p}_xq, {p}_sx, {p}_w, {p}_s, {p}_z, {bias}, {p}_target,",
                f"{p}_M, {p}_N, {p}_K, {p}_group, {p}_kps, min({p}_group, {p}_kps),",
                f"{p}_xq.stride(0), {p}_w.stride(0), {p}_s.stride(0), {p}_N, {p}_M * {p}_N,",
                f"SYMMETRIC={spec['symmetric']}, HAS_BIAS={spec['has_bias']}, SPLIT_K={p}_split,",
            ]
        else:
            call += [
                f"{p}_kps = triton.cdiv(triton.cdiv({p}_K, {config['SPLIT_K']}), {bk}) * {bk}",
                f"{p}_split = triton.cdiv({p}_K, {p}_kps)",
            ]
            kernel = f"{p}_wxa16_kernel"
            # A half-precision reference rounds every dequantised weight to its dtype; the seed's
            # per-block shortcut (scale applied to the partial sum) skips that rounding and
            # misses the tolerance where outputs cancel, so it is kept to float32 weights.
            per_block = f"{p}_group % {bk} == 0" if spec["weight_dtype"] == "float32" else "False"
            args = [
                f"{p}_x, {p}_w, {p}_s, {p}_z, {bias}, {p}_target,",
                f"{p}_M, {p}_N, {p}_K, {p}_kps,",
                f"{p}_x.stride(0), {p}_w.stride(0), {p}_s.stride(0), {p}_N, {p}_M * {p}_N,",
                f"BITS={spec['bits']}, GROUP={p}_group, MID={spec['mid']!r}, "
                f"SYMMETRIC={spec['symmetric']},",
                f"SCALE_PER_BLOCK={per_block}, HAS_BIAS={spec['has_bias']}, SPLIT_K={p}_split,",
                f"DOT_FP32={p}_x.dtype == torch.bfloat16 and {p}_x.device.type == 'cpu',",
            ]
        call += [
            f"{p}_target = {p}_out if {p}_split == 1 else torch.empty(",
            f"    ({p}_split, {p}_M, {p}_N), device={p}_x.device, dtype=torch.float32)",
            f"if {p}_out.numel():",
            f"    {kernel}[(triton.cdiv({p}_M, {bm}) * triton.cdiv({p}_N, {bn}), {p}_split)](",
            *[f"        {line}" for line in args],
            f"        {tiles}",
            f"        {launch}",
            "    )",
            f"if {p}_split > 1 and {p}_out.numel():",
            f"    {p}_splitk_reduce_kernel[(triton.cdiv({p}_M * {p}_N, 1024),)](",
            f"        {p}_target, {bias}, {p}_out, {p}_M, {p}_N,",
            f"        SPLIT_K={p}_split, HAS_BIAS={spec['has_bias']}, BLOCK=1024,",
            "    )",
            f"{out} = {p}_out.view(*{x}.shape[:-1], {p}_N)",
        ]
        names = (_KERNELS_A8 if spec["w8a8"] else _KERNELS_A16) + ["_splitk_reduce_kernel"]
        return Emitted(seed.source(seed_kernel, names, p), call)


def _w8a8_host(p: str, spec: dict, split: int, bk: int) -> list[str]:
    """Row quantisation of x, then ``w8a8_linear``'s split plan: a split of a per-channel weight
    takes whole BLOCK_K steps, one of a grouped weight whole groups (each group's int32 sum is
    scaled once)."""
    return (
        [
            f"{p}_xq = torch.empty(({p}_M, {p}_K), device={p}_x.device, dtype=torch.int8)",
            f"{p}_sx = torch.empty(({p}_M,), device={p}_x.device, dtype=torch.float32)",
            f"if {p}_out.numel():",
            f"    {p}_quantize_rows_kernel[({p}_M,)](",
            f"        {p}_x, {p}_xq, {p}_sx, {p}_K, {p}_x.stride(0), {p}_xq.stride(0),",
            f"        EPS={spec['eps']!r}, BLOCK_K=min(triton.next_power_of_2({p}_K), 2048),",
            "    )",
        ]
        + (
            [f"{p}_kps = {p}_K"]
            if split == 1
            else [
                f"{p}_groups = {p}_K // {p}_group",
                f"if {p}_groups == 1:",
                f"    {p}_kps = triton.cdiv(triton.cdiv({p}_K, {split}), {bk}) * {bk}",
                "else:",
                f"    {p}_kps = triton.cdiv({p}_groups, min({split}, {p}_groups)) * {p}_group",
            ]
        )
        + [f"{p}_split = triton.cdiv({p}_K, {p}_kps)"]
    )
