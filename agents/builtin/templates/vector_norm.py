"""Vector norms, and tensors divided by their own norm, on ``kernels/norm.py``'s two passes.

Matches ``linalg_vector_norm`` (ord 1, 2, inf; what ``torch.norm(x, p=...)``,
``x.norm(dim=...)`` and ``F.normalize`` record) and ``linalg_norm`` without an ``ord`` (the
Frobenius norm), written out as its own value, and these chains ending in ``x / that``:

- ``x / linalg_vector_norm(x, ...)`` (Frobenius, L2, L1 normalisation; ``F.normalize``'s
  ``clamp_min(eps)`` and ``expand_as`` included);
- ``x / sum|mean(abs(x), dims, keepdim=True)`` (L1 by hand);
- ``x / sqrt(sum|mean(x ** 2, dims, keepdim=True) [+ eps])`` (L2 and RMS by hand).

Between the reduction and the divide the statistic may get, in this order: a mean, ``+ eps``,
a square root, ``+ eps``, ``clamp_min`` — the order the apply kernel finishes it in. The
reduced dims must be consecutive (``rowview.span``); the divide needs a statistic that
broadcasts back over ``x`` (``keepdim``, or every dim reduced). A whole-tensor norm is one
group, split across many programs like any other (partial sums, then a fixed-order combine).
"""

from __future__ import annotations

import math

from ..trace import Op, OpGraph, Ref
from . import epilogue, rowview
from .base import Config, EmitContext, Emitted, Segment, available_before
from .elementwise import TORCH_DTYPES
from .stat_norm import KNOBS, MAXABS, SUMABS, SUMSQ, default_config, launch, source

_FLOATS = {"float32", "float16", "bfloat16", "float64"}
_REDUCTIONS = {("sum", "dim_IntList"), ("sum", "default"), ("mean", "dim"), ("mean", "default")}
_ORDS = {2: (SUMSQ, True), 1: (SUMABS, False), math.inf: (MAXABS, False)}


def _sole_user(graph: OpGraph, op: Op, claimed: set[str]) -> Op | None:
    ref = Ref(op.name)
    users = graph.users(ref)
    if graph.is_output(ref) or len(users) != 1 or users[0].name in claimed:
        return None
    return users[0]


def _arg(op: Op, pos: int, name: str, default: object) -> object:
    return op.args[pos] if len(op.args) > pos else op.kwargs.get(name, default)


class VectorNorm:
    name = "vectornorm"
    knobs = KNOBS

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.name in claimed or not op.args or not isinstance(op.args[0], Ref):
            return None
        x = op.args[0]
        src = graph.value_of(x)
        if src is None or not src.rank or src.dtype not in _FLOATS:
            return None
        found = self._statistic(graph, op, claimed)
        if found is None or not available_before(graph, index)(x):
            return None
        kind, root, stat_op, ops = found
        if stat_op is op:  # linalg_vector_norm / linalg_norm (x, ord, dim, keepdim)
            dims, keepdim = _arg(op, 2, "dim", None), _arg(op, 3, "keepdim", False)
        elif stat_op.overload == "default":  # sum(x) / mean(x): every dim
            dims, keepdim = None, False
        else:
            dims, keepdim = _arg(stat_op, 1, "dim", None), _arg(stat_op, 2, "keepdim", False)
        span = rowview.span(dims, src.rank)
        stat = graph.value_of(Ref(stat_op.name))
        if span is None or stat is None or stat_op.kwargs.get("dtype") is not None:
            return None
        lo, hi = span
        spec = {"kind": kind, "root": root, "mean": stat_op.op == "mean", "eps": "0.0"}
        spec.update(eps_out="0.0", clamp=None, lo=lo, hi=hi, rank=src.rank)
        spec.update(keepdim=bool(keepdim), numel=math.prod(src.shape))
        spec["group"] = math.prod(src.shape[lo:hi])
        chain, div = self._finish(graph, stat_op, x, spec, claimed)
        broadcasts = keepdim or span == (0, src.rank)  # x / stat lines up dim by dim
        available = available_before(graph, index)
        refs = [x]
        if div is not None and broadcasts and graph.value_of(Ref(div.name)) == src:
            ep, ep_ops, ep_refs, output = epilogue.fuse(graph, Ref(div.name), claimed, available)
            ops += [o.name for o in chain] + [div.name, *ep_ops]
            refs += ep_refs
            spec["epilogue"] = ep
        elif stat_op is op and stat_op.op in ("linalg_vector_norm", "linalg_norm"):
            spec.update(eps="0.0", eps_out="0.0", clamp=None, root=root, epilogue=None)
            output = Ref(op.name)
        else:
            return None
        spec.update(stat_only=output == Ref(stat_op.name), out_dtype=graph.value_of(output).dtype)
        return Segment(self.name, op.name, ops, refs, output, spec)

    @staticmethod
    def _statistic(graph: OpGraph, op: Op, claimed: set[str]):
        """(kind, rooted, the op giving the statistic, ops so far) for a chain starting here."""
        if op.op == "linalg_vector_norm":
            order = _arg(op, 1, "ord", 2)
            if isinstance(order, bool) or order not in _ORDS:
                return None
            kind, root = _ORDS[order]
            return kind, root, op, [op.name]
        if op.op == "linalg_norm":
            dims = _arg(op, 2, "dim", None)
            if _arg(op, 1, "ord", None) is not None or (isinstance(dims, tuple | list) and
                                                       len(dims) > 2):  # fmt: skip
                return None
            return SUMSQ, True, op, [op.name]
        a = op.args
        if op.op == "abs" and len(a) == 1:
            kind = SUMABS
        elif op.op == "pow" and len(a) == 2 and not isinstance(a[1], bool) and a[1] in (2, 2.0):
            kind = SUMSQ
        elif (op.op == "mul" and len(a) == 2 and a[0] == a[1]) or (op.op == "square" and
                                                                  len(a) == 1):  # fmt: skip
            kind = SUMSQ
        else:
            return None
        red = _sole_user(graph, op, claimed)
        if red is None or (red.op, red.overload) not in _REDUCTIONS or red.args[0] != Ref(op.name):
            return None
        return kind, False, red, [op.name, red.name]

    @staticmethod
    def _finish(graph: OpGraph, stat_op: Op, x: Ref, spec: dict, claimed: set[str]):
        """The ops finishing the statistic up to ``x / stat`` (updating ``spec``), and the
        divide; (ops, None) when the chain does not end in that divide."""
        chain: list[Op] = []
        # Stages, in the order the kernel finishes a statistic: 0 raw, 1 eps added, 2 rooted,
        # 3 eps added after the root, 4 clamped.
        cur, stage = stat_op, 2 if spec["root"] else 0
        while (u := _sole_user(graph, cur, claimed)) is not None:
            args, ref = u.args, Ref(cur.name)
            other = args[1] if len(args) == 2 and args[0] == ref else None
            if u.op == "add" and len(args) == 2 and args[1] == ref:  # eps + stat
                other = args[0]
            if u.op == "div" and u.overload == "Tensor" and args == (x, ref) and not u.kwargs:
                return chain, u
            if (
                u.op == "add"
                and not u.kwargs
                and (eps := _scalar(graph, other))
                and stage in (0, 2)
            ):
                spec["eps" if stage == 0 else "eps_out"] = eps
                stage += 1
            elif u.op == "sqrt" and len(args) == 1 and spec["kind"] == SUMSQ and stage < 2:
                spec["root"], stage = True, 2
            elif u.op == "clamp_min" and (lo := _scalar(graph, other)) and stage < 4:
                spec["clamp"], stage = lo, 4
            elif u.op not in ("expand_as", "expand") or args[0] != ref:
                break
            chain.append(u)
            cur = u
        return chain, None

    def default(self, seg: Segment) -> Config:
        return default_config()

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p = seg.spec, ctx.prefix
        x, out = ctx.expr(seg.inputs[0]), ctx.out_var
        lo, hi, rank = spec["lo"], spec["hi"], spec["rank"]

        def product(dims: range) -> str:
            return " * ".join(f"{x}.shape[{d}]" for d in dims) or "1"

        view = ["1", product(range(lo)), product(range(lo, hi)), product(range(hi, rank))]
        if spec["stat_only"]:
            keep = ["1" if lo <= d < hi else f"{x}.shape[{d}]" for d in range(rank)]
            shape = keep if spec["keepdim"] else [keep[d] for d in range(rank) if not lo <= d < hi]
        else:
            shape = [f"{x}.shape[{d}]" for d in range(rank)]
        # Short rows reduced over the last dims: many groups side by side in one program.
        perm = (0, 3, 2, 1) if hi == rank and spec["group"] * 16 <= config["MAX_BLOCK"] else None
        lines = [
            f"{out} = torch.empty(({''.join(s + ', ' for s in shape)}), device={x}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            *launch(
                p,
                x,
                out,
                view,
                config,
                kind=spec["kind"],
                perm=perm,
                eps=spec["eps"],
                eps_out=spec["eps_out"],
                mean=spec["mean"],
                root=spec["root"],
                clamp=spec["clamp"],
                stat_only=spec["stat_only"],
                ep=spec["epilogue"],
                ep_operands=[ctx.expr(r) for r in seg.inputs[1:]],
            ),
        ]
        return Emitted(source(p, spec["epilogue"]), lines)


def _scalar(graph: OpGraph, value: object) -> str | None:
    """A float operand as a forward expression: a literal, or a model attribute (``self.eps``,
    which ``trace.py`` turns into an ``attr`` input) read at run time."""
    if isinstance(value, Ref):
        source = graph.input(value.name)
        return f"float(self.{source.target})" if source and source.kind == "attr" else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return repr(float(value))


__all__ = ["VectorNorm"]
