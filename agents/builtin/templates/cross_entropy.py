"""Cross-entropy of ``[M, C]`` logits against class indices: ``logsumexp(row) - row[target]``.

One program per row streams the classes in ``BLOCK``-wide tiles with an online max and sum, so
any number of classes works in one pass; the target's logit is a single gathered load. Rows
whose target is ``ignore_index`` lose 0 and, for ``mean``, are not counted, as in PyTorch. The
``mean``/``sum`` reductions are a second, single-program kernel over the per-row losses (fixed
order: the result does not depend on scheduling). No class weights, no label smoothing.
"""

from __future__ import annotations

from ..trace import OpGraph, Ref
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}  # ATen's enum


def _rows_kernel(p: str) -> str:
    return f"""@triton.jit
def {p}_rows(x_ptr, t_ptr, loss_ptr, C, xs0, xs1, ts0, IGNORE, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = x_ptr + row * xs0
    m = -float("inf")
    s = 0.0
    for start in range(0, C, BLOCK):
        c = start + tl.arange(0, BLOCK)
        x = tl.load(base + c * xs1, mask=c < C, other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    t = tl.load(t_ptr + row * ts0)
    valid = t != IGNORE
    picked = tl.load(base + tl.where(valid, t, 0) * xs1).to(tl.float32)
    loss = tl.where(valid, m + tl.log(s) - picked, 0.0)
    tl.store(loss_ptr + row, loss.to(loss_ptr.dtype.element_ty))
"""


def _total_kernel(p: str) -> str:
    return f"""@triton.jit
def {p}_total(loss_ptr, t_ptr, out_ptr, M, ts0, IGNORE, MEAN: tl.constexpr, BLOCK: tl.constexpr):
    acc = 0.0
    count = 0.0
    for start in range(0, M, BLOCK):
        r = start + tl.arange(0, BLOCK)
        mask = r < M
        acc += tl.sum(tl.load(loss_ptr + r, mask=mask, other=0.0), axis=0)
        t = tl.load(t_ptr + r.to(tl.int64) * ts0, mask=mask, other=IGNORE)
        count += tl.sum((t != IGNORE).to(tl.float32), axis=0)
    if MEAN:
        acc = acc / count
    tl.store(out_ptr, acc.to(out_ptr.dtype.element_ty))
"""


class CrossEntropy:
    name = "cross_entropy"
    knobs = {"BLOCK": (256, 1024, 4096, 8192), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or op.op != "cross_entropy_loss" or len(op.args) < 2:
            return None
        a = list(op.args) + [None] * (6 - len(op.args))
        x, t = a[0], a[1]
        weight = a[2] if a[2] is not None else op.kwargs.get("weight")
        reduction = a[3] if a[3] is not None else op.kwargs.get("reduction", 1)
        ignore = a[4] if a[4] is not None else op.kwargs.get("ignore_index", -100)
        smoothing = a[5] if a[5] is not None else op.kwargs.get("label_smoothing", 0.0)
        xv = graph.value_of(x) if isinstance(x, Ref) else None
        tv = graph.value_of(t) if isinstance(t, Ref) else None
        if xv is None or tv is None or xv.rank != 2 or tv.rank != 1 or xv.dtype not in _FLOATS:
            return None
        if tv.dtype not in ("int64", "int32") or weight is not None or smoothing:
            return None
        if reduction not in _REDUCTIONS or not isinstance(ignore, int):
            return None
        available = available_before(graph, index)
        if not (available(x) and available(t)):
            return None
        return Segment(
            self.name,
            op.name,
            [op.name],
            [x, t],
            Ref(op.name),
            {
                "reduction": _REDUCTIONS[reduction],
                "ignore_index": ignore,
                "classes": xv.shape[1],
                "out_dtype": op.value.dtype,
                "numel": xv.shape[0],
            },
        )

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 4096 if seg.spec["classes"] >= 4096 else 1024, "num_warps": 8}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        x, t = (ctx.expr(r) for r in seg.inputs)
        out, block, warps = ctx.out_var, config["BLOCK"], config["num_warps"]
        dtype = TORCH_DTYPES[spec["out_dtype"]]
        ignore = spec["ignore_index"]
        per_row = out if spec["reduction"] == "none" else f"{p}_loss"
        call = [
            f"{p}_M, {p}_C = {x}.shape",
            f"{per_row} = torch.empty(({p}_M,), device={x}.device, "
            f"dtype={dtype if per_row == out else 'torch.float32'})",
            f"if {p}_M:",
            f"    {p}_rows[({p}_M,)](",
            f"        {x}, {t}, {per_row}, {p}_C, *{x}.stride(), {t}.stride(0), {ignore},",
            f"        BLOCK=min(triton.next_power_of_2({p}_C), {block}), num_warps={warps},",
            "    )",
        ]
        if spec["reduction"] != "none":
            mean = spec["reduction"] == "mean"
            call += [
                f"{out} = torch.empty((), device={x}.device, dtype={dtype})",
                f"{p}_total[(1,)](",
                f"    {per_row}, {t}, {out}, {p}_M, {t}.stride(0), {ignore},",
                f"    MEAN={mean}, BLOCK=1024, num_warps=4,",
                ")",
            ]
        # The static gate rejects a kernel that is never launched: the total only when used.
        kernels = (
            _rows_kernel(p)
            if spec["reduction"] == "none"
            else _rows_kernel(p) + "\n\n" + _total_kernel(p)
        )
        return Emitted(kernels, call)
