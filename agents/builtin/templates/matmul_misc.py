"""Matrix products the general ``matmul`` template does not see, or would do wastefully.

- ``Einsum``: ``torch.einsum`` of two operands whose letters split into batch (both operands and
  the output), M (A and the output), N (B and the output) and K (both operands, summed). The
  operands are permuted and viewed as ``[batch, M, K]`` and ``[batch, K, N]`` on the host and the
  ``matmul`` template's GEMM runs on them. Refused: one operand or three, ``...``, a letter
  repeated in an operand (a diagonal), a letter summed in one operand only, an output order other
  than batch, M, N (that would need a strided store), epilogues.
- ``TriMatmul``: ``triu``/``tril`` of ``A @ B`` (2-D or equal-batch 3-D): ``_tri_matmul``.
- ``DiagMatmul``: ``diag(v) @ B`` and ``B @ diag(v)`` for a vector ``v``: ``_diag_scale``.
- ``Gemv``: ``mv(A, x)``, ``A @ x`` for a 1-D ``x`` or a ``[K, 1]`` ``B``, and ``x @ A``:
  ``_gemv``.

The kernels are ``kernels/matmul_misc.py``. These are heavy templates: they claim the product
before the general ``matmul`` template can.
"""

from __future__ import annotations

import dataclasses
import math

from ..kernels import matmul_misc as seed_kernel
from ..trace import Op, OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before, pow2_at_most
from .elementwise import TORCH_DTYPES
from .matmul import Matmul

_FLOATS = {"float32", "float16", "bfloat16"}
_PRODUCTS = {"matmul", "mm", "bmm"}


def _operands(graph: OpGraph, op: Op, index: int):
    """(A, B, their values) of a two-operand product available before ``index``, or None."""
    if len(op.args) != 2 or not all(isinstance(a, Ref) for a in op.args):
        return None
    values = [graph.value_of(a) for a in op.args]
    out = graph.value_of(Ref(op.name))
    if None in values or out is None or not all(v.dtype == out.dtype for v in values):
        return None
    if out.dtype not in _FLOATS or not all(available_before(graph, index)(a) for a in op.args):
        return None
    return op.args[0], op.args[1], values


def _only_user(graph: OpGraph, ref: Ref) -> Op | None:
    users = graph.users(ref)
    return users[0] if len(users) == 1 and not graph.is_output(ref) else None


class Einsum:
    name = "einsum"
    knobs = Matmul.knobs

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op != "einsum" or op.name in claimed or len(op.args) != 2:
            return None
        equation, operands = op.args
        if not isinstance(equation, str) or not isinstance(operands, tuple):
            return None
        parsed = _operands(graph, dataclasses.replace(op, args=operands), index)
        groups = (
            _einsum_groups(equation.replace(" ", ""), [v.rank for v in parsed[2]])
            if parsed
            else None
        )
        if groups is None:
            return None
        a, b, (va, vb) = parsed
        shared = set(groups["a"]) & set(groups["b"])
        if any(va.shape[groups["a"].index(c)] != vb.shape[groups["b"].index(c)] for c in shared):
            return None  # a size-1 letter broadcast against the other operand
        out = graph.value_of(Ref(op.name))
        size = {
            **dict(zip(groups["a"], va.shape, strict=True)),
            **dict(zip(groups["b"], vb.shape, strict=True)),
        }
        m, n, k = (math.prod(size[c] for c in groups[g]) for g in ("m", "n", "k"))
        spec = {
            "kind": "bmm",
            "ranks": [3, 3],
            "bias_rank": None,
            "alpha": 1.0,
            "beta": 1.0,
            "dtype": va.dtype,
            "mnk": [m, n, k],
            "numel": math.prod(out.shape),
            "epilogue": {"lines": [], "result": "acc", "operands": 0, "out_dtype": out.dtype},
            "einsum": groups,
        }
        return Segment(self.name, op.name, [op.name], [a, b], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return Matmul().default(seg)

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        g, p = seg.spec["einsum"], ctx.prefix
        a, b = (ctx.expr(r) for r in seg.inputs)
        where = {c: f"{a}.shape[{i}]" for i, c in enumerate(g["a"])}
        where.update({c: f"{b}.shape[{i}]" for i, c in enumerate(g["b"]) if c not in where})

        def size(letters: str) -> str:
            return " * ".join(where[c] for c in letters) or "1"

        def view(x: str, letters: str, order: tuple[str, str, str]) -> str:
            perm = tuple(letters.index(c) for c in "".join(order))
            return f"{x}.permute{perm}.reshape({', '.join(size(o) for o in order)})"

        call = [
            f"{p}_ea = {view(a, g['a'], (g['batch'], g['m'], g['k']))}",
            f"{p}_eb = {view(b, g['b'], (g['batch'], g['k'], g['n']))}",
        ]
        fake = [Ref(f"{p}_ea"), Ref(f"{p}_eb")]
        inner = EmitContext(p, {fake[0]: f"{p}_ea", fake[1]: f"{p}_eb"}, f"{p}_o3", ctx.dtype)
        emitted = Matmul().emit(graph, dataclasses.replace(seg, inputs=fake), config, inner)
        shape = "(" + "".join(f"{where[c]}, " for c in g["out"]) + ")"
        call += [*emitted.call, f"{ctx.out_var} = {p}_o3.view({shape})"]
        return Emitted(emitted.defs, call)


def _einsum_groups(equation: str, ranks: list[int]) -> dict | None:
    if equation.count("->") != 1 or "." in equation:
        return None
    ins, out = equation.split("->")
    parts = ins.split(",")
    if len(parts) != 2 or [len(x) for x in parts] != ranks:
        return None
    a, b = parts
    if any(len(set(x)) != len(x) or not x.isalpha() for x in (a, b)) or not out.isalpha():
        return None
    if len(set(out)) != len(out) or not set(out) <= set(a) | set(b):
        return None
    batch = "".join(c for c in out if c in a and c in b)
    m = "".join(c for c in out if c in a and c not in b)
    n = "".join(c for c in out if c in b and c not in a)
    k = "".join(c for c in a if c in b and c not in out)
    if set(a) != set(batch + m + k) or set(b) != set(batch + k + n) or out != batch + m + n:
        return None
    return {"a": a, "b": b, "out": out, "batch": batch, "m": m, "n": n, "k": k}


class TriMatmul:
    name = "tri_matmul"
    knobs = {k: v for k, v in Matmul.knobs.items() if k != "num_stages"}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in _PRODUCTS or op.overload != "default" or op.name in claimed:
            return None
        parsed = _operands(graph, op, index)
        tri = _only_user(graph, Ref(op.name))
        if parsed is None or tri is None or tri.op not in ("triu", "tril") or tri.name in claimed:
            return None
        a, b, (va, vb) = parsed
        if va.rank != vb.rank or va.rank not in (2, 3) or va.shape[:-2] != vb.shape[:-2]:
            return None
        diag = tri.args[1] if len(tri.args) > 1 else tri.kwargs.get("diagonal", 0)
        if not isinstance(diag, int):
            return None
        out = graph.value_of(Ref(tri.name))
        spec = {
            "upper": tri.op == "triu",
            "diagonal": diag,
            "rank": va.rank,
            "dtype": va.dtype,
            "out_dtype": out.dtype,
            "mnk": [va.shape[-2], vb.shape[-1], va.shape[-1]],
            "numel": math.prod(out.shape),
        }
        return Segment(self.name, op.name, [op.name, tri.name], [a, b], Ref(tri.name), spec)

    def default(self, seg: Segment) -> Config:
        m, n, k = seg.spec["mnk"]
        fp32 = seg.spec["dtype"] == "float32"
        cap = 64 if fp32 else 128
        return {
            "BLOCK_M": max(16, pow2_at_most(max(m, 16), cap)),
            "BLOCK_N": max(16, pow2_at_most(max(n, 16), cap)),
            "BLOCK_K": 32 if fp32 else 64,
            "GROUP_M": 8,
            "num_warps": 4 if fp32 else 8,
        }

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        spec, p, out = seg.spec, ctx.prefix, ctx.out_var
        a, b = (ctx.expr(r) for r in seg.inputs)
        views = [a, b] if spec["rank"] == 3 else [f"{a}.unsqueeze(0)", f"{b}.unsqueeze(0)"]
        bm, bn = config["BLOCK_M"], config["BLOCK_N"]
        call = [
            f"{p}_a, {p}_b = {views[0]}, {views[1]}",
            f"{p}_M, {p}_K, {p}_N = {p}_a.shape[1], {p}_a.shape[2], {p}_b.shape[2]",
            f"{out} = torch.empty((*{a}.shape[:-1], {p}_N), device={a}.device, "
            f"dtype={TORCH_DTYPES[spec['out_dtype']]})",
            f"{p}_c = {out} if {out}.dim() == 3 else {out}.unsqueeze(0)",
            f"if {out}.numel():",
            f"    {p}_grid = (triton.cdiv({p}_M, {bm}) * triton.cdiv({p}_N, {bn}), {p}_a.shape[0])",
            f"    {p}_tri_matmul[{p}_grid](",
            f"        {p}_a, {p}_b, {p}_c, {p}_M, {p}_N, {p}_K,",
            f"        *{p}_a.stride(), *{p}_b.stride(), *{p}_c.stride(), {spec['diagonal']},",
            f"        UPPER={spec['upper']}, FP32_DOT={a}.device.type == 'cpu',",
            f"        PRECISION={'ieee' if spec['dtype'] == 'float32' else 'tf32'!r},",
            f"        BLOCK_M={bm}, BLOCK_N={bn}, BLOCK_K={config['BLOCK_K']},",
            f"        GROUP_M={config['GROUP_M']}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_tri_matmul"], p), call)


class DiagMatmul:
    name = "diag_matmul"
    knobs = {"BLOCK_M": (16, 32, 64), "BLOCK_N": (64, 128, 256), "num_warps": (1, 2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in ("matmul", "mm") or op.overload != "default" or op.name in claimed:
            return None
        parsed = _operands(graph, op, index)
        if parsed is None or [v.rank for v in parsed[2]] != [2, 2]:
            return None
        for side, ref, other in ((0, parsed[0], parsed[1]), (1, parsed[1], parsed[0])):
            diag = graph.producer(ref)
            if diag is None or diag.op != "diag" or diag.name in claimed:
                continue
            offset = diag.args[1] if len(diag.args) > 1 else diag.kwargs.get("diagonal", 0)
            v = graph.value_of(diag.args[0]) if isinstance(diag.args[0], Ref) else None
            if offset != 0 or v is None or v.rank != 1 or _only_user(graph, ref) is not op:
                continue
            spec = {"rows": side == 0, "numel": math.prod(op.value.shape)}
            spec["out_dtype"] = op.value.dtype
            return Segment(self.name, op.name, [diag.name, op.name], [diag.args[0], other],
                           Ref(op.name), spec)  # fmt: skip
        return None

    def default(self, seg: Segment) -> Config:
        return {"BLOCK_M": 32, "BLOCK_N": 128, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        p, out = ctx.prefix, ctx.out_var
        v, b = (ctx.expr(r) for r in seg.inputs)
        bm, bn = config["BLOCK_M"], config["BLOCK_N"]
        call = [
            f"{out} = torch.empty({b}.shape, device={b}.device, "
            f"dtype={TORCH_DTYPES[seg.spec['out_dtype']]})",
            f"if {out}.numel():",
            f"    {p}_grid = (triton.cdiv({b}.shape[0], {bm}), triton.cdiv({b}.shape[1], {bn}))",
            f"    {p}_diag_scale[{p}_grid](",
            f"        {v}, {b}, {out}, *{b}.shape, {v}.stride(0), *{b}.stride(),",
            f"        ROWS={seg.spec['rows']}, BLOCK_M={bm}, BLOCK_N={bn},",
            f"        num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_diag_scale"], p), call)


class Gemv:
    name = "gemv"
    knobs = {
        "BLOCK_M": (1, 2, 4, 8, 16),
        "BLOCK_K": (256, 512, 1024, 2048),
        "num_warps": (1, 2, 4, 8),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in ("mv", "matmul", "mm") or op.overload != "default" or op.name in claimed:
            return None
        parsed = _operands(graph, op, index)
        if parsed is None:
            return None
        a, b, (va, vb) = parsed
        ranks = [va.rank, vb.rank]
        if ranks == [1, 2] and op.op == "matmul":
            form = "vector_matrix"
        elif vb.rank == 1 and va.rank >= 2 and (op.op == "matmul" or ranks == [2, 1]):
            form = "matrix_vector"
        elif (
            vb.rank == 2
            and vb.shape[1] == 1
            and (va.rank == 2 or op.op == "matmul" and va.rank > 2)
        ):
            form = "matrix_column"
        else:
            return None
        m = vb.shape[1] if form == "vector_matrix" else math.prod(va.shape[:-1])
        spec = {"form": form, "mk": [m, va.shape[-1]], "out_dtype": op.value.dtype, "numel": m}
        return Segment(self.name, op.name, [op.name], [a, b], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK_M": 4, "BLOCK_K": 1024 if seg.spec["mk"][1] >= 1024 else 256, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        p, out, form = ctx.prefix, ctx.out_var, seg.spec["form"]
        a, b = (ctx.expr(r) for r in seg.inputs)
        if form == "vector_matrix":  # x @ A = A^T x: A's rows are its columns
            mat, vec, shape = f"{b}.t()", a, f"({b}.shape[1],)"
        elif form == "matrix_vector":
            mat, vec, shape = f"{a}.reshape(-1, {a}.shape[-1])", b, f"{a}.shape[:-1]"
        else:
            mat, vec, shape = (
                f"{a}.reshape(-1, {a}.shape[-1])",
                f"{b}[:, 0]",
                f"(*{a}.shape[:-1], 1)",
            )
        bm = config["BLOCK_M"]
        call = [
            f"{p}_a, {p}_x = {mat}, {vec}",
            f"{out} = torch.empty({shape}, device={a}.device, "
            f"dtype={TORCH_DTYPES[seg.spec['out_dtype']]})",
            f"if {out}.numel():",
            f"    {p}_gemv[(triton.cdiv({p}_a.shape[0], {bm}),)](",
            f"        {p}_a, {p}_x, {out}, *{p}_a.shape, *{p}_a.stride(), {p}_x.stride(0),",
            f"        BLOCK_M={bm}, BLOCK_K={config['BLOCK_K']}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_gemv"], p), call)
