"""Triton kernels of the quantized GEMM: ``out = x @ W^T (+ bias)`` with W stored packed.

- ``_wxa16_kernel``: weight-only INT8/INT6/INT4 (W8A16, W6A16, W4A16). Each program loads packed
  bytes of a ``BLOCK_K x BLOCK_N`` weight tile and unpacks the codes with shifts and masks
  (layouts in ``qgemm_pack.py``). When BLOCK_K divides the group size (the usual case) the codes
  go to ``tl.dot`` as they are (exact in fp16/bf16) and the group's scale and zero are applied to
  the fp32 partial sum: ``s * (x . q - z * sum(x))``. Otherwise each element is dequantised,
  ``(code - zero) * scale`` in fp32 rounded to x's dtype, before the dot. Both accumulate in
  fp32; they differ from the PyTorch reference (which rounds the dequantised weight to x's
  dtype) by that rounding and the summation order.
- ``_quantize_rows_kernel`` + ``_w8a8_kernel``: W8A8. Activations get one dynamic scale per row
  (token), ``s_x = max|x| / 127``, codes ``round_half_away(x / s_x)``; the GEMM runs ``tl.dot`` on
  int8 x int8 with int32 accumulation per weight group, then scales the group's partial sum in
  fp32 (and, for asymmetric weights, adds ``(128 - zero) * sum(x_q)``, because ``code - zero`` of
  an 8-bit code does not fit int8 while ``code - 128`` does).
- ``_splitk_reduce_kernel``: split-K. At small batch (M <= 16) the weight is the traffic and
  ``cdiv(N, BLOCK_N)`` programs would leave most SMs idle, so K is split across programs that
  write fp32 partials; this kernel sums them in a fixed order (deterministic, unlike atomics),
  adds the bias and casts.

Launchers take 2-D contiguous ``x`` (M, K) and return (M, N) in x's dtype.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import triton
import triton.language as tl

from .qgemm_pack import ACT_EPS


@triton.jit
def _load_codes(w_rows, k0, k_end, mask_n, BITS: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_K: tl.constexpr):  # fmt: skip
    """int32 codes (BLOCK_K x BLOCK_N) of the packed weight at input features k0 + [0, BLOCK_K)
    for the rows ``w_rows`` (1 x BLOCK_N pointers to each row's first byte).

    Every packed byte is loaded once, from a tile laid along K (each row's bytes are
    contiguous there), and the codes are cut out and put back in K order in registers. Loading
    the bytes of each code instead (byte k // 2 for INT4; two bytes per code for INT6) fetched
    each byte two or more times as 1-byte gathers: on sm_90 at the small-batch tile (16x64x128,
    4 warps) that took 234 (INT4) and 255 (INT6) registers per thread.
    """
    rows = w_rows.T  # BLOCK_N x 1
    if BITS == 8:
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask = mask_n[:, None] & (offs_k < k_end)[None, :]
        q = tl.load(rows + offs_k[None, :], mask=mask, other=0).to(tl.int32)
    elif BITS == 4:  # byte j = code 2j (low nibble) | code 2j + 1 (high nibble)
        j = k0 // 2 + tl.arange(0, BLOCK_K // 2)  # k0 is a multiple of BLOCK_K, so even
        mask = mask_n[:, None] & (2 * j < k_end)[None, :]
        byte = tl.load(rows + j[None, :], mask=mask, other=0).to(tl.int32)
        q = tl.reshape(tl.join(byte & 0xF, byte >> 4), (BLOCK_N, BLOCK_K))
    else:  # INT6: bytes 3j..3j+2 = the 24-bit word of codes 4j..4j+3, 6 bits each, low first
        j = k0 // 4 + tl.arange(0, BLOCK_K // 4)
        mask = mask_n[:, None] & (4 * j < k_end)[None, :]
        word = tl.load(rows + 3 * j[None, :], mask=mask, other=0).to(tl.int32)
        word |= tl.load(rows + 3 * j[None, :] + 1, mask=mask, other=0).to(tl.int32) << 8
        word |= tl.load(rows + 3 * j[None, :] + 2, mask=mask, other=0).to(tl.int32) << 16
        # join stacks on a new last axis: join(join(c0, c2), join(c1, c3)) flattens to c0..c3
        even = tl.join(word & 0x3F, (word >> 12) & 0x3F)
        odd = tl.join((word >> 6) & 0x3F, (word >> 18) & 0x3F)
        q = tl.reshape(tl.join(even, odd), (BLOCK_N, BLOCK_K))
    return tl.trans(q)


@triton.jit
def _tile_ids(M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    # Grouped order: consecutive programs share x row-panels and weight column-panels in L2.
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    per_group = GROUP_M * num_pid_n
    first_m = (pid // per_group) * GROUP_M
    size_m = tl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % size_m
    pid_n = (pid % per_group) // size_m
    return pid_m, pid_n


@triton.jit
def _store_tile(out_ptr, b_ptr, acc, offs_m, offs_n, M, N, stride_om, stride_os,
                HAS_BIAS: tl.constexpr, SPLIT_K: tl.constexpr):  # fmt: skip
    mask = (offs_m[:, None] < M) & (offs_n[None, :] < N)
    if SPLIT_K == 1:
        if HAS_BIAS:
            bias = tl.load(b_ptr + offs_n, mask=offs_n < N, other=0.0).to(tl.float32)
            acc = acc + bias[None, :]
        ptrs = out_ptr + offs_m[:, None] * stride_om + offs_n[None, :]
        tl.store(ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask)
    else:  # fp32 partials, summed (with the bias) by _splitk_reduce_kernel
        ptrs = (
            out_ptr + tl.program_id(1) * stride_os + offs_m[:, None] * stride_om + offs_n[None, :]
        )
        tl.store(ptrs, acc, mask=mask)


@triton.jit
def _dot(a, b, DOT_FP32: tl.constexpr):
    """a @ b with fp32 accumulation (fp32 inputs: exact products, no TF32)."""
    if DOT_FP32:
        # Only under the CPU interpreter: its tl.dot multiplies bfloat16 operands as raw uint16
        # (Triton 3.9). bf16 values are exact in fp32, so the result is unchanged.
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    elif a.dtype == tl.float32:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a, b, out_dtype=tl.float32)


@triton.jit
def _partial(x, q, offs_k, k0, mask_n, w_mask, s_rows, z_rows, GROUP: tl.constexpr,
             MID: tl.constexpr, SYMMETRIC: tl.constexpr, SCALE_PER_BLOCK: tl.constexpr,
             DOT_FP32: tl.constexpr, BLOCK_K: tl.constexpr):  # fmt: skip
    """x (BLOCK_M x k) times the weight of the int32 codes ``q`` (k x BLOCK_N) at input features
    ``offs_k``, dequantised with their groups' scales and zeros, in fp32."""
    if SCALE_PER_BLOCK:
        # BLOCK_K divides GROUP: the K-slice shares one scale and zero per column, so they move
        # out of the dot: sum_k x (q - z) s = s * (x . q - z * sum_k x). Per weight element that
        # leaves unpack + one int -> float convert (codes < 256 are exact in fp16 and bf16); the
        # products and sums are exact-ish in the fp32 accumulator.
        g = k0 // GROUP
        s = tl.load(s_rows + g, mask=mask_n, other=0.0).to(tl.float32)
        if SYMMETRIC:
            z = tl.full((q.shape[1],), MID, tl.float32)
        else:
            z = tl.load(z_rows + g, mask=mask_n, other=0.0).to(tl.float32)
        if DOT_FP32:  # the interpreter also mis-casts int -> bfloat16
            part = _dot(x, q.to(tl.float32), DOT_FP32)
        else:
            part = _dot(x, q.to(x.dtype), DOT_FP32)
        x_sum = tl.sum(x.to(tl.float32), axis=1)
        return (part - x_sum[:, None] * z[None, :]) * s[None, :]
    else:  # dequantise each element, rounded to x's dtype, then the dot
        if GROUP % BLOCK_K == 0:
            # The slice lies in one group (k0 steps by BLOCK_K): one scale and zero per column,
            # broadcast. Gathering a BLOCK_K x BLOCK_N tile of them instead held 255 registers
            # and spilled (sm_90, 16x64x128, INT4).
            g = k0 // GROUP
            s = tl.load(s_rows + g, mask=mask_n, other=0.0).to(tl.float32)[None, :]
            if SYMMETRIC:
                z = MID
            else:
                z = tl.load(z_rows + g, mask=mask_n, other=0.0).to(tl.float32)[None, :]
        else:  # the slice spans groups: each element's own scale and zero
            g = offs_k[:, None] // GROUP
            s = tl.load(s_rows[None, :] + g, mask=w_mask, other=0.0).to(tl.float32)
            if SYMMETRIC:
                z = MID
            else:
                z = tl.load(z_rows[None, :] + g, mask=w_mask, other=0.0).to(tl.float32)
        w = ((q.to(tl.float32) - z) * s).to(x.dtype)
        return _dot(x, w, DOT_FP32)


@triton.jit
def _wxa16_kernel(
    x_ptr, w_ptr, s_ptr, z_ptr, b_ptr, out_ptr,
    M, N, K, k_per_split,
    stride_xm, stride_wn, stride_sn, stride_om, stride_os,
    BITS: tl.constexpr, GROUP: tl.constexpr, MID: tl.constexpr, SYMMETRIC: tl.constexpr,
    SCALE_PER_BLOCK: tl.constexpr, HAS_BIAS: tl.constexpr, SPLIT_K: tl.constexpr,
    DOT_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):  # fmt: skip
    pid_m, pid_n = _tile_ids(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    x_rows = x_ptr + offs_m[:, None] * stride_xm
    # int64: a large weight's byte offset (N * packed row bytes) can pass 2**31
    w_rows = w_ptr + offs_n.to(tl.int64)[None, :] * stride_wn
    s_rows = s_ptr + offs_n * stride_sn
    z_rows = z_ptr + offs_n * stride_sn
    k_start = tl.program_id(1) * k_per_split
    k_end = tl.minimum(K, k_start + k_per_split)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < k_end
        w_mask = mask_k[:, None] & mask_n[None, :]
        x = tl.load(x_rows + offs_k[None, :], mask=mask_m[:, None] & mask_k[None, :], other=0.0)
        q = _load_codes(w_rows, k0, k_end, mask_n, BITS, BLOCK_N, BLOCK_K)
        acc += _partial(x, q, offs_k, k0, mask_n, w_mask, s_rows, z_rows,
                        GROUP, MID, SYMMETRIC, SCALE_PER_BLOCK, DOT_FP32, BLOCK_K)  # fmt: skip
    _store_tile(out_ptr, b_ptr, acc, offs_m, offs_n, M, N, stride_om, stride_os, HAS_BIAS, SPLIT_K)


@triton.jit
def _quantize_rows_kernel(x_ptr, xq_ptr, sx_ptr, K, stride_xm, stride_qm, EPS: tl.constexpr,
                          BLOCK_K: tl.constexpr):  # fmt: skip
    row = tl.program_id(0)
    x_row = x_ptr + row * stride_xm
    amax = tl.zeros((BLOCK_K,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs = k0 + tl.arange(0, BLOCK_K)
        v = tl.load(x_row + offs, mask=offs < K, other=0.0).to(tl.float32)
        amax = tl.maximum(amax, tl.abs(v))
    scale = tl.maximum(tl.max(amax, axis=0), EPS) / 127.0
    for k0 in range(0, K, BLOCK_K):
        offs = k0 + tl.arange(0, BLOCK_K)
        v = tl.load(x_row + offs, mask=offs < K, other=0.0).to(tl.float32) / scale
        q = tl.where(v >= 0, v + 0.5, v - 0.5).to(tl.int32)  # round half away from zero
        q = tl.minimum(tl.maximum(q, -127), 127)
        tl.store(xq_ptr + row * stride_qm + offs, q.to(tl.int8), mask=offs < K)
    tl.store(sx_ptr + row, scale)


@triton.jit
def _w8a8_kernel(
    xq_ptr, sx_ptr, w_ptr, s_ptr, z_ptr, b_ptr, out_ptr,
    M, N, K, group, k_per_split, segment,
    stride_xm, stride_wn, stride_sn, stride_om, stride_os,
    SYMMETRIC: tl.constexpr, HAS_BIAS: tl.constexpr, SPLIT_K: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):  # fmt: skip
    pid_m, pid_n = _tile_ids(M, N, BLOCK_M, BLOCK_N, GROUP_M)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_m = offs_m < M
    mask_n = offs_n < N
    x_rows = xq_ptr + offs_m[:, None] * stride_xm
    w_rows = w_ptr + offs_n.to(tl.int64)[None, :] * stride_wn
    k_start = tl.program_id(1) * k_per_split
    k_end = tl.minimum(K, k_start + k_per_split)

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    # A segment is one weight group, or the split's share of the only group (per-channel).
    for s0 in range(k_start, k_end, segment):
        s_end = tl.minimum(s0 + segment, k_end)
        acc_i = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
        x_sum = tl.zeros((BLOCK_M,), dtype=tl.int32)
        for k0 in range(s0, s_end, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            mask_k = offs_k < s_end
            a = tl.load(x_rows + offs_k[None, :], mask=mask_m[:, None] & mask_k[None, :], other=0)
            q = tl.load(w_rows + offs_k[:, None], mask=mask_k[:, None] & mask_n[None, :], other=128)
            b = (q.to(tl.int32) - 128).to(tl.int8)  # code - 128 fits int8
            acc_i = tl.dot(a, b, acc_i, out_dtype=tl.int32)  # int8 x int8 -> int32: exact
            if not SYMMETRIC:
                x_sum += tl.sum(a.to(tl.int32), axis=1)
        g = s0 // group
        scale = tl.load(s_ptr + offs_n * stride_sn + g, mask=mask_n, other=0.0).to(tl.float32)
        part = acc_i.to(tl.float32)
        if not SYMMETRIC:
            zero = tl.load(z_ptr + offs_n * stride_sn + g, mask=mask_n, other=0.0).to(tl.float32)
            part += x_sum.to(tl.float32)[:, None] * (128.0 - zero)[None, :]
        acc += part * scale[None, :]
    x_scale = tl.load(sx_ptr + offs_m, mask=mask_m, other=0.0)
    acc = acc * x_scale[:, None]
    _store_tile(out_ptr, b_ptr, acc, offs_m, offs_n, M, N, stride_om, stride_os, HAS_BIAS, SPLIT_K)


@triton.jit
def _splitk_reduce_kernel(ws_ptr, b_ptr, out_ptr, M, N, SPLIT_K: tl.constexpr,
                          HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < M * N
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for s in tl.static_range(SPLIT_K):
        acc += tl.load(ws_ptr + s * M * N + offs, mask=mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs % N, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------- launchers


@dataclasses.dataclass(frozen=True)
class Config:
    block_m: int
    block_n: int
    block_k: int
    split_k: int = 1
    num_warps: int = 4
    num_stages: int = 3
    group_m: int = 8


@functools.lru_cache(maxsize=8)
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _pick_split(M: int, N: int, K: int, cfg: Config, weight_bytes: int, device) -> int:
    """Split K until there are ~4 programs per SM, keeping >= 4 K-steps per program and the fp32
    partials' traffic (written and read back) under a quarter of the weight's bytes."""
    if device.type != "cuda":
        return 1  # the interpreter runs programs one by one: more programs only cost time
    tiles = triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n)
    target = 4 * _sm_count(device.index or 0)
    split = 1
    while (
        tiles * split * 2 <= target
        and K // (split * 2) >= 4 * cfg.block_k
        and 2 * (split * 2) * M * N * 4 <= weight_bytes // 4
        and split < 16
    ):
        split *= 2
    return split


def wxa16_config(M: int) -> Config:
    """The launcher's tiles for M rows; the builtin qlinear template emits the same."""
    if M <= 16:  # GEMV-like: weight bandwidth is everything; narrow N tiles, split-K
        return Config(16, 64, 128, num_warps=4, num_stages=4)
    if M <= 64:
        return Config(64, 64, 64, num_warps=4, num_stages=4)
    return Config(128, 128, 64, num_warps=8, num_stages=3)


def fit_group(cfg: Config, group_size: int) -> Config:
    """Shrink BLOCK_K to a power-of-two group size (>= 64) it does not divide, so that each K step
    needs one scale per column instead of a gather of BLOCK_K x BLOCK_N scales."""
    pow2 = group_size & -group_size  # the largest power of two dividing group_size
    if group_size % cfg.block_k and pow2 >= 64:
        return dataclasses.replace(cfg, block_k=min(cfg.block_k, pow2))
    return cfg


def w8a8_config(M: int) -> Config:
    """The launcher's tiles for M rows; the builtin qlinear template emits the same."""
    if M <= 16:
        return Config(16, 64, 128, num_warps=4, num_stages=4)
    if M <= 64:
        return Config(64, 64, 128, num_warps=4, num_stages=4)
    return Config(128, 128, 128, num_warps=8, num_stages=3)


def _check(x, packed, scales, zeros, bias, group_size):
    if x.dim() != 2 or packed.dim() != 2 or packed.dtype != torch.uint8:
        raise ValueError("expected x (M, K) and a packed uint8 weight (N, packed_cols)")
    N, K = packed.shape[0], x.shape[1]
    if K % group_size or scales.shape != (N, K // group_size):
        raise ValueError(
            f"scales must be (N, K // group_size) = ({N}, {K // group_size}), got "
            f"{tuple(scales.shape)}; K={K}, group_size={group_size}"
        )
    if zeros is not None and zeros.shape != scales.shape:
        raise ValueError(f"zeros must have the scales' shape {tuple(scales.shape)}")
    if bias is not None and bias.shape != (N,):
        raise ValueError(f"bias must be ({N},), got {tuple(bias.shape)}")


def _launch_reduce(ws, bias, out, M, N, split):
    block = 1024
    _splitk_reduce_kernel[(triton.cdiv(M * N, block),)](
        ws, bias if bias is not None else ws, out, M, N,
        SPLIT_K=split, HAS_BIAS=bias is not None, BLOCK=block,
    )  # fmt: skip


def _split_plan(K: int, split: int, block_k: int) -> tuple[int, int]:
    """(k_per_split, programs along K): whole BLOCK_K steps per split."""
    k_per_split = triton.cdiv(triton.cdiv(K, split), block_k) * block_k
    return k_per_split, triton.cdiv(K, k_per_split)


def wxa16_linear(x, packed, scales, zeros, bias, *, bits: int, group_size: int,
                 config: Config | None = None) -> torch.Tensor:  # fmt: skip
    """Weight-only quantized linear: x (M, K) float, packed (N, bytes) uint8 -> (M, N) x.dtype."""
    _check(x, packed, scales, zeros, bias, group_size)
    x = x.contiguous()
    scales = scales.contiguous()
    zeros = zeros.contiguous() if zeros is not None else None
    M, K = x.shape
    N = packed.shape[0]
    cfg = config or fit_group(wxa16_config(M), group_size)
    split = cfg.split_k if config else _pick_split(M, N, K, cfg, packed.numel(), x.device)
    k_per_split, split = _split_plan(K, split, cfg.block_k)
    out = torch.empty((M, N), device=x.device, dtype=x.dtype)
    target = out if split == 1 else torch.empty((split, M, N), device=x.device, dtype=torch.float32)
    grid = (triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n), split)
    _wxa16_kernel[grid](
        x, packed, scales, zeros if zeros is not None else scales,
        bias if bias is not None else scales, target,
        M, N, K, k_per_split,
        x.stride(0), packed.stride(0), scales.stride(0), N, M * N,
        BITS=bits, GROUP=group_size, MID=1 << (bits - 1), SYMMETRIC=zeros is None,
        SCALE_PER_BLOCK=group_size % cfg.block_k == 0, HAS_BIAS=bias is not None,
        SPLIT_K=split, DOT_FP32=x.dtype == torch.bfloat16 and x.device.type == "cpu",
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_M=cfg.group_m,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    if split > 1:
        _launch_reduce(target, bias, out, M, N, split)
    return out


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (per-token) dynamic int8 quantisation: (codes int8 (M, K), scales fp32 (M,))."""
    x = x.contiguous()
    M, K = x.shape
    xq = torch.empty((M, K), device=x.device, dtype=torch.int8)
    sx = torch.empty((M,), device=x.device, dtype=torch.float32)
    block = min(triton.next_power_of_2(K), 2048)
    _quantize_rows_kernel[(M,)](x, xq, sx, K, x.stride(0), xq.stride(0), EPS=ACT_EPS, BLOCK_K=block)
    return xq, sx


def w8a8_linear(x, packed, scales, zeros, bias, *, group_size: int,
                config: Config | None = None) -> torch.Tensor:  # fmt: skip
    """INT8 weights x dynamically quantised INT8 activations, int32 accumulation per group."""
    _check(x, packed, scales, zeros, bias, group_size)
    if packed.shape[1] != x.shape[1]:
        raise ValueError("W8A8 needs an INT8 weight (one byte per value)")
    scales = scales.contiguous()
    zeros = zeros.contiguous() if zeros is not None else None
    xq, sx = quantize_rows(x)
    M, K = x.shape
    N = packed.shape[0]
    cfg = config or w8a8_config(M)
    split = cfg.split_k if config else _pick_split(M, N, K, cfg, packed.numel(), x.device)
    groups = K // group_size
    if split == 1:
        k_per_split = K
    elif groups == 1:  # per-channel scales: any split of K works, the scale applies to all
        k_per_split, split = _split_plan(K, split, cfg.block_k)
    else:  # splits of whole groups: a group's int32 sum is scaled once
        k_per_split = triton.cdiv(groups, min(split, groups)) * group_size
        split = triton.cdiv(K, k_per_split)
    out = torch.empty((M, N), device=x.device, dtype=x.dtype)
    target = out if split == 1 else torch.empty((split, M, N), device=x.device, dtype=torch.float32)
    grid = (triton.cdiv(M, cfg.block_m) * triton.cdiv(N, cfg.block_n), split)
    _w8a8_kernel[grid](
        xq, sx, packed, scales, zeros if zeros is not None else scales,
        bias if bias is not None else scales, target,
        M, N, K, group_size, k_per_split, min(group_size, k_per_split),
        xq.stride(0), packed.stride(0), scales.stride(0), N, M * N,
        SYMMETRIC=zeros is None, HAS_BIAS=bias is not None, SPLIT_K=split,
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_M=cfg.group_m,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    if split > 1:
        _launch_reduce(target, bias, out, M, N, split)
    return out
