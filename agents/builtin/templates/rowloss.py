"""Losses and similarities that reduce each row first: ``nn.TripletMarginLoss``,
``F.cosine_similarity``, ``F.cosine_embedding_loss``.

``kernels/loss.py``'s ``_row_loss`` gives one value per row (one program a row, the feature dim
streamed in ``BLOCK`` tiles); with a ``mean``/``sum`` reduction the rows' values are then summed
by ``_sum_partials`` (many programs) and ``_finish`` (one), so no value goes through the host.
``1 - cosine_similarity(a, b)`` and its mean are an elementwise term over the row values: the
loss template's, after this one.

Refused: a feature dim that is not the last, operands of different shapes (no broadcasting),
``p`` other than 1 or 2, ``swap=True``.
"""

from __future__ import annotations

from ..kernels import loss as loss_kernels
from ..trace import Op, OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES

_FLOATS = {"float32", "float16", "bfloat16"}
_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _args(op: Op, names: list[str], defaults: list) -> list:
    """``op``'s arguments by position or name, with ATen's defaults."""
    out = []
    for i, (name, default) in enumerate(zip(names, defaults, strict=True)):
        out.append(op.args[i] if i < len(op.args) else op.kwargs.get(name, default))
    return out


def _parse(op: Op) -> dict | None:
    """Kind, tensor operands and scalars of a row-loss op, or None."""
    if op.op == "triplet_margin_loss":
        names = ["anchor", "positive", "negative", "margin", "p", "eps", "swap", "reduction"]
        a, b, c, margin, p, eps, swap, red = _args(op, names, [None] * 3 + [1.0, 2.0, 1e-6, 0, 1])
        if swap or p not in (1, 2, 1.0, 2.0):
            return None
        return {"kind": loss_kernels.TRIPLET, "refs": [a, b, c], "margin": margin, "eps": eps,
                "p": int(p), "reduction": red}  # fmt: skip
    if op.op == "cosine_similarity":
        a, b, dim, eps = _args(op, ["x1", "x2", "dim", "eps"], [None, None, 1, 1e-8])
        return {"kind": loss_kernels.COSINE, "refs": [a, b], "margin": 0.0, "eps": eps, "p": 2,
                "reduction": 0, "dim": dim}  # fmt: skip
    if op.op == "cosine_embedding_loss":
        names = ["input1", "input2", "target", "margin", "reduction"]
        a, b, y, margin, red = _args(op, names, [None, None, None, 0.0, 1])
        return {"kind": loss_kernels.COSINE_EMBEDDING, "refs": [a, b, y], "margin": margin,
                "eps": 0.0, "p": 2, "reduction": red}  # fmt: skip
    return None


class RowLoss:
    name = "row_loss"
    knobs = {"BLOCK": (256, 512, 1024, 2048, 4096), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        parsed = _parse(op) if op.name not in claimed else None
        if parsed is None or parsed["reduction"] not in _REDUCTIONS:
            return None
        refs = parsed.pop("refs")
        if not all(isinstance(r, Ref) and available_before(graph, index)(r) for r in refs):
            return None
        if not all(isinstance(parsed[k], int | float) for k in ("margin", "eps")):
            return None
        values = [graph.value_of(r) for r in refs]
        if None in values or values[0].rank < 2 or values[0].dtype not in _FLOATS:
            return None
        if values[1].shape != values[0].shape or values[1].dtype not in _FLOATS:
            return None
        if parsed.pop("dim", -1) % values[0].rank != values[0].rank - 1:
            return None
        if parsed["kind"] == loss_kernels.TRIPLET and values[2].shape != values[0].shape:
            return None
        if parsed["kind"] == loss_kernels.COSINE_EMBEDDING and (
            values[0].rank != 2 or values[2].shape != values[0].shape[:1]
        ):
            return None
        out = graph.value_of(Ref(op.name))
        if out is None or out.dtype not in _FLOATS:
            return None
        rows = 1
        for s in values[0].shape[:-1]:
            rows *= s
        spec = {
            **parsed,
            "reduction": _REDUCTIONS[parsed["reduction"]],
            "features": values[0].shape[-1],
            "out_dtype": out.dtype,
            "numel": rows,
        }
        return Segment(self.name, op.name, [op.name], refs, Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024 if seg.spec["features"] >= 1024 else 256, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        x = [ctx.expr(r) for r in seg.inputs]
        a = x[0]
        dtype = TORCH_DTYPES[spec["out_dtype"]]
        views = [f"{t}.reshape(-1, {t}.shape[-1])" for t in x[:2]]
        if spec["kind"] == loss_kernels.COSINE:
            views.append(f"{p}_v[0]")  # no third operand: any tensor fills its place
        elif spec["kind"] == loss_kernels.COSINE_EMBEDDING:
            views.append(f"{x[2]}.unsqueeze(1)")
        else:
            views.append(f"{x[2]}.reshape(-1, {x[2]}.shape[-1])")
        none = spec["reduction"] == "none"
        rows = out if none else f"{p}_rows"
        call = [f"{p}_v = [{views[0]}, {views[1]}]", f"{p}_v.append({views[2]})"]
        call += [
            f"{p}_M, {p}_D = {p}_v[0].shape",
            f"{rows} = torch.empty({a}.shape[:-1], device={a}.device, "
            f"dtype={dtype if none else 'torch.float32'})",
            f"if {p}_M:",
            f"    {p}_row_loss[({p}_M,)](",
            f"        {p}_v[0], {p}_v[1], {p}_v[2], {rows}, {p}_D,",
            f"        *{p}_v[0].stride(), *{p}_v[1].stride(), *{p}_v[2].stride(),",
            f"        {float(spec['margin'])!r}, {float(spec['eps'])!r},",
            f"        KIND={spec['kind']}, P={spec['p']}, BLOCK={config['BLOCK']},",
            f"        num_warps={config['num_warps']},",
            "    )",
        ]
        names = ["_row_loss"]
        if not none:
            scale = f"1.0 / max({p}_M, 1)" if spec["reduction"] == "mean" else "1.0"
            call += [
                f"{p}_P = max(1, min(triton.cdiv({p}_M, 1024), 256))",
                f"{p}_part = torch.empty(({p}_P,), device={a}.device, dtype=torch.float32)",
                f"{p}_sum_partials[({p}_P,)]({rows}, {p}_part, {p}_M, BLOCK=1024)",
                f"{out} = torch.empty((), device={a}.device, dtype={dtype})",
                f"{p}_finish[(1,)]({p}_part, {out}, {p}_P, {scale}, "
                f"BLOCK=triton.next_power_of_2({p}_P))",
            ]
            names += ["_sum_partials", "_finish"]
        return Emitted(seed.source(loss_kernels, names, p), call)
