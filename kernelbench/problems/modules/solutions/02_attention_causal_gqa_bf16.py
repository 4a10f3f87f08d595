"""Known-good Triton solution: FlashAttention-2-style forward for kernelloop's `attention` op.

One program per (query tile of BLOCK_M rows, batch * query head). K/V stream through in BLOCK_N
tiles with an online softmax in fp32 (running max and sum; exp2 with log2(e) folded into the
scale); both products run on bf16 tensor cores with fp32 accumulation. The key loop is split into
whole tiles (no masks) and a short masked stretch: the key tail, and for causal the tiles on the
diagonal (top-left aligned as SDPA's is_causal; later keys are never visited). Query head h reads
K/V head h // (Hq // Hkv). The same kernel as kernelloop.modules' seed, copied: a candidate
imports only torch, triton and math.
"""

import math

import torch
import torch.nn as nn
import triton
import triton.language as tl

LOG2_E = 1.4426950408889634
# padded head dim -> (BLOCK_M, BLOCK_N, num_warps, num_stages); see the module docstring
TILES = {
    16: (128, 64, 4, 3),
    32: (128, 64, 4, 3),
    64: (128, 64, 4, 3),
    128: (128, 64, 8, 3),
    256: (64, 32, 4, 2),
}


@triton.jit
def _mma(a, b, acc, FP32_DOT: tl.constexpr):
    # FP32_DOT: exact fp32 products, for float32 inputs and for bfloat16 under the CPU
    # interpreter (its tl.dot multiplies bfloat16 bit patterns; bf16 -> fp32 is exact).
    if FP32_DOT:
        acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        acc = tl.dot(a, b, acc)
    return acc


@triton.jit
def _key_tiles(
    acc, l_i, m_i, q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd,
    offs_m, lo, hi, seq_k, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    MASKED: tl.constexpr, CAUSAL: tl.constexpr, FP32_DOT: tl.constexpr,
):  # fmt: skip
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
        s = s * qk_scale
        if MASKED:
            keep = col_ok[None, :]
            if CAUSAL:
                keep = keep & (cols[None, :] <= offs_m[:, None])
            s = tl.where(keep, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = _mma(p.to(v.dtype), v, acc * alpha[:, None], FP32_DOT)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _attention_fwd(
    q_ptr, k_ptr, v_ptr, o_ptr, seq_q, seq_k, q_heads, group, qk_scale,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_om, stride_od,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    CAUSAL: tl.constexpr, FP32_DOT: tl.constexpr,
):  # fmt: skip
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

    full_tiles_end = (seq_k // BLOCK_N) * BLOCK_N
    if CAUSAL:
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


def _attention(q, k, v, causal, scale):
    batch, q_heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    out = torch.empty((batch, q_heads, seq_q, head_dim), dtype=q.dtype, device=q.device)
    block_d = max(16, triton.next_power_of_2(head_dim))
    tile_m, tile_n, warps, stages = TILES[block_d]
    block_m = max(16, min(tile_m, triton.next_power_of_2(seq_q)))
    block_n = max(16, min(tile_n, triton.next_power_of_2(seq_k)))
    if block_m < 128:
        warps = min(warps, 4)
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    fp32_dot = q.dtype == torch.float32 or (q.dtype == torch.bfloat16 and q.device.type == "cpu")
    grid = (triton.cdiv(seq_q, block_m), batch * q_heads)
    _attention_fwd[grid](
        q, k, v, out,
        seq_q, seq_k, q_heads, q_heads // kv_heads, float(scale) * LOG2_E,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        HEAD_DIM=head_dim, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d,
        CAUSAL=bool(causal), FP32_DOT=fp32_dot,
        num_warps=warps, num_stages=stages,
    )  # fmt: skip
    return out


class ModelNew(nn.Module):
    def __init__(self, causal, scale):
        super().__init__()
        self.causal = causal
        self.scale = scale

    def forward(self, q, k, v):
        return _attention(q, k, v, self.causal, self.scale)
