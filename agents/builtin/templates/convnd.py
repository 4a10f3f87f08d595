"""Convolution and transposed convolution of any rank, groups and geometry, with a fused epilogue.

Both templates copy one kernel, ``kernels/conv.py``'s implicit GEMM (1-d and 2-d convs run as
3-d ones with unit leading dims), and splice into it the fused chain: an eval-mode
``batch_norm`` (a per-channel affine of the running statistics; a training-mode one uses batch
statistics and is left to its own template) and then any elementwise ops. Epilogue operands
are read through their own (n, c, d, h, w) broadcast strides of the output, so a per-channel
bias, a scalar or a full residual load in place.

``conv2d`` with groups=1 and integer padding is claimed first by ``Conv2d`` (its seed kernel
is tuned for tensor cores); these take every other conv: 1-d and 3-d, grouped and depthwise,
string padding, and all transposed convs.

Geometry is read at run time from the module that owns the filter (``self.conv``; ``self``
for a functional conv), because hold-out variants may construct the model with other values;
the traced values stand in where that object has no such attribute. Groups of a conv follow
from the shapes (C_in / the filter's channels), of a transposed conv from the module.
"""

from __future__ import annotations

import math

from ..kernels import conv as conv_kernels
from ..trace import Op, OpGraph, Ref
from . import epilogue, seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .conv import _batch_norm, _holder, _vector, batch_norm_lines, pow2_at_least
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
_PARAM_HOOK = "    # (the builtin template splices its fused epilogue's operands in here)\n"
_BODY_HOOK = (
    "    # (the builtin template splices its fused epilogue in here: it reads acc, mask,\n"
    "    # img, od, oh, ow and co, and leaves the result in acc)\n"
)
# Argument names of each ATen overload (``convolution`` is the generic one).
_CONV = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_T = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
_GENERIC = _CONV[:6] + ("transposed", "output_padding", "groups")


def _geometry(op: Op) -> dict | None:
    """The traced geometry of a conv op: rank, stride, padding, dilation, groups, transposed,
    output_padding (each a list per spatial dim; padding may be "same"/"valid"), or None."""
    rank = {"1d": 1, "2d": 2, "3d": 3}
    if op.op in ("conv1d", "conv2d", "conv3d") and op.overload in ("default", "padding"):
        names, r, transposed = _CONV, rank[op.op[-2:]], False
    elif op.op.startswith("conv_transpose") and op.op[-2:] in rank:
        names, r, transposed = _CONV_T, rank[op.op[-2:]], True
    elif op.op == "convolution" and op.overload == "default":
        names, r, transposed = _GENERIC, None, None
    else:
        return None
    values = dict(zip(names, op.args, strict=False))
    values.update(op.kwargs)
    if transposed is None:
        transposed = values.get("transposed")
        stride = values.get("stride")
        r = len(stride) if isinstance(stride, tuple | list) else None
        if not isinstance(transposed, bool) or r not in (1, 2, 3):
            return None
    if not isinstance(values.get("input"), Ref) or not isinstance(values.get("weight"), Ref):
        return None
    geo: dict = {"rank": r, "transposed": transposed}
    for key, fallback in (("stride", 1), ("padding", 0), ("dilation", 1), ("output_padding", 0)):
        v = values.get(key, fallback)
        if key == "padding" and not transposed and v in ("same", "valid"):
            geo[key] = v
            continue
        v = [v] * r if isinstance(v, int) else list(v) if isinstance(v, tuple | list) else None
        if v is None or len(v) != r or not all(isinstance(i, int) for i in v):
            return None
        geo[key] = v
    groups = values.get("groups", 1)
    if not isinstance(groups, int) or groups < 1:
        return None
    geo["groups"] = groups
    return geo


class Conv:
    name = "conv"
    transposed = False
    knobs = {
        "BLOCK_M": (32, 64, 128, 256, 512),
        "BLOCK_N": (16, 32, 64, 128),
        "BLOCK_K": (2, 4, 8, 16, 32, 64, 128),  # the dot path takes at least 16 (tl.dot's minimum)
        "DOT": (False, True),  # tl.dot over one group's channels, or FMAs across groups
        "num_warps": (2, 4, 8),
        "num_stages": (1, 2, 3, 4),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed:
            return None
        geo = _geometry(op)
        if geo is None or geo["transposed"] != self.transposed:
            return None
        x, w = op.args[0], op.args[1]
        bias = op.args[2] if len(op.args) > 2 else op.kwargs.get("bias")
        vx, vw, out = graph.value_of(x), graph.value_of(w), graph.value_of(Ref(op.name))
        r = geo["rank"]
        if vx is None or vw is None or out is None or not vx.rank == vw.rank == r + 2:
            return None  # an unbatched input (rank r + 1) is left to PyTorch's semantics
        if not vx.dtype == vw.dtype == out.dtype or out.dtype not in _FLOATS:
            return None
        if bias is not None and not (isinstance(bias, Ref) and _vector(graph, bias)):
            return None
        groups, c_in = geo["groups"], vx.shape[1]
        if c_in % groups:
            return None
        if self.transposed:
            cin_g, cout_g = c_in // groups, vw.shape[1]
        else:
            cin_g, cout_g = vw.shape[1], vw.shape[0] // groups
        available = available_before(graph, index)
        ops, inputs = [op.name], [x, w] + ([bias] if bias is not None else [])
        bn, anchor = None, Ref(op.name)
        if (norm := _batch_norm(graph, anchor, claimed, available)) is not None:
            bn_op, bn = norm
            ops.append(bn_op.name)
            inputs += [Ref(n) for n in bn["refs"]]
            anchor = Ref(bn_op.name)
        ep, more, operands, final = epilogue.fuse(graph, anchor, claimed, available)
        spec = {
            "geometry": geo,
            "holder": _holder(graph, w),
            "bias": bias is not None,
            "bn": bn,
            "dtype": vx.dtype,
            "channels": [cin_g, cout_g, out.shape[1]],
            "taps": math.prod(vw.shape[2:]),
            "rows": math.prod(out.shape[:1] + out.shape[2:]),
            "numel": math.prod(out.shape),
            "epilogue": {**ep, "out_dtype": ep["out_dtype"] or out.dtype},
        }
        return Segment(self.name, op.name, ops + more, inputs + operands, final, spec)

    def default(self, seg: Segment) -> Config:
        spec = seg.spec
        cin_g, cout_g, c_out = spec["channels"]
        reduction = pow2_at_least(cin_g * spec["taps"])
        wide = spec["dtype"] != "float32"  # tensor cores; ieee fp32 wants smaller tiles
        # Packing groups into one column tile only pays when a group alone would leave most of
        # a dot's 16 columns empty (depthwise, narrow groups).
        dot = cout_g >= 8 or cout_g == c_out
        cols = pow2_at_least(cout_g if dot else c_out)
        if spec["numel"] <= 1 << 19:
            # An interpreter-sized problem (the CPU sizes): the interpreter pays per block op,
            # per program and loop step, so few programs with wide steps run fastest there.
            # The caps keep the tiles compilable on a GPU (shared memory, registers).
            bm = max(32, min(256, pow2_at_least(spec["rows"])))
            bn = max(16, min(128, cols))
            bk = max(16, min(64, reduction))
            if not dot:  # the direct path holds a [rows, K, columns] tile
                bk = max(4, min(bk, (1 << 17) // (bm * bn)))
            stages = 1
        else:
            bm = 128 if wide else 64
            bn = max(16, min(128 if wide else 64, cols)) if dot else max(16, min(32, cols))
            bk = max(16, min(64 if wide else 32, reduction)) if dot else 4
            stages = 3 if dot else 1
        return {
            "BLOCK_M": bm,
            "BLOCK_N": bn,
            "BLOCK_K": bk,
            "DOT": dot,
            # the direct path's 3-d gather needs the registers of 8 warps even at 64x4x32
            "num_warps": 8 if not dot or bm * bn >= 128 * 128 else 4,
            "num_stages": stages,
        }

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, y = seg.spec, ctx.prefix, ctx.out_var
        ep, bn, geo = spec["epilogue"], spec["bn"], spec["geometry"]
        x = [ctx.expr(r) for r in seg.inputs]
        n_fixed = 2 + spec["bias"] + (len(bn["refs"]) if bn else 0)
        xin, w = x[0], x[1]
        bias = x[2] if spec["bias"] else None
        bn_exprs = dict(zip(bn["refs"], x[2 + spec["bias"] : n_fixed], strict=True)) if bn else {}
        operands = x[n_fixed:]
        lead, shape5 = 3 - geo["rank"], f"{p}_n, {p}_cout, *{p}_o"
        call = [f"{p}_n, {p}_cin = {xin}.shape[0], {xin}.shape[1]"]
        if self.transposed:
            call += [
                f"{p}_k, {p}_s, {p}_p, {p}_d, {p}_i, {p}_o, {p}_g = "
                f"{p}_geometry({spec['holder']}, {xin}, {w})",
                f"{p}_cig, {p}_cog = {p}_cin // {p}_g, {w}.shape[1]",
                f"{p}_cout = {p}_cog * {p}_g",
                # (C_in, C_out/g, k...): group g's filters start at input channel g * C_in/g
                f"{p}_wg = ({p}_cig * {w}.stride(0), {w}.stride(1), {w}.stride(0))",
            ]
        else:
            call += [
                f"{p}_k, {p}_s, {p}_p, {p}_d, {p}_i, {p}_o = "
                f"{p}_geometry({spec['holder']}, {xin}, {w})",
                f"{p}_cig, {p}_cout = {w}.shape[1], {w}.shape[0]",
                f"{p}_g = {p}_cin // {p}_cig",
                f"{p}_cog = {p}_cout // {p}_g",
                f"{p}_wg = ({p}_cog * {w}.stride(0), {w}.stride(0), {w}.stride(1))",
            ]
        call += [
            f"{y} = torch.empty(({p}_n, {p}_cout, *{p}_o[{lead}:]), device={xin}.device, "
            f"dtype={TORCH_DTYPES[ep['out_dtype']]})",
            # Channels-last x: a chunk of one tap's channels is one contiguous read.
            f"{p}_x = {xin}.reshape({p}_n, {p}_cin, *{p}_i).permute(0, 2, 3, 4, 1).contiguous()"
            ".permute(0, 4, 1, 2, 3)",
            f"{p}_w = {w}.reshape({w}.shape[0], {w}.shape[1], *{p}_k)",
            f"{p}_y = {y}.view({shape5})",
            f"{p}_ep = []",
        ]
        for r in bn["refs"] if bn else []:
            e = bn_exprs[r]
            call.append(f"{p}_ep += [{e}, {e}.stride(0)]")
        if operands:
            call += [
                f"for _t in ({', '.join(operands)},):",
                f"    _t = _t.expand({y}.shape).reshape({shape5})",
                f"    {p}_ep += [_t, *_t.stride()]",
            ]
        bm, bnk, bk, dot = config["BLOCK_M"], config["BLOCK_N"], config["BLOCK_K"], config["DOT"]
        bk = max(bk, 16) if dot else bk
        cols = f"{p}_g * triton.cdiv({p}_cog, {bnk})" if dot else f"triton.cdiv({p}_cout, {bnk})"
        call += [
            f"{p}_m = {p}_n * {p}_o[0] * {p}_o[1] * {p}_o[2]",
            f"if {y}.numel():",
            f"    {p}conv_kernel[(triton.cdiv({p}_m, {bm}), {cols})](",
            f"        {p}_x, {p}_w, {bias + '.contiguous()' if bias else y}, {p}_y,",
            f"        {p}_m, {p}_cig, {p}_cog, {p}_cout, *{p}_i, *{p}_o,",
            f"        *{p}_x.stride(), *{p}_wg, *{p}_w.stride()[2:], *{p}_y.stride(), *{p}_ep,",
            f"        KD={p}_k[0], KH={p}_k[1], KW={p}_k[2],",
            f"        STRIDE_D={p}_s[0], STRIDE_H={p}_s[1], STRIDE_W={p}_s[2],",
            f"        PAD_D={p}_p[0], PAD_H={p}_p[1], PAD_W={p}_p[2],",
            f"        DIL_D={p}_d[0], DIL_H={p}_d[1], DIL_W={p}_d[2],",
            f"        TRANSPOSED={self.transposed}, HAS_BIAS={bias is not None}, DOT={dot},",
            f"        PRECISION={'ieee' if spec['dtype'] == 'float32' else 'tf32'!r},",
            f"        DOT_FP32={xin}.device.type == 'cpu',",
            f"        BLOCK_M={bm}, BLOCK_N={bnk}, BLOCK_K={bk},",
            f"        num_warps={config['num_warps']}, num_stages={config['num_stages']},",
            "    )",
        ]
        return Emitted(self._helpers(p, geo) + "\n\n" + _kernel(p, ep, bn), call)

    def _helpers(self, p: str, geo: dict) -> str:
        r = geo["rank"]
        stride, dil, pad = tuple(geo["stride"]), tuple(geo["dilation"]), geo["padding"]
        pad = pad if isinstance(pad, str) else tuple(pad)
        lines = [
            f"def {p}_dims(v, traced):",
            "    if isinstance(v, int):",
            f"        return ({r} * (v,))",
            "    if isinstance(v, str):",
            "        return v",
            f"    ok = isinstance(v, tuple | list) and len(v) == {r}",
            "    return tuple(v) if ok and all(isinstance(i, int) for i in v) else traced",
            "",
            "",
            f"def {p}_geometry(m, x, w):",
            "    k = tuple(w.shape[2:])",
            "    size = tuple(x.shape[2:])",
            f"    s = {p}_dims(getattr(m, 'stride', None), {stride!r})",
            f"    d = {p}_dims(getattr(m, 'dilation', None), {dil!r})",
            f"    p = {p}_dims(getattr(m, 'padding', None), {pad!r})",
            # A non-zero padding mode pads in a separate op: the conv itself then pads nothing.
            "    if getattr(m, 'padding_mode', 'zeros') != 'zeros':",
            f"        p = {pad!r}",
        ]
        if self.transposed:
            out_pad = tuple(geo["output_padding"])
            lines += [
                f"    op = {p}_dims(getattr(m, 'output_padding', None), {out_pad!r})",
                "    g = getattr(m, 'groups', None)",
                f"    g = g if isinstance(g, int) else {geo['groups']}",
                "    o = tuple((i - 1) * si - 2 * pi + di * (ki - 1) + oi + 1"
                " for i, si, pi, di, ki, oi in zip(size, s, p, d, k, op))",
            ]
        else:
            lines += [
                "    if p == 'valid':",
                f"        p, total = {(0,) * r}, {(0,) * r}",
                "    elif p == 'same':",
                "        total = tuple(di * (ki - 1) for di, ki in zip(d, k))",
                # torch's "same" puts the odd unit of padding on the right
                "        p = tuple(t // 2 for t in total)",
                "    else:",
                "        total = tuple(2 * pi for pi in p)",
                "    o = tuple((i + t - di * (ki - 1) - 1) // si + 1 for i, t, di, ki, si in"
                " zip(size, total, d, k, s))",
            ]
        one, zero = (1,) * (3 - r), (0,) * (3 - r)
        out = f"    return {one} + k, {one} + s, {zero} + p, {one} + d, {one} + size, {one} + o"
        lines.append(out + (", g" if self.transposed else ""))
        return "\n".join(lines) + "\n"


class ConvTranspose(Conv):
    name = "conv_transpose"
    transposed = True


def _kernel(prefix: str, ep: dict, bn: dict | None) -> str:
    text = seed.source(conv_kernels, ["conv_kernel", "conv_source"], prefix)
    for piece in (_PARAM_HOOK, _BODY_HOOK):
        if text.count(piece) != 1:
            raise ValueError(f"the conv kernel changed: no single {piece.strip()!r}")
    params = []
    if bn:
        params += [f"bn_{k}_ptr, bn_{k}_s" for k in bn["names"]]
    params += [
        f"e{i}_ptr, e{i}_sn, e{i}_sc, e{i}_sd, e{i}_sh, e{i}_sw" for i in range(ep["operands"])
    ]
    text = text.replace(_PARAM_HOOK, "".join(f"    {q},\n" for q in params))
    lines = batch_norm_lines(bn, "co")
    for i in range(ep["operands"]):
        rows = f"img.to(tl.int64) * e{i}_sn + od * e{i}_sd + oh * e{i}_sh + ow * e{i}_sw"
        lines += [
            f"e{i}_rows = {rows}",
            f"o{i} = tl.load(e{i}_ptr + e{i}_rows[:, None] + co[None, :] * e{i}_sc, "
            "mask=mask, other=0.0).to(tl.float32)",
        ]
    if ep["lines"]:
        lines += ep["lines"]
        lines.append(f"acc = {ep['result']}")
    return text.replace(_BODY_HOOK, "".join(f"    {line}\n" for line in lines))


__all__ = ["Conv", "ConvTranspose"]
