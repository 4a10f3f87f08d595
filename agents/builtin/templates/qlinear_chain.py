"""Recognising a quantized weight: the dequantisation chain behind a matmul's weight operand.

``weight_chain`` walks back from the matmul, op by op, and accepts only the exact packings the
seed kernels unpack (INT8 bytes; INT4 nibbles, low first; INT6 little-endian 24-bit words);
``activation_quant`` recognises W8A8's per-row dynamic quantisation of x, and ``trailing`` the
bias add and final cast after the matmul. Every op followed is recorded in the ``Walk`` so the
template claims exactly the chain it understood (``qlinear.py`` emits the kernels).
"""

from __future__ import annotations

from ..trace import Op, OpGraph, Ref

_FLOATS = {"float32", "float16", "bfloat16"}
_INTS = {"int32", "int64"}
_END = 2**62  # a slice end at or past this is "to the end"
_AND = ("__and__", "bitwise_and")
_OR = ("__or__", "bitwise_or")
_SHR = ("__rshift__", "bitwise_right_shift")
_SHL = ("__lshift__", "bitwise_left_shift")
_TO = ("to", "_to_copy")


class Walk:
    """Ops claimed while following the chain back from the matmul; each is taken at most once."""

    def __init__(self, graph: OpGraph, claimed: set[str]):
        self.graph, self.claimed, self.ops = graph, claimed, set()

    def op(self, ref, names: tuple[str, ...] | str) -> Op | None:
        names = (names,) if isinstance(names, str) else names
        if not isinstance(ref, Ref):
            return None
        op = self.graph.producer(ref)
        if op is None or op.op not in names or op.name in self.claimed:
            return None
        self.ops.add(op.name)
        return op

    def arg(self, op: Op, i: int, name: str, default=None):
        if i < len(op.args):
            return op.args[i]
        return op.kwargs.get(name, default)

    def cast(self, ref, dtypes: set[str]):
        """``ref`` through an optional ``to(dtype)`` with dtype in ``dtypes``."""
        op = self.graph.producer(ref) if isinstance(ref, Ref) else None
        if op is not None and op.op in _TO and op.name not in self.claimed:
            v = self.graph.value_of(ref)
            if v is not None and v.dtype in dtypes and isinstance(op.args[0], Ref):
                self.ops.add(op.name)
                return op.args[0]
        return ref

    def input(self, ref, dtypes: set[str]) -> Ref | None:
        """A graph input of one of ``dtypes``."""
        inp = self.graph.input(ref.name) if isinstance(ref, Ref) else None
        if inp is None or inp.value is None or inp.value.dtype not in dtypes:
            return None
        return ref

    def closed(self, ops: list[str], out: Ref) -> bool:
        """No value but ``out`` is used outside the segment or returned."""
        inside = set(ops)
        for name in ops:
            ref = Ref(name)
            if ref == out:
                continue
            if self.graph.is_output(ref) or any(
                u.name not in inside for u in self.graph.users(ref)
            ):
                return False
        return True


def weight_chain(w: Walk, b) -> dict | None:
    """The dequantised weight behind the matmul's operand ``b`` (K, N), or None."""
    g = w.graph
    t = w.op(b, ("t", "transpose", "permute"))
    if t is None or (t.op == "transpose" and sorted(d % 2 for d in t.args[1:3]) != [0, 1]):
        return None
    if t.op == "permute" and tuple(d % 2 for d in t.args[1]) != (1, 0):
        return None
    flat = w.op(t.args[0], ("view", "reshape", "_unsafe_view"))
    mul = w.op(flat.args[0] if flat else None, ("mul", "mul_"))
    if mul is None or len(mul.args) != 2:
        return None
    scaled = None
    for zsub, s3 in (mul.args, mul.args[::-1]):
        scales = _group_param(w, s3)
        sub = w.op(zsub, ("sub", "sub_")) if scales is not None else None
        if sub is not None:
            scaled = sub, scales
            break
    if scaled is None:
        return None
    sub, scales = scaled
    if sub.kwargs.get("alpha", 1) != 1 or len(sub.args) != 2:
        return None
    zero = sub.args[1]
    zeros = None if isinstance(zero, int | float) else _group_param(w, zero)
    if zeros is None and not isinstance(zero, int | float):
        return None
    grouped = w.op(sub.args[0], ("view", "reshape", "_unsafe_view"))
    codes_f = w.op(grouped.args[0] if grouped else None, _TO)
    if codes_f is None:
        return None
    wv, gv, sv = (g.value_of(r) for r in (Ref(flat.name), Ref(grouped.name), scales))
    if wv.rank != 2 or gv.rank != 3 or sv.rank != 2:
        return None
    n, k = wv.shape
    if gv.shape != (n, sv.shape[-1], k // max(sv.shape[-1], 1)) or sv.shape != (n, gv.shape[1]):
        return None
    if gv.shape[1] * gv.shape[2] != k or g.value_of(Ref(codes_f.name)).dtype not in _FLOATS:
        return None
    if zeros is not None and g.value_of(zeros).shape != sv.shape:
        return None
    unpacked = _unpack(w, codes_f.args[0], n, k)
    if unpacked is None:
        return None
    packed, bits = unpacked
    return {
        "packed": packed,
        "bits": bits,
        "scales": scales,
        "zeros": zeros,
        "symmetric": zeros is None,
        "mid": None if zeros is not None else float(zero),
        "group_size": gv.shape[2],
        "n": n,
        "k": k,
        "dtype": g.value_of(Ref(codes_f.name)).dtype,
    }


def _group_param(w: Walk, ref) -> Ref | None:
    """A float graph input of shape (N, groups) behind ``unsqueeze(-1)`` (and a float cast)."""
    op = w.op(ref, "unsqueeze")
    if op is None or op.args[1] not in (-1, 2):
        return None
    return w.input(w.cast(op.args[0], _FLOATS), _FLOATS)


def _unpack(w: Walk, codes, n: int, k: int) -> tuple[Ref, int] | None:
    """(packed input, bits) when ``codes`` (N, K) is one of the seed's layouts of a uint8 input."""
    direct = w.input(codes, {"uint8"})
    if direct is not None:
        return (direct, 8) if w.graph.value_of(direct).shape == (n, k) else None
    view = w.op(codes, ("view", "reshape", "_unsafe_view"))
    stack = w.op(view.args[0] if view else None, "stack")
    if stack is None or w.arg(stack, 1, "dim", 0) not in (-1, 2):
        return None
    parts = list(stack.args[0])
    if len(parts) == 2:
        packed = _nibbles(w, parts)
        bits, cols = 4, k // 2
    elif len(parts) == 4:
        packed = _six_bit_fields(w, parts)
        bits, cols = 6, k * 3 // 4
    else:
        return None
    if packed is None or w.graph.value_of(packed).shape != (n, cols):
        return None
    return packed, bits


def _scalar_op(w: Walk, ref, names: tuple[str, ...], value: int | None = None):
    """(operand, constant) of ``op(operand, constant)``."""
    op = w.op(ref, names)
    if op is None or len(op.args) != 2 or not isinstance(op.args[1], int):
        return None
    if value is not None and op.args[1] != value:
        return None
    return op.args[0], op.args[1]


def _nibbles(w: Walk, parts) -> Ref | None:
    """``[p & 15, p >> 4]`` (the high nibble optionally masked too) of a uint8 input ``p``."""
    lo = _scalar_op(w, parts[0], _AND, 15)
    hi_masked = _scalar_op(w, parts[1], _AND, 15)
    hi = _scalar_op(w, hi_masked[0] if hi_masked else parts[1], _SHR, 4)
    if lo is None or hi is None or lo[0] != hi[0]:
        return None
    return w.input(lo[0], {"uint8"})


def _six_bit_fields(w: Walk, parts) -> Ref | None:
    """Fields ``(word >> 6j) & 63`` for j = 0..3 of the 24-bit word of bytes 3t, 3t+1, 3t+2."""
    words = set()
    for j, part in enumerate(parts):
        field = _scalar_op(w, w.cast(part, {"uint8", *_INTS}), _AND, 63)
        if field is None:
            return None
        shifted = _scalar_op(w, field[0], _SHR, 6 * j)
        words.add(shifted[0] if shifted else field[0] if j == 0 else None)
    if len(words) != 1 or None in words:
        return None
    word = words.pop()
    wv = w.graph.value_of(word)
    if wv is None or wv.dtype not in _INTS:
        return None
    terms = _or_terms(w, word)
    if terms is None or len(terms) != 3:
        return None
    sources = {}
    for term in terms:
        shifted = _scalar_op(w, term, _SHL)
        src, shift = shifted if shifted else (term, 0)
        byte = w.op(w.cast(src, _INTS), "slice")
        if byte is None or shift % 8 or len(byte.args) != 5:
            return None
        _, dim, start, end, step = byte.args
        if dim not in (1, -1) or start != shift // 8 or step != 3 or end < _END:
            return None
        sources[start] = byte.args[0]
    if sorted(sources) != [0, 1, 2] or len(set(sources.values())) != 1:
        return None
    return w.input(sources[0], {"uint8"})


def _or_terms(w: Walk, ref) -> list | None:
    op = w.op(ref, _OR)
    if op is None:
        return [ref]
    left, right = _or_terms(w, op.args[0]), _or_terms(w, op.args[1])
    return None if left is None or right is None else left + right


def activation_quant(w: Walk, a) -> dict | None:
    """W8A8's per-row quantisation of x behind the matmul's operand ``a``: clamp(trunc(v +
    where(v >= 0, 0.5, -0.5)), -127, 127), v = xf / s, s = clamp(amax|xf|, eps) / 127."""
    g = w.graph
    probe = Walk(g, w.claimed)
    clamp = probe.op(a, "clamp")
    if clamp is None or tuple(clamp.args[1:3]) != (-127, 127):
        return None
    trunc = probe.op(clamp.args[0], "trunc")
    add = probe.op(trunc.args[0] if trunc else None, "add")
    if add is None or add.kwargs.get("alpha", 1) != 1:
        return None
    second = g.producer(add.args[1]) if isinstance(add.args[1], Ref) else None
    v, rnd = add.args if second is not None and second.op == "where" else add.args[::-1]
    where = probe.op(rnd, "where")
    if where is None or tuple(where.args[1:]) != (0.5, -0.5):
        return None
    ge = probe.op(where.args[0], "ge")
    div = probe.op(v, "div")
    if ge is None or tuple(ge.args) != (v, 0) or div is None or div.kwargs:
        return None
    xf, s = div.args
    s_div = probe.op(s, "div")
    if s_div is None or s_div.args[1] != 127.0 or s_div.kwargs:
        return None
    eps_clamp = probe.op(s_div.args[0], "clamp")
    if eps_clamp is None or probe.arg(eps_clamp, 2, "max") is not None:
        return None
    eps = probe.arg(eps_clamp, 1, "min")
    amax = probe.op(eps_clamp.args[0], "amax")
    if not isinstance(eps, int | float) or eps <= 0 or amax is None:
        return None
    dims, keep = probe.arg(amax, 1, "dim", ()), probe.arg(amax, 2, "keepdim", False)
    absx = probe.op(amax.args[0], "abs")
    if absx is None or absx.args[0] != xf or len(dims) != 1 or keep is not True:
        return None
    if g.value_of(xf).dtype != "float32" or g.value_of(a).dtype != "float32":
        return None
    x = probe.cast(xf, {"float32"})
    w.ops |= probe.ops
    return {"x": x, "scale": s, "eps": float(eps), "dim": dims[0]}


def trailing(w: Walk, anchor: Op, act: dict | None, n: int) -> tuple[Ref, Ref | None] | None:
    """(segment output, bias) after the matmul: W8A8's ``* s_x``, a bias ``add`` of an (N,)
    tensor, W8A8's cast back to x's dtype; each fused only when it is the value's one use."""
    g = w.graph
    out, bias = Ref(anchor.name), None

    def sole_user(ref: Ref) -> Op | None:
        users = g.users(ref)
        if len(users) != 1 or g.is_output(ref) or users[0].name in w.claimed:
            return None
        return users[0]

    if act:
        mul = sole_user(out)
        if mul is None or mul.op != "mul" or set(mul.args) != {out, act["scale"]}:
            return None
        w.ops.add(mul.name)
        out = Ref(mul.name)
    user = sole_user(out)
    if user is not None and user.op == "add" and user.kwargs.get("alpha", 1) == 1:
        probe = Walk(g, w.claimed)
        other = next((r for r in user.args if r != out), None)
        src = probe.cast(other, _FLOATS) if other is not None else None
        sv = g.value_of(src) if isinstance(src, Ref) else None
        if sv is not None and sv.shape == (n,) and sv.dtype in _FLOATS and out in user.args:
            bias = src
            w.ops |= probe.ops | {user.name}
            out = Ref(user.name)
    if act:
        user = sole_user(out)
        if user is not None and user.op in _TO and user.args[0] == out:
            w.ops.add(user.name)
            out = Ref(user.name)
    return out, bias
