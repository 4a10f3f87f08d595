"""Row normalisations: ``layer_norm``, ``rms_norm``, and RMSNorm written out by hand.

The hand-written RMSNorm is ``x * rsqrt(mean(x ** 2, -1, keepdim) + eps) * w`` (also
``w * (x * inv)``, ``x * (inv * w)``, no weight): matched op by op from the square, checking that
the value normalised is the one squared and that no intermediate is used elsewhere.

One program per row of the ``[rows, N]`` view (``N`` the product of the normalised dims). A row
that fits ``BLOCK`` is read once; a wider one takes a statistics pass and a normalising pass. The
layer-norm statistics pass combines per-tile means and centred sums of squares (Chan et al.), so
a large mean does not cancel the variance as a plain sum/sum-of-squares would.
"""

from __future__ import annotations

import math

from ..trace import Op, OpGraph, Ref
from . import epilogue
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
# torch.finfo(dtype).eps: rms_norm's eps when none is given.
_FINFO_EPS = {
    "float32": 1.1920928955078125e-07,
    "float16": 0.0009765625,
    "bfloat16": 0.0078125,
    "float64": 2.220446049250313e-16,
}


def _sole_user(graph: OpGraph, op: Op, claimed: set[str]) -> Op | None:
    ref = Ref(op.name)
    users = graph.users(ref)
    if graph.is_output(ref) or len(users) != 1 or users[0].name in claimed:
        return None
    return users[0]


def _other(op: Op, ref: Ref) -> object | None:
    """The operand of binary ``op`` that is not ``ref`` (None if ``ref`` is not an operand)."""
    if len(op.args) != 2:
        return None
    a, b = op.args
    if a == ref:
        return b
    return a if b == ref else None


def _is_mul_of(op: Op | None, ref: Ref) -> object | None:
    if op is None or op.op != "mul" or op.kwargs:
        return None
    return _other(op, ref)


class Norm:
    name = "norm"
    knobs = {"MAX_BLOCK": (256, 1024, 4096, 8192, 16384), "num_warps": (1, 2, 4, 8, 16)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed:
            return None
        if op.op == "layer_norm":
            found = self._layer_norm(graph, op)
        elif op.op == "rms_norm":
            found = self._rms_norm_op(graph, op)
        else:
            found = self._rms_by_hand(graph, op, claimed)
        if found is None:
            return None
        kind, x, k, weight, bias, eps, ops = found
        src = graph.value_of(x)
        available = available_before(graph, index)
        norm_out = Ref(ops[-1])
        out = graph.value_of(norm_out)
        params = [r for r in (weight, bias) if r is not None]
        if src is None or src.dtype not in _FLOATS or out is None or out.shape != src.shape:
            return None
        if not all(available(r) for r in params) or not 0 < k <= src.rank:
            return None
        for r in params:
            v = graph.value_of(r)
            if v is None or v.shape != src.shape[src.rank - k :] or v.dtype not in _FLOATS:
                return None
        ep, ep_ops, ep_refs, final = epilogue.fuse(graph, norm_out, claimed, available)
        row = 1
        for s in src.shape[src.rank - k :]:
            row *= s
        return Segment(
            self.name,
            op.name,
            [*ops, *ep_ops],
            [x, *params, *ep_refs],
            final,
            {
                "kind": kind,
                "k": k,
                "eps": eps if isinstance(eps, str) else float(eps),
                "weight": weight is not None,
                "bias": bias is not None,
                "row": row,
                "epilogue": ep,
                "out_dtype": ep["out_dtype"] if ep_ops else out.dtype,
                "numel": math.prod(src.shape),
            },
        )

    @staticmethod
    def _layer_norm(graph: OpGraph, op: Op):
        a = list(op.args) + [None] * (5 - len(op.args))
        x, shape, weight, bias = a[0], a[1], a[2], a[3]
        eps = a[4] if a[4] is not None else op.kwargs.get("eps", 1e-5)
        weight = weight if weight is not None else op.kwargs.get("weight")
        bias = bias if bias is not None else op.kwargs.get("bias")
        src = graph.value_of(x) if isinstance(x, Ref) else None
        if src is None or not isinstance(shape, tuple | list) or not shape:
            return None
        if tuple(shape) != src.shape[src.rank - len(shape) :]:
            return None
        return "layer", x, len(shape), weight, bias, eps, [op.name]

    @staticmethod
    def _rms_norm_op(graph: OpGraph, op: Op):
        a = list(op.args) + [None] * (4 - len(op.args))
        x, shape = a[0], a[1]
        weight = a[2] if a[2] is not None else op.kwargs.get("weight")
        eps = a[3] if a[3] is not None else op.kwargs.get("eps")
        src = graph.value_of(x) if isinstance(x, Ref) else None
        if src is None or not isinstance(shape, tuple | list) or not shape:
            return None
        if tuple(shape) != src.shape[src.rank - len(shape) :]:
            return None
        eps = eps if eps is not None else _FINFO_EPS.get(src.dtype)
        return "rms", x, len(shape), weight, None, eps, [op.name]

    @staticmethod
    def _rms_by_hand(graph: OpGraph, op: Op, claimed: set[str]):
        """pow(x, 2) | x * x | square(x) -> mean(-1, keepdim) -> + eps -> rsqrt -> * x [* w]."""
        a = op.args
        if op.op == "pow" and len(a) == 2 and a[1] in (2, 2.0):
            x = a[0]
        elif op.op == "mul" and len(a) == 2 and a[0] == a[1]:
            x = a[0]
        elif op.op == "square" and len(a) == 1:
            x = a[0]
        else:
            return None
        src = graph.value_of(x) if isinstance(x, Ref) else None
        if src is None or not src.rank:
            return None
        mean = _sole_user(graph, op, claimed)
        if mean is None or (mean.op, mean.overload) != ("mean", "dim") or len(mean.args) < 3:
            return None
        dims, keepdim = mean.args[1], mean.args[2]
        if not keepdim or mean.kwargs.get("dtype") is not None:
            return None
        if not isinstance(dims, tuple | list) or [d % src.rank for d in dims] != [src.rank - 1]:
            return None
        add = _sole_user(graph, mean, claimed)
        eps = _other(add, Ref(mean.name)) if add is not None and add.op == "add" else None
        if isinstance(eps, Ref):  # self.eps: read from the instance at run time (trace.py)
            source = graph.input(eps.name)
            eps = f"self.{source.target}" if source and source.kind == "attr" else None
        if isinstance(eps, bool) or not isinstance(eps, int | float | str) or add.kwargs:
            return None
        rsqrt = _sole_user(graph, add, claimed)
        if rsqrt is None or rsqrt.op != "rsqrt":
            return None
        user = _sole_user(graph, rsqrt, claimed)
        other = _is_mul_of(user, Ref(rsqrt.name))
        ops = [op.name, mean.name, add.name, rsqrt.name, user.name if user else ""]
        weight = None
        if other == x:  # x * inv, then maybe * w
            nxt = _sole_user(graph, user, claimed)
            w = _is_mul_of(nxt, Ref(user.name))
            if isinstance(w, Ref) and w != x and _is_weight(graph, w, src.shape[-1]):
                weight = w
                ops.append(nxt.name)
        elif isinstance(other, Ref) and _is_weight(graph, other, src.shape[-1]):  # x * (inv * w)
            nxt = _sole_user(graph, user, claimed)
            if _is_mul_of(nxt, Ref(user.name)) != x:
                return None
            weight = other
            ops.append(nxt.name)
        else:
            return None
        return "rms", x, 1, weight, None, eps, ops

    def default(self, seg: Segment) -> Config:
        return {"MAX_BLOCK": 8192, "num_warps": 8 if seg.spec["row"] >= 4096 else 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        ep = spec["epilogue"]
        params = ["x_ptr", "out_ptr"]
        params += ["w_ptr"] if spec["weight"] else []
        params += ["b_ptr"] if spec["bias"] else []
        params += ["N", "xs0", "xs1", "L", "eps", *epilogue.kernel_params(ep)]
        params += ["BLOCK: tl.constexpr", "SINGLE: tl.constexpr"]
        kernel = (
            "@triton.jit\n"
            f"def {p}_kernel({', '.join(params)}):\n"
            + "\n".join("    " + line for line in _body(spec))
            + "\n"
        )
        names = [ctx.expr(r) for r in seg.inputs]
        x, out = names[0], ctx.out_var
        n_params = int(spec["weight"]) + int(spec["bias"])
        rank = graph.value_of(seg.inputs[0]).rank
        row = " * ".join(f"{x}.shape[{d}]" for d in range(rank - spec["k"], rank))
        cap = config["MAX_BLOCK"]
        call = [
            f"{p}_N = {row}",
            f"{p}_x = {x}.reshape(-1, {p}_N)",
            f"{out} = torch.empty({x}.shape, device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"{p}_BLOCK = min(triton.next_power_of_2({p}_N), {cap})",
            *epilogue.host_lines(p, ep, names[1 + n_params :], out),
            f"if {out}.numel():",
            f"    {p}_kernel[({p}_x.shape[0],)](",
            f"        {p}_x, {out}, "
            + "".join(f"{t}.reshape(-1), " for t in names[1 : 1 + n_params]),
            f"        {p}_N, *{p}_x.stride(), {out}.shape[-1], {_eps(spec['eps'])},",
            f"        {epilogue.host_args(p)},",
            f"        BLOCK={p}_BLOCK, SINGLE={p}_N <= {p}_BLOCK, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(kernel, call)


def _eps(eps: float | str) -> str:
    """A literal, or ``float(self.eps)`` for an epsilon the model holds as an attribute."""
    return f"float({eps})" if isinstance(eps, str) else repr(eps)


def _is_weight(graph: OpGraph, ref: Ref, n: int) -> bool:
    v = graph.value_of(ref)
    return v is not None and v.shape == (n,)


def _finish(spec: dict, cols: str) -> list[str]:
    """Lines normalising the loaded ``x`` at columns ``cols`` and storing it."""
    lines = ["acc = (x - mean) * rstd" if spec["kind"] == "layer" else "acc = x * rstd"]
    if spec["weight"]:
        lines.append(f"acc = acc * tl.load(w_ptr + {cols}, mask=mask, other=0.0).to(tl.float32)")
    if spec["bias"]:
        lines.append(f"acc = acc + tl.load(b_ptr + {cols}, mask=mask, other=0.0).to(tl.float32)")
    lines.append(f"flat = row * N + {cols}")
    ep = spec["epilogue"]
    if ep["operands"]:
        lines += ["ep_rows = flat // L", "ep_cols = flat % L"]
    lines += epilogue.kernel_lines(ep, "ep_rows", "ep_cols", "mask")
    lines.append("tl.store(out_ptr + flat, acc.to(out_ptr.dtype.element_ty), mask=mask)")
    return lines


def _body(spec: dict) -> list[str]:
    layer = spec["kind"] == "layer"

    def load(cols: str) -> list[str]:
        return [
            f"mask = {cols} < N",
            f"x = tl.load(xrow + {cols} * xs1, mask=mask, other=0.0).to(tl.float32)",
        ]

    lines = [
        "row = tl.program_id(0).to(tl.int64)",
        "xrow = x_ptr + row * xs0",
        "c0 = tl.arange(0, BLOCK)",
        "if SINGLE:",
    ]
    single = load("c0")
    if layer:
        single += [
            "mean = tl.sum(x, axis=0) / N",
            "d = tl.where(mask, x - mean, 0.0)",
            "rstd = tl.rsqrt(tl.sum(d * d, axis=0) / N + eps)",
        ]
    else:
        single.append("rstd = tl.rsqrt(tl.sum(x * x, axis=0) / N + eps)")
    lines += ["    " + t for t in single + _finish(spec, "c0")]
    lines.append("else:")
    if layer:
        stats = [
            "mean = 0.0",
            "m2 = 0.0",
            "n = 0.0",
            "for start in range(0, N, BLOCK):",
            "    c = start + c0",
            *["    " + t for t in load("c")],
            "    cn = tl.minimum(N - start, BLOCK).to(tl.float32)",
            "    cmean = tl.sum(x, axis=0) / cn",
            "    d = tl.where(mask, x - cmean, 0.0)",
            "    total = n + cn",
            "    delta = cmean - mean",
            "    mean = mean + delta * (cn / total)",
            "    m2 = m2 + tl.sum(d * d, axis=0) + delta * delta * (n * cn / total)",
            "    n = total",
            "rstd = tl.rsqrt(m2 / N + eps)",
        ]
    else:
        stats = [
            "sq = tl.zeros([BLOCK], tl.float32)",
            "for start in range(0, N, BLOCK):",
            "    c = start + c0",
            *["    " + t for t in load("c")],
            "    sq += x * x",
            "rstd = tl.rsqrt(tl.sum(sq, axis=0) / N + eps)",
        ]
    stats += [
        "for start in range(0, N, BLOCK):",
        "    c = start + c0",
        *["    " + t for t in load("c")],
        *["    " + t for t in _finish(spec, "c")],
    ]
    lines += ["    " + t for t in stats]
    return lines
