"""conv2d (groups=1) with a fused epilogue: the modules' implicit-GEMM seed kernel, copied.

The kernel is ``kernels/conv.py``'s ``conv2d_kernel`` (rows = output pixels, columns = output
channels, reduction = taps x input channels; x read channels-last), renamed with the segment's
prefix. Its fixed ``_activate`` hook is replaced by the fused chain: an eval-mode
``batch_norm`` (a per-channel affine of the running statistics) and then any elementwise ops.

Epilogue operands are addressed through their own (n, h, w, c) broadcast strides of the NCHW
output, so a per-channel vector (``bias.view(1, C, 1, 1)``), a scalar or a full residual all
load in place, whatever the output's memory format; no operand is materialised.

Stride, padding and dilation are read at run time from the module that owns the filter
(``self.conv`` for ``nn.Conv2d``; ``self`` for a functional conv, e.g. ``F.conv2d(x, w, b,
self.stride, ...)``), because hold-out variants may construct the model with other values; the
traced values stand in when that object has no such attribute.
"""

from __future__ import annotations

import math

from ....kernels import conv as seed_kernel
from ..trace import Op, OpGraph, Ref
from . import epilogue, seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
NARROW_CHANNELS = 16  # input channels below one reduction block
_HOOK = "    acc = _activate(acc, ACTIVATION)\n"
_HOOK_PARAM = "    ACTIVATION: tl.constexpr,\n"
_PARAMS_AFTER = "    dil_w,\n"


class Conv2d:
    name = "conv2d"
    knobs = {
        "BLOCK_M": (32, 64, 128, 256),
        "BLOCK_N": (16, 32, 64, 128, 256),
        "BLOCK_K": (16, 32, 64),
        "GROUP_M": (1, 4, 8),
        "num_warps": (2, 4, 8),
        "num_stages": (1, 2, 3, 4),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed:
            return None
        hyper = _hyper(op)
        if hyper is None:
            return None
        x, w, bias = op.args[0], op.args[1], op.args[2] if len(op.args) > 2 else None
        vx, vw, out = graph.value_of(x), graph.value_of(w), graph.value_of(Ref(op.name))
        if vx is None or vw is None or out is None or vx.rank != 4 or vw.rank != 4:
            return None
        if not vx.dtype == vw.dtype == out.dtype or out.dtype not in _FLOATS:
            return None
        if vx.shape[1] < NARROW_CHANNELS and vw.shape[2] * vw.shape[3] > 9:
            # A stem layer (3 channels, 11x11): this kernel's reduction steps tap by tap over a
            # mostly masked channel block; the general conv template (convnd.py) reduces over
            # taps x channels flattened, dense. Under the interpreter that is 121 steps vs 6.
            return None
        if bias is not None and not (isinstance(bias, Ref) and _vector(graph, bias)):
            return None
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
            "hyper": hyper,
            "holder": _holder(graph, w),
            "bias": bias is not None,
            "bn": bn,
            "dtype": vx.dtype,
            "channels": [vx.shape[1], vw.shape[0]],
            "numel": math.prod(out.shape),
            "epilogue": {**ep, "out_dtype": ep["out_dtype"] or out.dtype},
        }
        return Segment(self.name, op.name, ops + more, inputs + operands, final, spec)

    def default(self, seg: Segment) -> Config:
        c_in, c_out = seg.spec["channels"]
        wide = seg.spec["dtype"] != "float32"  # tensor cores; ieee fp32 wants smaller tiles
        bn = max(16, min(128 if wide else 64, pow2_at_least(c_out)))
        return {
            "BLOCK_M": 128 if wide else 64,
            "BLOCK_N": bn,
            "BLOCK_K": max(16, min(64 if wide else 32, pow2_at_least(c_in))),
            "GROUP_M": 8,
            "num_warps": 8 if wide and bn >= 128 else 4,
            "num_stages": 3,
        }

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, y = seg.spec, ctx.prefix, ctx.out_var
        ep, bn = spec["epilogue"], spec["bn"]
        x = [ctx.expr(r) for r in seg.inputs]
        n_fixed = 2 + spec["bias"] + (len(bn["refs"]) if bn else 0)
        xin, w = x[0], x[1]
        bias = x[2] if spec["bias"] else None
        bn_exprs = dict(zip(bn["refs"], x[2 + spec["bias"] : n_fixed], strict=True)) if bn else {}
        operands = x[n_fixed:]
        (sh, sw), (ph, pw), (dh, dw) = spec["hyper"]
        holder = spec["holder"]
        call = [
            f"{p}_s = {p}_pair(getattr({holder}, 'stride', None), ({sh}, {sw}))",
            f"{p}_d = {p}_pair(getattr({holder}, 'dilation', None), ({dh}, {dw}))",
            # A non-zero padding mode pads in a separate op: the conv itself then pads nothing.
            f"{p}_p = {p}_pair(getattr({holder}, 'padding', None), ({ph}, {pw}))",
            f"if getattr({holder}, 'padding_mode', 'zeros') != 'zeros':",
            f"    {p}_p = ({ph}, {pw})",
            f"{p}_n, {p}_ci, {p}_h, {p}_wd = {xin}.shape",
            f"{p}_co, {p}_kh, {p}_kw = {w}.shape[0], {w}.shape[2], {w}.shape[3]",
            f"{p}_oh = ({p}_h + 2 * {p}_p[0] - {p}_d[0] * ({p}_kh - 1) - 1) // {p}_s[0] + 1",
            f"{p}_ow = ({p}_wd + 2 * {p}_p[1] - {p}_d[1] * ({p}_kw - 1) - 1) // {p}_s[1] + 1",
            f"{p}_cl = {xin}.dim() == 4 and not {xin}.is_contiguous() and "
            f"{xin}.is_contiguous(memory_format=torch.channels_last)",
            f"{p}_fmt = torch.channels_last if {p}_cl else torch.contiguous_format",
            f"{y} = torch.empty(({p}_n, {p}_co, {p}_oh, {p}_ow), device={xin}.device, "
            f"dtype={TORCH_DTYPES[ep['out_dtype']]}, memory_format={p}_fmt)",
            # Gathered NCHW loads stride by H*W along the reduction: read x channels-last.
            f"{p}_x = {xin}.contiguous(memory_format=torch.channels_last)",
            f"{p}_w = {w}.permute(0, 2, 3, 1).contiguous()",
            f"{p}_ep = []",
        ]
        for r in bn["refs"] if bn else []:
            e = bn_exprs[r]
            call.append(f"{p}_ep += [{e}, {e}.stride(0)]")
        if operands:
            call += [
                f"for _t in ({', '.join(operands)},):",
                f"    _t = _t.expand({y}.shape)",
                f"    {p}_ep += [_t, _t.stride(0), _t.stride(2), _t.stride(3), _t.stride(1)]",
            ]
        bm, bnk, bk = config["BLOCK_M"], config["BLOCK_N"], config["BLOCK_K"]
        call += [
            f"{p}_m = {p}_n * {p}_oh * {p}_ow",
            f"if {y}.numel():",
            f"    {p}_grid = (triton.cdiv({p}_m, {bm}) * triton.cdiv({p}_co, {bnk}),)",
            f"    {p}conv2d_kernel[{p}_grid](",
            f"        {p}_x, {p}_w, {bias + '.contiguous()' if bias else y}, {y},",
            f"        {p}_m, {p}_h, {p}_wd, {p}_ci, {p}_oh, {p}_ow, {p}_co,",
            f"        {p}_x.stride(0), {p}_x.stride(2), {p}_x.stride(3), {p}_x.stride(1),",
            f"        *{p}_w.stride(),",
            f"        {y}.stride(0), {y}.stride(2), {y}.stride(3), {y}.stride(1),",
            f"        *{p}_s, *{p}_p, *{p}_d, *{p}_ep,",
            f"        KH={p}_kh, KW={p}_kw, HAS_BIAS={bias is not None},",
            f"        PRECISION={'ieee' if spec['dtype'] == 'float32' else 'tf32'!r},",
            # The interpreter multiplies bfloat16 dot operands wrongly; fp32 operands are exact.
            f"        DOT_FP32={xin}.device.type == 'cpu',",
            f"        EVEN_K={p}_ci % {bk} == 0,",
            f"        BLOCK_M={bm}, BLOCK_N={bnk}, BLOCK_K={bk}, GROUP_M={config['GROUP_M']},",
            f"        num_warps={config['num_warps']}, num_stages={config['num_stages']},",
            "    )",
        ]
        return Emitted(_helper(p) + "\n\n" + _kernel(p, ep, bn), call)


def _kernel(prefix: str, ep: dict, bn: dict | None) -> str:
    text = seed.source(seed_kernel, ["conv2d_kernel"], prefix)
    for piece in (_HOOK, _HOOK_PARAM, _PARAMS_AFTER):
        if text.count(piece) != 1:
            raise ValueError(f"the conv seed kernel changed: no single {piece.strip()!r}")
    params = []
    if bn:
        params += [f"bn_{k}_ptr, bn_{k}_s" for k in bn["names"]]
    params += [f"e{i}_ptr, e{i}_sn, e{i}_sh, e{i}_sw, e{i}_sc" for i in range(ep["operands"])]
    text = text.replace(_HOOK_PARAM, "")
    text = text.replace(_PARAMS_AFTER, _PARAMS_AFTER + "".join(f"    {q},\n" for q in params))
    lines = ["mask = mask_m[:, None] & mask_n[None, :]", *batch_norm_lines(bn, "offs_n")]
    for i in range(ep["operands"]):
        rows = f"img.to(tl.int64) * e{i}_sn + oh.to(tl.int64) * e{i}_sh + ow * e{i}_sw"
        lines += [
            f"e{i}_rows = {rows}",
            f"o{i} = tl.load(e{i}_ptr + e{i}_rows[:, None] + offs_n[None, :] * e{i}_sc, "
            "mask=mask, other=0.0).to(tl.float32)",
        ]
    if ep["lines"]:
        lines += ep["lines"]
        lines.append(f"acc = {ep['result']}")
    return text.replace(_HOOK, "".join(f"    {line}\n" for line in lines))


def batch_norm_lines(bn: dict | None, channels: str) -> list[str]:
    """Kernel lines applying an eval-mode batch norm to ``acc`` (columns are output channels,
    indexed by ``channels``); none without one. Shared with the N-d conv templates."""
    if not bn:
        return []
    lines = [
        f"bn_{k} = tl.load(bn_{k}_ptr + {channels} * bn_{k}_s, mask=mask_n, other=0.0)"
        ".to(tl.float32)"
        for k in bn["names"]
    ]
    scale = f"tl.rsqrt(bn_var + {bn['eps']!r})"
    if "weight" in bn["names"]:
        scale = f"{scale} * bn_weight"
    shift = " + bn_bias[None, :]" if "bias" in bn["names"] else ""
    return [*lines, f"acc = (acc - bn_mean[None, :]) * ({scale})[None, :]{shift}"]


def pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def _helper(prefix: str) -> str:
    return (
        f"def {prefix}_pair(v, traced):\n"
        "    if isinstance(v, int):\n"
        "        v = (v, v)\n"
        "    ok = isinstance(v, tuple | list) and len(v) == 2\n"
        "    if ok and all(isinstance(i, int) for i in v):\n"
        "        return (v[0], v[1])\n"
        "    return traced\n"
    )


def _hyper(op: Op) -> list | None:
    """[stride, padding, dilation] as pairs, for a groups=1 2-D conv; else None."""
    a = op.args
    if op.op == "conv2d" and op.overload == "default":
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        values = dict(zip(names, a, strict=False))
        values.update(op.kwargs)
        groups, transposed = values.get("groups", 1), False
    elif op.op == "convolution" and op.overload == "default" and len(a) == 9:
        keys = ("input", "weight", "bias", "stride", "padding", "dilation")
        values = dict(zip(keys, a[:6], strict=True))
        groups, transposed = a[8], a[6]
    else:
        return None
    if groups != 1 or transposed:
        return None
    if not isinstance(values.get("input"), Ref) or not isinstance(values.get("weight"), Ref):
        return None
    out = []
    for key, fallback in (("stride", 1), ("padding", 0), ("dilation", 1)):
        v = values.get(key, fallback)
        v = (v, v) if isinstance(v, int) else tuple(v) if isinstance(v, tuple | list) else None
        if v is None or len(v) != 2 or not all(isinstance(i, int) for i in v):
            return None
        out.append(list(v))
    return out


def _batch_norm(graph: OpGraph, conv: Ref, claimed: set[str], available) -> tuple | None:
    """An eval-mode ``batch_norm`` right after the conv: (op, spec["bn"]) or None."""
    if graph.is_output(conv):
        return None
    users = graph.users(conv)
    if len(users) != 1 or users[0].op != "batch_norm" or users[0].name in claimed:
        return None
    op = users[0]
    a = op.args
    if len(a) < 8 or a[0] != conv or a[5] is not False or not isinstance(a[7], int | float):
        return None
    named = {"weight": a[1], "bias": a[2], "mean": a[3], "var": a[4]}
    if not isinstance(named["mean"], Ref) or not isinstance(named["var"], Ref):
        return None
    names, refs = [], []
    for key, ref in named.items():
        if ref is None:
            continue
        if not (isinstance(ref, Ref) and available(ref) and _vector(graph, ref)):
            return None
        names.append(key)
        refs.append(ref.name)
    return op, {"names": names, "refs": refs, "eps": float(a[7])}


def _vector(graph: OpGraph, ref: Ref) -> bool:
    v = graph.value_of(ref)
    return v is not None and v.rank == 1 and v.dtype in _FLOATS


def _holder(graph: OpGraph, weight: Ref) -> str:
    """The object whose stride/padding/dilation the conv uses: the filter's owning module."""
    inp = graph.input(weight.name)
    if inp is None or inp.kind != "param" or not inp.target or "." not in inp.target:
        return "self"
    out = "self"
    for part in inp.target.split(".")[:-1]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


__all__ = ["Conv2d"]
