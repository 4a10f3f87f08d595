"""Scaled dot-product attention: the library's flash-attention seed kernel, copied in.

Anchor ``scaled_dot_product_attention`` without a mask or dropout (``is_causal``, ``scale`` and
``enable_gqa`` are honoured). Grouped-query attention written as ``repeat_interleave`` of K and
V along the head dim before the call is claimed too: the kernel reads the un-expanded K/V, query
head h using K/V head h // group, with the group read from the tensors' head counts at run time.
The host launch follows ``kernels/attention.py``'s ``flash_attention``: tiles no larger than the
sequence, exact fp32 products for float32 and for bfloat16 under the CPU interpreter.
"""

from __future__ import annotations

import math

from ....kernels import attention as seed_kernel
from ..trace import Op, OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before

_DTYPES = {"float16", "bfloat16", "float32"}
_MAX_HEAD_DIM = 256  # the seed's largest tile config
_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_KERNELS = ["_mma", "_key_tiles", "_attention_fwd"]
# Shared memory the tiles may take (bytes): under an A100's 164 KiB per SM with headroom.
_SMEM_BUDGET = 160 * 1024


class Attention:
    name = "attention"
    knobs = {
        "BLOCK_M": (16, 32, 64, 128),
        "BLOCK_N": (16, 32, 64, 128),
        "num_warps": (2, 4, 8),
        "num_stages": (1, 2, 3, 4),
    }

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op == "matmul" and op.name not in claimed:
            return _written_out(graph, index, claimed)
        if op.op != "scaled_dot_product_attention" or op.name in claimed:
            return None
        args = _sdpa_args(op)
        if args is None or args["attn_mask"] is not None or args["dropout_p"] != 0:
            return None
        scale = args["scale"]
        if not isinstance(args["is_causal"], bool) or not (
            scale is None or isinstance(scale, int | float)
        ):
            return None
        q, k, v = args["query"], args["key"], args["value"]
        if not all(isinstance(r, Ref) for r in (q, k, v)):
            return None
        ops = [op.name]
        (k, v), expanded = _gqa_sources(graph, (k, v), op, claimed)
        ops = [*expanded, *ops]
        qv, kv, vv = (graph.value_of(r) for r in (q, k, v))
        if qv is None or kv is None or vv is None or not _supported(qv, kv, vv):
            return None
        if qv.shape[1] != kv.shape[1] and not (expanded or args["enable_gqa"] is True):
            return None
        available = available_before(graph, graph.index(ops[0]))
        if not all(available(r) for r in (q, k, v)):
            return None
        out = op.value
        return Segment(
            self.name,
            op.name,
            ops,
            [q, k, v],
            Ref(op.name),
            {
                "causal": args["is_causal"],
                "scale": None if scale is None else float(scale),
                "head_dim": qv.shape[3],
                "seq_q": qv.shape[2],
                "seq_k": kv.shape[2],
                "element_size": 4 if qv.dtype == "float32" else 2,
                "numel": math.prod(out.shape),
            },
        )

    def default(self, seg: Segment) -> Config:
        spec = seg.spec
        cfg = seed_kernel.tile_config(spec["head_dim"], spec["element_size"])
        return {
            "BLOCK_M": cfg.block_m,
            "BLOCK_N": cfg.block_n,
            "num_warps": cfg.num_warps,
            "num_stages": cfg.num_stages,
        }

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        p, spec, out = ctx.prefix, seg.spec, ctx.out_var
        q, k, v = (ctx.expr(r) for r in seg.inputs)
        bm, bn, stages = _fit_smem(config, spec)
        warps = config["num_warps"]
        scale = f"1.0 / math.sqrt({q}.shape[3])" if spec["scale"] is None else repr(spec["scale"])
        if spec.get("scale_expr"):  # written-out attention: the reference's own scaling
            scale = spec["scale_expr"]
        call = [
            f"{out} = torch.empty({q}.shape, dtype={q}.dtype, device={q}.device)",
            f"{p}_bd = max(16, triton.next_power_of_2({q}.shape[3]))",
            # Short sequences: no tile larger than the sequence (fewer idle rows and programs).
            f"{p}_bm = max(16, min({bm}, triton.next_power_of_2({q}.shape[2])))",
            f"{p}_bn = max(16, min({bn}, triton.next_power_of_2({k}.shape[2])))",
            f"{p}_fp32 = {q}.dtype == torch.float32 or "
            f"({q}.dtype == torch.bfloat16 and {q}.device.type == 'cpu')",
            f"{p}_grid = (triton.cdiv({q}.shape[2], {p}_bm), {q}.shape[0] * {q}.shape[1])",
            f"if {out}.numel():",
            f"    {p}_attention_fwd[{p}_grid](",
            f"        {q}, {k}, {v}, {out},",
            f"        {q}.shape[2], {k}.shape[2], {q}.shape[1], {q}.shape[1] // {k}.shape[1],",
            f"        ({scale}) * {seed_kernel.LOG2_E!r},",
            f"        *{q}.stride(), *{k}.stride(), *{v}.stride(), *{out}.stride(),",
            f"        HEAD_DIM={q}.shape[3], BLOCK_M={p}_bm, BLOCK_N={p}_bn, BLOCK_D={p}_bd,",
            f"        CAUSAL={spec['causal']}, FP32_DOT={p}_fp32,",
            f"        num_warps={warps} if {p}_bm >= 128 else {min(warps, 4)},"
            f" num_stages={stages},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, _KERNELS, p), call)


def _written_out(graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
    """``softmax(q @ k.transpose(-2, -1) [/ c or * c], dim=-1) @ v`` spelled out in ATen ops,
    anchored at its last matmul: the seed kernel computes it without materialising the scores.
    Every intermediate must feed only the next op; ``c`` may be a literal, a float attribute
    or a scalar computed from sizes (``sizes.py``)."""
    out = graph.ops[index]
    if len(out.args) != 2 or not all(isinstance(a, Ref) for a in out.args):
        return None
    probs, v = out.args
    chain = _only_use(graph, probs, out, claimed, ("softmax", "_softmax"))
    if chain is None or chain.args[1:2] not in ((-1,), (3,)) or chain.args[2:3] == (True,):
        return None
    scaled = chain.args[0]
    scores, factor, ops = scaled, None, [chain.name, out.name]
    op = _only_use(graph, scaled, chain, claimed, ("div", "mul"))
    if op is not None and len(op.args) == 2 and isinstance(op.args[0], Ref):
        scores, factor, ops = op.args[0], (op.op, op.args[1]), [op.name, *ops]
    mm = _only_use(graph, scores, graph.producer(Ref(ops[0])), claimed, ("matmul",))
    if mm is None or len(mm.args) != 2 or not all(isinstance(a, Ref) for a in mm.args):
        return None
    q, k_t = mm.args
    transpose = graph.producer(k_t)
    if transpose is None or transpose.op != "transpose" or transpose.args[1:] not in (
        (-2, -1), (-1, -2), (2, 3), (3, 2),
    ):  # fmt: skip
        return None
    k = transpose.args[0]
    scale = _scale_expr(graph, factor)
    qv, kv, vv = (graph.value_of(r) if isinstance(r, Ref) else None for r in (q, k, v))
    if scale is None or None in (qv, kv, vv) or not _supported(qv, kv, vv):
        return None
    if qv.shape[1] != kv.shape[1]:
        return None
    if not all(available_before(graph, graph.index(mm.name))(r) for r in (q, k, v)):
        return None
    return Segment(
        "attention",
        out.name,
        [mm.name, *ops],
        [q, k, v],
        Ref(out.name),
        {
            "causal": False,
            "scale": None,
            "scale_expr": scale,
            "head_dim": qv.shape[3],
            "seq_q": qv.shape[2],
            "seq_k": kv.shape[2],
            "element_size": 4 if qv.dtype == "float32" else 2,
            "numel": math.prod(out.value.shape),
        },
    )


def _only_use(graph: OpGraph, ref, user: Op | None, claimed: set[str], kinds: tuple[str, ...]):
    """The op making ``ref`` when it is one of ``kinds``, unclaimed, and feeds ``user`` alone."""
    op = graph.producer(ref) if isinstance(ref, Ref) else None
    if op is None or op.op not in kinds or op.name in claimed or graph.is_output(ref):
        return None
    if user is None or any(u.name != user.name for u in graph.users(ref)):
        return None
    return op


def _scale_expr(graph: OpGraph, factor) -> str | None:
    """The softmax scale as a Python expression in ``forward``: ``q k^T / c`` is scale ``1 / c``,
    ``q k^T * c`` is ``c``; no factor is 1."""
    if factor is None:
        return "1.0"
    kind, c = factor
    if isinstance(c, int | float) and not isinstance(c, bool) and c:
        value = repr(float(c))
    elif isinstance(c, Ref) and (inp := graph.input(c.name)) and inp.kind in ("attr", "expr"):
        value = f"float(self.{inp.target})" if inp.kind == "attr" else f"float({inp.target})"
    else:
        return None
    return f"1.0 / {value}" if kind == "div" else value


def _sdpa_args(op: Op) -> dict | None:
    if len(op.args) > len(_SDPA_ARGS) or set(op.kwargs) - set(_SDPA_ARGS):
        return None
    args = dict.fromkeys(_SDPA_ARGS)
    args.update(dropout_p=0.0, is_causal=False, enable_gqa=False)
    args.update(zip(_SDPA_ARGS, op.args, strict=False))
    args.update(op.kwargs)
    return args


def _gqa_sources(
    graph: OpGraph, kv: tuple[Ref, Ref], sdpa: Op, claimed: set[str]
) -> tuple[tuple[Ref, Ref], list[str]]:
    """K and V before a ``repeat_interleave(group, dim=1)`` that only feeds this call, with the
    repeat ops; unchanged (and no ops) unless both are such an expansion of equal head counts."""
    q = graph.value_of(sdpa.args[0]) if sdpa.args else None
    found = []
    for ref in kv:
        op = graph.producer(ref)
        if op is None or op.op != "repeat_interleave" or op.name in claimed:
            return kv, []
        if op.overload != "self_int" or q is None or graph.is_output(ref):
            return kv, []
        call = dict(zip(("self", "repeats", "dim", "output_size"), op.args, strict=False))
        call.update(op.kwargs)
        src = call.get("self")
        sv = graph.value_of(src) if isinstance(src, Ref) else None
        if sv is None or sv.rank != 4 or call.get("dim") not in (1, -3):
            return kv, []
        repeats = call.get("repeats")
        if not isinstance(repeats, int) or repeats * sv.shape[1] != q.shape[1]:
            return kv, []
        if any(u.name != sdpa.name for u in graph.users(ref)):
            return kv, []
        found.append((src, op.name, sv.shape[1]))
    if found[0][2] != found[1][2]:
        return kv, []
    order = sorted((graph.index(n) for _, n, _ in found))
    return (found[0][0], found[1][0]), [graph.ops[i].name for i in order]


def _supported(q, k, v) -> bool:
    if not (q.rank == k.rank == v.rank == 4) or not (q.dtype == k.dtype == v.dtype):
        return False
    if q.dtype not in _DTYPES or k.shape != v.shape or q.shape[0] != k.shape[0]:
        return False
    d = q.shape[3]
    if d != k.shape[3] or not 0 < d <= _MAX_HEAD_DIM:
        return False
    return k.shape[1] > 0 and q.shape[1] % k.shape[1] == 0


def _fit_smem(config: Config, spec: dict) -> tuple[int, int, int]:
    """Tiles shrunk (keys first) until Q plus the pipelined K/V tiles fit in shared memory at the
    traced head dim: a config the search proposes then compiles instead of running out."""
    bm, bn, stages = config["BLOCK_M"], config["BLOCK_N"], config["num_stages"]
    bd = max(16, 1 << (spec["head_dim"] - 1).bit_length())

    def smem() -> int:
        return (bm + 2 * max(stages, 1) * bn) * bd * spec["element_size"]

    while smem() > _SMEM_BUDGET and (bn > 16 or bm > 16):
        if bn >= bm and bn > 16:
            bn //= 2
        else:
            bm //= 2
    return bm, bn, stages
