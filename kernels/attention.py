"""The attention seed kernel: a FlashAttention-2-style forward pass in Triton.

One program owns one (batch * query head, BLOCK_M query rows) tile. It keeps its Q tile in
registers and streams K/V through in BLOCK_N tiles, keeping a running row maximum ``m_i``, a
running row sum ``l_i`` and an fp32 output accumulator (the online softmax: when the maximum
grows, earlier partial sums are rescaled by ``exp(m_old - m_new)``). The (L_q, L_k) score matrix
never exists in memory, so traffic is O(L * D) per head instead of O(L^2).

- exp2 instead of exp, with log2(e) folded into the softmax scale (exp2 is the native MUFU op).
- Masks are compiled only where needed: the key loop is split into full tiles that need no mask
  and a short masked stretch (the key tail, and for causal the tiles crossing the diagonal).
- Causal follows ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``: the mask
  is aligned top-left, query i sees keys j <= i (also when L_q != L_k). A query tile stops at its
  last visible key, so causal costs about half the FLOPs.
- Grouped-query attention: query head h reads K/V head h // (H_q // H_kv), the same mapping as
  ``repeat_interleave`` on the K/V heads (and SDPA's ``enable_gqa``); K/V are never expanded.
- Any strides: tensors are addressed through all four strides, so transposed views work.

Written against triton >= 3.1 (``tl.dot(..., input_precision=...)``); runs on CPU under the
Triton interpreter (``TRITON_INTERPRET=1`` set before triton is imported).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

LOG2_E = 1.4426950408889634


@dataclass(frozen=True)
class TileConfig:
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


# Per padded head dim, for 2-byte dtypes on Hopper/Ampere. Shared memory per program is about
# (BLOCK_M + 2 * num_stages * BLOCK_N) * BLOCK_D * 2 bytes: 64 KiB for d64, 128 KiB for d128,
# 96 KiB for d256, inside the 228 KiB (H100) / 164 KiB (A100) of one SM. The fp32 accumulator
# (BLOCK_M x BLOCK_D) over 32 * num_warps threads stays at 64 registers per thread.
_CONFIGS = {
    16: TileConfig(128, 64, 4, 3),
    32: TileConfig(128, 64, 4, 3),
    64: TileConfig(128, 64, 4, 3),
    128: TileConfig(128, 64, 8, 3),
    256: TileConfig(64, 32, 4, 2),
}


def tile_config(head_dim: int, element_size: int = 2) -> TileConfig:
    cfg = _CONFIGS[max(16, triton.next_power_of_2(head_dim))]
    if element_size > 2:  # float32 (a test dtype): twice the bytes, so half the tiles
        block_n = max(16, cfg.block_n // (4 if head_dim > 128 else 2))
        return TileConfig(min(cfg.block_m, 64), block_n, min(cfg.num_warps, 4), 2)
    return cfg


@triton.jit
def _mma(a, b, acc, FP32_DOT: tl.constexpr):
    # FP32_DOT: exact float32 products. Needed for float32 inputs (TF32 would miss a 1e-4
    # tolerance), and for bfloat16 under the CPU interpreter, whose tl.dot multiplies bfloat16
    # bit patterns as integers (triton-lang/triton#11584); bf16 -> fp32 is exact, so the result
    # matches the GPU's bf16 tensor-core products with fp32 accumulation.
    if FP32_DOT:
        acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        acc = tl.dot(a, b, acc)
    return acc


@triton.jit
def _key_tiles(
    acc,
    l_i,
    m_i,
    q,
    k_base,
    v_base,
    stride_kn,
    stride_kd,
    stride_vn,
    stride_vd,
    offs_m,
    lo,
    hi,
    seq_k,
    qk_scale,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    MASKED: tl.constexpr,
    CAUSAL: tl.constexpr,
    FP32_DOT: tl.constexpr,
):
    """Fold key tiles [lo, hi) into the running (acc, l_i, m_i). MASKED tiles may hold keys past
    the end or (causal) after some query rows; unmasked tiles are fully visible to every row."""
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        k_ptrs = k_base + cols[:, None] * stride_kn + offs_d[None, :] * stride_kd
        v_ptrs = v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd
        if MASKED:
            col_ok = cols < seq_k
            k = tl.load(k_ptrs, mask=col_ok[:, None] & d_ok[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        elif BLOCK_D != HEAD_DIM:
            k = tl.load(k_ptrs, mask=d_ok[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=d_ok[None, :], other=0.0)
        else:
            k = tl.load(k_ptrs)
            v = tl.load(v_ptrs)
        s = _mma(q, tl.trans(k), tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32), FP32_DOT)
        s = s * qk_scale  # now in log2 units: softmax(x) = exp2(x * log2e - max) / sum
        if MASKED:
            keep = col_ok[None, :]
            if CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            s = tl.where(keep, s, float("-inf"))
        # Every row has a visible key in the first tile it folds (key 0 is visible to all rows),
        # so m_new is finite and exp2(-inf - m_new) = 0 for masked entries: no NaN.
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = _mma(p.to(v.dtype), v, acc * alpha[:, None], FP32_DOT)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attention_fwd(
    q_ptr,
    k_ptr,
    v_ptr,
    o_ptr,
    seq_q,
    seq_k,
    q_heads,
    group,
    qk_scale,
    stride_qb,
    stride_qh,
    stride_qm,
    stride_qd,
    stride_kb,
    stride_kh,
    stride_kn,
    stride_kd,
    stride_vb,
    stride_vh,
    stride_vn,
    stride_vd,
    stride_ob,
    stride_oh,
    stride_om,
    stride_od,
    HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    CAUSAL: tl.constexpr,
    FP32_DOT: tl.constexpr,
):
    # Query tiles of one head are neighbours on grid axis 0, so they run close together in time
    # and share that head's K/V through L2.
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    batch = (bh // q_heads).to(tl.int64)
    head = (bh % q_heads).to(tl.int64)
    kv_head = head // group
    q_base = q_ptr + batch * stride_qb + head * stride_qh
    k_base = k_ptr + batch * stride_kb + kv_head * stride_kh
    v_base = v_ptr + batch * stride_vb + kv_head * stride_vh
    o_base = o_ptr + batch * stride_ob + head * stride_oh

    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    io_mask = (offs_m < seq_q)[:, None] & (offs_d < HEAD_DIM)[None, :]
    q = tl.load(
        q_base + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd, mask=io_mask, other=0.0
    )

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    full_tiles_end = (seq_k // BLOCK_N) * BLOCK_N  # keys below this come in whole tiles
    if CAUSAL:
        # Tiles ending at or before this tile's first row are visible to all of its rows; tiles
        # from there up to its last row cross the diagonal; later keys are never visited.
        lo = tl.minimum((m0 // BLOCK_N) * BLOCK_N, full_tiles_end)
        hi = tl.minimum(m0 + BLOCK_M, seq_k)
    else:
        lo = full_tiles_end
        hi = seq_k
    acc, l_i, m_i = _key_tiles(
        acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
        offs_m, 0, lo, seq_k, qk_scale,
        HEAD_DIM, BLOCK_M, BLOCK_N, BLOCK_D, False, CAUSAL, FP32_DOT,
    )  # fmt: skip
    acc, l_i, m_i = _key_tiles(
        acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
        offs_m, lo, hi, seq_k, qk_scale,
        HEAD_DIM, BLOCK_M, BLOCK_N, BLOCK_D, True, CAUSAL, FP32_DOT,
    )  # fmt: skip

    out = acc / l_i[:, None]
    o_ptrs = o_base + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od
    tl.store(o_ptrs, out.to(o_ptr.dtype.element_ty), mask=io_mask)


def _fp32_dot(q: torch.Tensor) -> bool:
    interpreted_bf16 = q.dtype == torch.bfloat16 and q.device.type == "cpu"
    return q.dtype == torch.float32 or interpreted_bf16


def flash_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool,
    scale: float,
    *,
    block_m: int | None = None,
    block_n: int | None = None,
) -> torch.Tensor:
    """softmax(q k^T * scale [+ causal mask]) v for (B, H, L, D) tensors; the caller validated
    shapes (see ``attention.unsupported_reason``). ``block_m``/``block_n`` override the tile
    sizes (tests use small ones to cover many tiles at small sizes)."""
    batch, q_heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    out = torch.empty((batch, q_heads, seq_q, head_dim), dtype=q.dtype, device=q.device)
    cfg = tile_config(head_dim, q.element_size())
    block_d = max(16, triton.next_power_of_2(head_dim))
    # Short sequences: no tile larger than the sequence (fewer wasted rows, fewer programs).
    bm = block_m or max(16, min(cfg.block_m, triton.next_power_of_2(seq_q)))
    bn = block_n or max(16, min(cfg.block_n, triton.next_power_of_2(seq_k)))
    num_warps = cfg.num_warps if bm >= 128 else min(cfg.num_warps, 4)
    grid = (triton.cdiv(seq_q, bm), batch * q_heads)
    _attention_fwd[grid](
        q, k, v, out,
        seq_q, seq_k, q_heads, q_heads // kv_heads, float(scale) * LOG2_E,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        HEAD_DIM=head_dim, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=block_d,
        CAUSAL=bool(causal), FP32_DOT=_fp32_dot(q),
        num_warps=num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    return out
