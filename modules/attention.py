"""Scaled dot-product attention that runs the best kernel the library has for the call.

``attention(q, k, v, causal=False, scale=None)`` takes (batch, heads, seq, head_dim) tensors and
returns softmax(q k^T * scale [+ causal mask]) v with the shape of ``q``. It is the torch custom
op ``kernelloop::attention`` (so ``torch.compile`` treats it as one opaque call) whose body is
``kernelloop.library.dispatch("attention", ...)``: a verified library entry for this GPU, dtype
and shape bucket if there is one, else the Triton seed kernel (``kernels/attention.py``), else
the PyTorch reference. ``Attention`` is the ``nn.Module`` around it (q/k/v/o projections).

Semantics, all matching ``torch.nn.functional.scaled_dot_product_attention``:

- ``scale=None`` means 1/sqrt(head_dim).
- ``causal=True`` masks with a *top-left* aligned lower triangle: query i sees keys j <= i, also
  when L_q != L_k (SDPA's ``is_causal``). That is not the bottom-right alignment of decoding
  against a KV cache (new queries at the end, the last one seeing every key): a single decoding
  query wants ``causal=False``.
- Grouped-query attention: k and v may have H_kv heads with H_q % H_kv == 0; query head h reads
  K/V head h // (H_q // H_kv) (SDPA's ``enable_gqa``, i.e. ``repeat_interleave`` on K/V heads).
- Dtypes float16 and bfloat16 (float32 is accepted, mainly for tests); q, k, v share one dtype.

The seed kernel takes head dims up to 256 (tuned for 64 and 128); calls it cannot take
(head_dim > 256, v's head dim differing from q's, empty tensors, batch * heads > 65535) run the
PyTorch reference, and with ``KERNELLOOP_DISPATCH_LOG=1`` a line says why. Backward recomputes
the forward with SDPA and differentiates that (PyTorch's flash / memory-efficient backward on a
GPU): correct and memory-lean, not tuned; the tuned kernels are forward kernels.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..library import dispatch, dispatcher
from ..library.ops import OpSpec, pow2_bucket, register
from ._eager import all_plain, bypass_custom_op, cacheable, keep, plan_cache

_MAX_SEED_HEAD_DIM = 256  # the largest tile config in kernels/attention.py
_MAX_GRID_Y = 65535  # CUDA's limit on grid axis 1, which holds batch * query heads
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


# SDPA's enable_gqa keyword arrived in torch 2.5 (compare numbers: "2.13" < "2.5" as text).
_ENABLE_GQA = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """The PyTorch path (and the ground truth in tests): SDPA, GQA by head grouping."""
    group = q.shape[1] // k.shape[1]
    if group != 1 and not _ENABLE_GQA:  # torch < 2.5: expand the K/V heads explicitly
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        group = 1
    kwargs = {"enable_gqa": True} if group != 1 else {}
    return F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal), scale=scale, **kwargs)


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError for calls that no implementation can serve (shapes, dtypes, devices)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(
                f"attention: {name} must be (batch, heads, seq, head_dim), got shape "
                f"{tuple(t.shape)}; for (batch, seq, heads, head_dim) pass x.transpose(1, 2)"
            )
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in _DTYPES:
        raise ValueError(
            f"attention: q, k, v must share one dtype of float16/bfloat16/float32, got "
            f"{q.dtype}, {k.dtype}, {v.dtype}"
        )
    if not (q.device == k.device == v.device):
        raise ValueError(
            f"attention: q, k, v on different devices: {q.device}, {k.device}, {v.device}"
        )
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(
            f"attention: k and v must agree on (batch, heads, seq): {tuple(k.shape)} vs "
            f"{tuple(v.shape)}"
        )
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(
            f"attention: q {tuple(q.shape)} and k {tuple(k.shape)} must agree on batch and head_dim"
        )
    if k.shape[1] == 0 or q.shape[1] % k.shape[1]:
        raise ValueError(
            f"attention: query heads ({q.shape[1]}) must be a multiple of K/V heads ({k.shape[1]})"
        )


def unsupported_reason(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str | None:
    """Why the seed kernel cannot take this (valid) call, or None when it can."""
    if q.shape[-1] > _MAX_SEED_HEAD_DIM:
        return f"head_dim {q.shape[-1]} > {_MAX_SEED_HEAD_DIM} (the tile would not fit on chip)"
    if v.shape[-1] != q.shape[-1]:
        return f"v's head_dim {v.shape[-1]} differs from q's {q.shape[-1]}"
    if q.numel() == 0 or k.numel() == 0:
        return "empty input"
    if q.shape[0] * q.shape[1] > _MAX_GRID_Y:
        return f"batch * heads = {q.shape[0] * q.shape[1]} > {_MAX_GRID_Y} (grid limit)"
    return None


_said: set[str] = set()


def _say(reason: str) -> None:
    from .. import settings

    if settings.get().dispatch_log and reason not in _said:
        _said.add(reason)
        print(f"[kernelloop dispatch] attention: PyTorch ({reason})", file=sys.stderr)


def seed_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """The seed kernel as the library calls it: ``seed(q, k, v, causal=..., scale=...)``."""
    scale = default_scale(q.shape[-1]) if scale is None else float(scale)
    reason = unsupported_reason(q, k, v)
    if reason is not None:
        _say(reason)
        return reference_attention(q, k, v, causal, scale)
    # Imported here, not at module import: triton is read only when a kernel runs, and the
    # interpreter switch (TRITON_INTERPRET) is honoured if it is set before the first call.
    from ..kernels.attention import flash_attention

    return flash_attention(q, k, v, bool(causal), scale)


def attention_bucket(tensors: Sequence[torch.Tensor], config: dict[str, Any]) -> str:
    """Shape bucket of a call, e.g. ``d128-s4096-causal-g4``.

    Bundled problems (where entries come from) have L_q == L_k and one head_dim for q, k and v;
    other calls get a ``-kv<bucket>`` / ``-dv<D>`` suffix that no entry carries, so they run the
    seed kernel (or the reference) rather than an entry that was never verified on them.
    """
    q, k, v = tensors[:3]
    seq_q, seq_k = q.shape[2], k.shape[2]
    seq = f"s{pow2_bucket(seq_q)}" + ("" if seq_q == seq_k else f"-kv{pow2_bucket(seq_k)}")
    dim = f"d{q.shape[3]}" + ("" if v.shape[3] == q.shape[3] else f"-dv{v.shape[3]}")
    mode = "causal" if config.get("causal", False) else "full"
    return f"{dim}-{seq}-{mode}-g{q.shape[1] // k.shape[1]}"


SPEC = register(
    OpSpec(
        name="attention",
        problems=("modules/01_attention_fp16", "modules/02_attention_causal_gqa_bf16"),
        reference=reference_attention,
        seed=seed_attention,
        init_args=lambda cfg: [cfg.get("causal", False), cfg.get("scale")],
        config_from_init=lambda init: {"causal": bool(init[0]), "scale": init[1]},
        bucket=attention_bucket,
    )
)


def _attention_impl(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, scale: float
) -> torch.Tensor:
    # Library entries were verified on contiguous inputs only (the evaluator makes them so);
    # a transposed view from a projection is copied once here rather than trusted to them.
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    return dispatch("attention", q, k, v, causal=causal, scale=scale)


_attention_op = torch.library.custom_op("kernelloop::attention", mutates_args=())(_attention_impl)


@_attention_op.register_fake
def _(q, k, v, causal, scale):
    return q.new_empty((*q.shape[:-1], v.shape[-1]))


def _setup_context(ctx, inputs, output):
    q, k, v, causal, scale = inputs
    ctx.save_for_backward(q, k, v)
    ctx.causal, ctx.scale = causal, scale


def _backward(ctx, grad):
    # The forward kept no softmax statistics (they live only inside the kernel), so recompute
    # the forward with SDPA and let PyTorch differentiate that.
    with torch.enable_grad():
        q, k, v = (t.detach().requires_grad_(True) for t in ctx.saved_tensors)
        out = reference_attention(q, k, v, ctx.causal, ctx.scale)
        dq, dk, dv = torch.autograd.grad(out, (q, k, v), grad)
    return dq, dk, dv, None, None


_attention_op.register_autograd(_backward, setup_context=_setup_context)


# Plans by call signature (every tensor's shape, strides, dtype, device and type; causal and scale
# with their types): (tensor types plain, dispatch config, dispatcher slot, all contiguous).
_plans: dict = plan_cache()


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale [+ top-left causal mask]) v; see the module docstring."""
    plan = None
    if not torch.compiler.is_compiling():  # dynamo traces the plain path below, not the cache
        try:
            # fmt: off
            key = (
                q.shape, q.stride(), q.dtype, q.device, type(q),
                k.shape, k.stride(), k.dtype, k.device, type(k),
                v.shape, v.stride(), v.dtype, v.device, type(v),
                causal, type(causal), scale, type(scale),
            )
            # fmt: on
            plan = _plans.get(key)
        except (AttributeError, TypeError):  # symbolic sizes, not tensors
            key = None
        if plan is None and key is not None and cacheable(causal, scale):
            check_inputs(q, k, v)
            scale = default_scale(q.shape[-1]) if scale is None else float(scale)
            config = {"causal": bool(causal), "scale": scale}
            dense = q.is_contiguous() and k.is_contiguous() and v.is_contiguous()
            plan = keep(_plans, key, (all_plain(q, k, v), config, [], dense))
    if plan is None:
        check_inputs(q, k, v)
        scale = default_scale(q.shape[-1]) if scale is None else float(scale)
        op = _attention_impl if bypass_custom_op(q, k, v) else _attention_op
        return op(q, k, v, bool(causal), scale)
    plain, config, slot, dense = plan
    if plain and not (
        torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    ):
        # _attention_impl's work, with the decision from this signature's slot
        if not dense:
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        return dispatcher.dispatch_in(slot, "attention", (q, k, v), config)
    return _attention_op(q, k, v, config["causal"], config["scale"])


class Attention(nn.Module):
    """Multi-head (or grouped-query) attention: q/k/v projections, ``attention``, o projection.

    ``x`` is (batch, seq, embed_dim); ``forward(x)`` is self-attention, ``forward(x, context)``
    attends from ``x`` to ``context`` (batch, seq_kv, embed_dim). ``num_kv_heads`` < ``num_heads``
    gives grouped-query attention (K/V projections of num_kv_heads * head_dim outputs).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        causal: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(
                f"num_heads {num_heads} is not a multiple of num_kv_heads {num_kv_heads}"
            )
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.causal = causal
        kv_dim = num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, kv_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, kv_dim, bias=bias)
        self.o_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def _heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        batch, seq, _ = x.shape
        return x.view(batch, seq, heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self._heads(self.q_proj(x), self.num_heads)
        k = self._heads(self.k_proj(context), self.num_kv_heads)
        v = self._heads(self.v_proj(context), self.num_kv_heads)
        out = attention(q, k, v, causal=self.causal)
        batch, seq = x.shape[:2]
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, self.embed_dim))

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
            f"num_kv_heads={self.num_kv_heads}, causal={self.causal}"
        )
