"""Templates that move elements without arithmetic: ``cat``/``stack`` and ``embedding``.

``cat`` is what ``rotate_half`` (``cat((-x2, x1), -1)``), a ViT's class token and packed
projections are made of, ``stack`` the interleaved rotary of GPT-J and GPT-NeoX
(``stack((-x2, x1), -1).flatten(-2)``): each input is copied into its slab of the output (a
``narrow`` of the cut dim, or one index of the new dim)
by a strided copy, so inputs that are themselves views (the halves of a rotary head) are read
where they lie. ``embedding`` gathers rows of a table by an integer index tensor: token and
position embeddings, a T5 relative-position bias. Its indices come from the problem's inputs,
which a captured problem draws within the table (``randint(0, rows)``); an index out of range
is out of range for PyTorch too.
"""

from __future__ import annotations

from ..kernels import gather as seed_kernel
from ..trace import OpGraph, Ref
from . import seed
from .base import Config, EmitContext, Emitted, Segment, available_before, pow2_at_most
from .elementwise import TORCH_DTYPES

_MOVABLE = set(TORCH_DTYPES)  # a copy is exact in every dtype it can allocate
_INDEX = {"int64", "int32"}


class Concat:
    name = "cat"
    knobs = {"BLOCK": (256, 512, 1024, 2048), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op not in ("cat", "stack") or op.name in claimed or not op.args:
            return None
        parts = op.args[0]
        if not isinstance(parts, tuple | list) or not all(isinstance(r, Ref) for r in parts):
            return None
        out = graph.value_of(Ref(op.name))
        values = [graph.value_of(r) for r in parts]
        if out is None or out.dtype not in _MOVABLE:
            return None
        # Every part has the output's rank and dtype (ATen's legacy 1-d empty parts, and mixed
        # dtypes that cat promotes, are left to other templates).
        rank = out.rank - (op.op == "stack")  # stack: each part is one index of a new dim
        if not 1 <= rank <= 4 or any(
            v is None or v.rank != rank or v.dtype != out.dtype for v in values
        ):
            return None
        if not all(available_before(graph, index)(r) for r in parts):
            return None
        dim = op.args[1] if len(op.args) > 1 else op.kwargs.get("dim", 0)
        spec = {
            "dim": int(dim) % out.rank,
            "rank": rank,  # of each part, and of its slab of the output
            "dtype": out.dtype,
            "parts": [r.name for r in parts],  # in order, a part repeated as often as it is
            "stack": op.op == "stack",
        }
        inputs = list(dict.fromkeys(parts))
        return Segment(self.name, op.name, [op.name], inputs, Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BLOCK": 1024, "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        p, out, d, pad = ctx.prefix, ctx.out_var, seg.spec["dim"], 4 - seg.spec["rank"]
        parts = [ctx.expr(Ref(n)) for n in seg.spec["parts"]]
        first = parts[0]
        if seg.spec.get("stack"):  # part i is index i of the new dim d
            shape = [f"{p}_shape = list({first}.shape)", f"{p}_shape.insert({d}, len({p}_parts))"]
            slab = f"{out}.select({d}, {p}_i)"
            advance = []
        else:  # part i is the next run of dim d
            shape = [
                f"{p}_shape = list({first}.shape)",
                f"{p}_shape[{d}] = sum(t.shape[{d}] for t in {p}_parts)",
            ]
            slab = f"{out}.narrow({d}, {p}_at, {p}_t.shape[{d}])"
            advance = [f"    {p}_at += {p}_t.shape[{d}]"]
        call = [
            f"{p}_parts = [{', '.join(parts)}]",
            *shape,
            f"{out} = torch.empty({p}_shape, device={first}.device, "
            f"dtype={TORCH_DTYPES[seg.spec['dtype']]})",
            f"{p}_at = 0",
            f"for {p}_i, {p}_t in enumerate({p}_parts):",
            f"    {p}_dst = {slab}",
            *advance,
            f"    if {p}_t.numel():",
            # leading 1s (stride 0) make every rank the kernel's four dims
            f"        {p}_sh = [1] * {pad} + list({p}_t.shape)",
            f"        {p}_copy4d_kernel[(triton.cdiv({p}_t.numel(), {config['BLOCK']}),)](",
            f"            {p}_t, {p}_dst, {p}_t.numel(), *{p}_sh[1:],",
            f"            *([0] * {pad} + list({p}_t.stride())),",
            f"            *([0] * {pad} + list({p}_dst.stride())),",
            f"            BLOCK={config['BLOCK']}, num_warps={config['num_warps']},",
            "        )",
        ]
        return Emitted(seed.source(seed_kernel, ["_copy4d_kernel"], p), call)


class Embedding:
    name = "embedding"
    knobs = {"BR": (8, 16, 32, 64), "BD": (32, 64, 128, 256), "num_warps": (2, 4, 8)}

    def match(self, graph: OpGraph, index: int, claimed: set[str]) -> Segment | None:
        op = graph.ops[index]
        if op.op != "embedding" or op.name in claimed or len(op.args) < 2:
            return None
        weight, idx = op.args[0], op.args[1]
        if not isinstance(weight, Ref) or not isinstance(idx, Ref):
            return None
        w, i, out = graph.value_of(weight), graph.value_of(idx), graph.value_of(Ref(op.name))
        if w is None or i is None or out is None or w.rank != 2 or i.dtype not in _INDEX:
            return None
        if w.dtype not in _MOVABLE:
            return None
        # padding_idx, scale_grad_by_freq and sparse change only the backward pass
        spec = {"dtype": w.dtype, "dim": w.shape[1]}
        return Segment(self.name, op.name, [op.name], [weight, idx], Ref(op.name), spec)

    def default(self, seg: Segment) -> Config:
        return {"BR": 16, "BD": pow2_at_most(max(seg.spec["dim"], 32), 128), "num_warps": 4}

    def emit(self, graph: OpGraph, seg: Segment, config: Config, ctx: EmitContext) -> Emitted:
        p, out = ctx.prefix, ctx.out_var
        w, idx = ctx.expr(seg.inputs[0]), ctx.expr(seg.inputs[1])
        br, bd = config["BR"], config["BD"]
        call = [
            f"{p}_idx = {idx}.reshape(-1).contiguous()",
            f"{out} = torch.empty((*{idx}.shape, {w}.shape[1]), device={w}.device, "
            f"dtype={w}.dtype)",
            f"if {out}.numel():",
            f"    {p}_gather_rows_kernel[(triton.cdiv({p}_idx.numel(), {br}), "
            f"triton.cdiv({w}.shape[1], {bd}))](",
            f"        {p}_idx, {w}, {out}, {p}_idx.numel(), {w}.shape[1], *{w}.stride(),",
            f"        BR={br}, BD={bd}, num_warps={config['num_warps']},",
            "    )",
        ]
        return Emitted(seed.source(seed_kernel, ["_gather_rows_kernel"], p), call)
