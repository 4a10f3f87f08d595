"""Matrix products (``linear``, ``matmul``, ``mm``, ``bmm``, ``addmm``, ``baddbmm``) with a fused
epilogue.

Every form becomes one batched GEMM ``C[b] = A[b] @ B[b]`` on host views: ``linear`` flattens x
to ``[M, K]`` and reads the weight through its transpose, a batched ``matmul`` broadcasts its
batch dims (a stride-0 batch for a shared operand), and a transposed operand (``A.T @ B``) is
just other strides, so no operand is ever copied to make it contiguous. One program computes a
``[BLOCK_M, BLOCK_N]`` tile, launched in grouped order (``GROUP_M`` row tiles share B's column
panel in L2), with the batch on grid axis 1. The bias and the elementwise chain after the
product (activation, scale, residual) run on the fp32 accumulator before the one store.

float32 uses ``input_precision="ieee"``: the reference runs with TF32 off (tolerance 1e-4).
"""

from __future__ import annotations

import math

from ..trace import OpGraph, Ref
from . import epilogue
from .base import Config, EmitContext, Emitted, Segment, available_before, pow2_at_most
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}

_KERNEL = """
@triton.jit
def {p}_kernel(
    a_ptr, b_ptr, c_ptr, bias_ptr,
    M, N, K,
    s_ab, s_am, s_ak,
    s_bb, s_bk, s_bn,
    s_cm, s_cn,
    s_xm, s_xn,
    {ep_params}
    FP32_DOT: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % group_rows
    pid_n = (pid % per_group) // group_rows

    # int64 rows and columns: M*K or K*N elements (and the batch) can pass 2**31.
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    offs_k = tl.arange(0, BLOCK_K)
    mask_m = offs_m < M
    mask_n = offs_n < N
    a_ptrs = a_ptr + pid_b * s_ab + offs_m[:, None] * s_am + offs_k[None, :] * s_ak
    b_ptrs = b_ptr + pid_b * s_bb + offs_k[:, None] * s_bk + offs_n[None, :] * s_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        k_ok = offs_k < K - k
        a = tl.load(a_ptrs, mask=mask_m[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=k_ok[:, None] & mask_n[None, :], other=0.0)
        if FP32_DOT:
            acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc, input_precision=PRECISION)
        a_ptrs += BLOCK_K * s_ak
        b_ptrs += BLOCK_K * s_bk

    rows = pid_b * M + offs_m
    mask = mask_m[:, None] & mask_n[None, :]
{bias}{epilogue}
    c_ptrs = c_ptr + rows[:, None] * s_cm + offs_n[None, :] * s_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask)
"""


class Matmul:
    name = "matmul"
    knobs = {
        "BLOCK_M": (16, 32, 64, 128, 256),
        "BLOCK_N": (16, 32, 64, 128, 256),
        "BLOCK_K": (16, 32, 64),
        "GROUP_M": (1, 4, 8, 16),
        "num_warps": (2, 4, 8),
        "num_stages": (1, 2, 3, 4),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed:
            return None
        form = _form(graph, op)
        if form is None:
            return None
        kind, a, b, bias, alpha, beta = form
        out = graph.value_of(Ref(op.name))
        va, vb = graph.value_of(a), graph.value_of(b)
        if out is None or out.dtype not in _FLOATS or not va.dtype == vb.dtype == out.dtype:
            return None
        if bias is not None and graph.value_of(bias).dtype not in _FLOATS:
            return None
        ep, ops, operands, final = epilogue.fuse(
            graph, Ref(op.name), claimed, available_before(graph, index)
        )
        flat = kind == "linear" or vb.rank == 2  # batch rows fold into one [M, K] GEMM
        m = math.prod(va.shape[:-1]) if flat else va.shape[-2]
        spec = {
            "kind": kind,
            "ranks": [va.rank, vb.rank],
            "bias_rank": graph.value_of(bias).rank if bias is not None else None,
            "alpha": alpha,
            "beta": beta,
            "dtype": va.dtype,
            "mnk": [m, out.shape[-1], va.shape[-1]],
            "numel": math.prod(out.shape),
            "epilogue": {**ep, "out_dtype": ep["out_dtype"] or out.dtype},
        }
        inputs = [a, b] + ([bias] if bias is not None else []) + operands
        return Segment(self.name, op.name, [op.name, *ops], inputs, final, spec)

    def default(self, seg: Segment) -> Config:
        m, n, k = seg.spec["mnk"]
        if seg.spec["dtype"] == "float32":  # ieee fp32 runs on CUDA cores: smaller tiles
            bm, bn, bk, warps, stages = 64, 64, 32, 4, 3
        else:
            bm, bn, bk, warps, stages = 128, 128, 64, 8, 3
        return {
            "BLOCK_M": max(16, pow2_at_most(max(m, 16), bm)),
            "BLOCK_N": max(16, _pow2_at_least(n, bn)),
            "BLOCK_K": max(16, _pow2_at_least(k, bk)),
            "GROUP_M": 8,
            "num_warps": warps,
            "num_stages": stages,
        }

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        ep = spec["epilogue"]
        has_bias = spec["bias_rank"] is not None
        x = [ctx.expr(r) for r in seg.inputs]
        a, b = x[0], x[1]
        operands = x[3:] if has_bias else x[2:]
        call = _views(spec["kind"], spec["ranks"], a, b, p)
        dtype = TORCH_DTYPES[ep["out_dtype"]]
        call += [
            f"{p}_M, {p}_K, {p}_N = {p}_a.shape[1], {p}_a.shape[2], {p}_b.shape[2]",
            f"{out} = torch.empty({p}_shape, device={a}.device, dtype={dtype})",
            f"{p}_c = {out}.view(-1, {p}_N)",
        ]
        if has_bias:
            bias = x[2]
            if spec["bias_rank"] == 1:
                call.append(f"{p}_x = ({bias}, 0, {bias}.stride(0))")
            else:
                call += [
                    f"{p}_x = {bias}.expand({out}.shape).reshape(-1, {p}_N)",
                    f"{p}_x = ({p}_x, {p}_x.stride(0), {p}_x.stride(1))",
                ]
        else:
            call.append(f"{p}_x = ({p}_c, 0, 0)")
        call += epilogue.host_lines(p, ep, operands, out)
        bm, bn = config["BLOCK_M"], config["BLOCK_N"]
        call += [
            f"if {out}.numel():",
            f"    {p}_grid = (triton.cdiv({p}_M, {bm}) * triton.cdiv({p}_N, {bn}), {p}_a.shape[0])",
            f"    {p}_kernel[{p}_grid](",
            f"        {p}_a, {p}_b, {p}_c, {p}_x[0], {p}_M, {p}_N, {p}_K,",
            f"        *{p}_a.stride(), *{p}_b.stride(), *{p}_c.stride(), {p}_x[1], {p}_x[2],",
            f"        {epilogue.host_args(p)},",
            # The interpreter multiplies bfloat16 dot operands wrongly; fp32 operands are exact.
            f"        FP32_DOT={a}.device.type == 'cpu',",
            f"        PRECISION={'ieee' if spec['dtype'] == 'float32' else 'tf32'!r},",
            f"        BLOCK_M={bm}, BLOCK_N={bn}, BLOCK_K={config['BLOCK_K']},",
            f"        GROUP_M={config['GROUP_M']}, num_warps={config['num_warps']},",
            f"        num_stages={config['num_stages']},",
            "    )",
        ]
        ep_params = "".join(f"{name}, " for name in epilogue.kernel_params(ep))
        kernel = _KERNEL.format(
            p=p,
            ep_params=ep_params,
            bias=_bias_lines(spec),
            epilogue="".join(
                "    " + line + "\n"
                for line in epilogue.kernel_lines(ep, "rows[:, None]", "offs_n[None, :]", "mask")
            ),
        )
        return Emitted(kernel, call)


def _form(graph: OpGraph, op) -> tuple | None:
    """(kind, A, B, bias, alpha, beta) of a matrix-product op, or None."""
    a = op.args
    refs = [x for x in a if isinstance(x, Ref)]
    if any(graph.value_of(r) is None for r in refs):
        return None
    rank = [graph.value_of(r).rank for r in refs]
    if op.op == "linear" and op.overload == "default" and len(refs) in (2, 3):
        bias = a[2] if len(a) > 2 and isinstance(a[2], Ref) else None
        if refs[:2] != [a[0], a[1]] or rank[0] < 2 or rank[1] != 2:
            return None
        if bias is not None and graph.value_of(bias).rank != 1:
            return None
        return "linear", a[0], a[1], bias, 1.0, 1.0
    if op.op in ("matmul", "mm", "bmm") and op.overload == "default" and len(a) == 2:
        if len(refs) != 2 or min(rank) < 2:
            return None
        if op.op == "mm" and rank != [2, 2] or op.op == "bmm" and rank != [3, 3]:
            return None
        return op.op, a[0], a[1], None, 1.0, 1.0
    if op.op == "baddbmm" and op.overload == "default" and len(a) >= 3:
        return _baddbmm(graph, op)
    if op.op == "addmm" and op.overload == "default" and len(refs) == 3 and a[:3] == tuple(refs):
        beta = op.kwargs.get("beta", 1)
        alpha = op.kwargs.get("alpha", 1)
        if (
            rank[1:] != [2, 2]
            or rank[0] > 2
            or not all(isinstance(v, int | float) for v in (alpha, beta))
        ):
            return None
        return "addmm", a[1], a[2], a[0], float(alpha), float(beta)
    return None


def _baddbmm(graph: OpGraph, op) -> tuple | None:
    """``beta * input + alpha * (b1 @ b2)`` as a batched product with a bias. With ``beta == 0``
    ATen never reads ``input`` (GPT-2's upcast attention passes ``torch.empty``), so neither
    does the kernel; ``constants.py`` has already replaced such an unread allocation by 0."""
    inp, b1, b2 = op.args[:3]
    beta, alpha = op.kwargs.get("beta", 1), op.kwargs.get("alpha", 1)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (alpha, beta)):
        return None
    if not (isinstance(b1, Ref) and isinstance(b2, Ref)):
        return None
    if graph.value_of(b1).rank != 3 or graph.value_of(b2).rank != 3:
        return None
    if beta == 0:
        return "bmm", b1, b2, None, float(alpha), 1.0
    if not isinstance(inp, Ref) or graph.value_of(inp) is None or graph.value_of(inp).rank > 3:
        return None
    return "bmm", b1, b2, inp, float(alpha), float(beta)


def _views(kind: str, ranks: list[int], a: str, b: str, p: str) -> list[str]:
    """Host lines making ``{p}_a`` [batch, M, K], ``{p}_b`` [batch, K, N] and ``{p}_shape``."""
    if kind == "linear":
        return [
            f"{p}_a = {a}.reshape(-1, {a}.shape[-1]).unsqueeze(0)",
            f"{p}_b = {b}.t().unsqueeze(0)",
            f"{p}_shape = (*{a}.shape[:-1], {b}.shape[0])",
        ]
    ra, rb = ranks
    if rb == 2:  # a batch of A rows against one B: one big GEMM
        return [
            f"{p}_a = {a}.reshape(-1, {a}.shape[-1]).unsqueeze(0)",
            f"{p}_b = {b}.unsqueeze(0)",
            f"{p}_shape = (*{a}.shape[:-1], {b}.shape[-1])",
        ]
    return [
        f"{p}_batch = torch.broadcast_shapes({a}.shape[:-2], {b}.shape[:-2])",
        f"{p}_a = {a}.expand(*{p}_batch, *{a}.shape[-2:]).reshape(-1, *{a}.shape[-2:])",
        f"{p}_b = {b}.expand(*{p}_batch, *{b}.shape[-2:]).reshape(-1, *{b}.shape[-2:])",
        f"{p}_shape = (*{p}_batch, {a}.shape[-2], {b}.shape[-1])",
    ]


def _bias_lines(spec: dict) -> str:
    lines = []
    if spec["alpha"] != 1.0:
        lines.append(f"acc = acc * {spec['alpha']!r}")
    if spec["bias_rank"] == 1:
        load = "tl.load(bias_ptr + offs_n * s_xn, mask=mask_n, other=0.0).to(tl.float32)[None, :]"
    elif spec["bias_rank"] is not None:
        offs = "rows[:, None] * s_xm + offs_n[None, :] * s_xn"
        load = f"tl.load(bias_ptr + {offs}, mask=mask, other=0.0).to(tl.float32)"
    else:
        load = None
    if load is not None:
        scale = f" * {spec['beta']!r}" if spec["beta"] != 1.0 else ""
        lines.append(f"acc = acc + {load}{scale}")
    return "".join("    " + line + "\n" for line in lines)


def _pow2_at_least(n: int, cap: int) -> int:
    p = 16
    while p < min(n, cap):
        p *= 2
    return p


__all__ = ["Matmul"]
