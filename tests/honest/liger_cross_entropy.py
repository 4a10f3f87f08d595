"""Liger-Kernel (ops/cross_entropy.py) style per-row cross entropy with an online softmax.

Idioms: libdevice `tanh` import fallback used only under a `HAS_SOFTCAPPING` constexpr,
`LOG2_E = tl.constexpr(...)` global with `tl.exp2(x * LOG2_E)`, scalar loop-carried `m = float("-inf")`
/ `d = 0.0`, an early `return` for `ignore_index`, int64 target load, `reduction`/`label_smoothing`
constexprs (str and float), optional pointers passed as `None`, a keyword-argument launch with
`X_stride=_input.stride(-2)`, `MAX_FUSED_SIZE = 65536 // 2`, `min(MAX_FUSED_SIZE,
triton.next_power_of_2(V))`, `torch.zeros(n_rows, ...)`, `isinstance(..., bool)` asserts.
"""
# problem: level1/21_cross_entropy

from typing import Optional

import torch
import torch.nn as nn
import triton
import triton.language as tl

try:
    # typical import path with dispatch available
    from triton.language.extra.libdevice import tanh
except ModuleNotFoundError:
    # for working with NGC containers
    from triton.language.extra.cuda.libdevice import tanh

# log2(e): e^x = 2^(x * LOG2_E)
LOG2_E = tl.constexpr(1.4426950408889634)

# The optimal maximum block size depends on the hardware, the kernel and the dtype
MAX_FUSED_SIZE = 65536 // 2


@triton.jit
def cross_entropy_kernel(
    X_ptr,
    X_stride,
    Y_ptr,
    Y_stride,
    loss_ptr,
    z_loss_ptr,
    loss_stride,
    n_cols,
    ignore_index,
    lse_square_scale: tl.constexpr,
    label_smoothing: tl.constexpr,
    reduction: tl.constexpr,
    softcap,
    RETURN_Z_LOSS: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    HAS_SOFTCAPPING: tl.constexpr,
):
    """Per-row loss = logsumexp(x) - x[y], with an optional z-loss, label smoothing and softcap."""
    program_id = tl.program_id(0).to(tl.int64)

    # 1. load the target first: an ignored row is done right away
    Y_ptr += program_id * Y_stride
    y = tl.load(Y_ptr)

    loss_ptr += program_id * loss_stride
    if y == ignore_index:
        tl.store(loss_ptr, 0.0)
        return

    # 2. locate the start of the row
    X_ptr += program_id * X_stride
    if RETURN_Z_LOSS:
        z_loss_ptr += program_id * loss_stride
    if HAS_SOFTCAPPING:
        softcap = softcap.to(tl.float32)

    # 3. online softmax, one pass: running max m and running sum d
    m = float("-inf")
    d = 0.0
    ori_X_y = tl.load(X_ptr + y).cast(tl.float32)
    if HAS_SOFTCAPPING:
        ori_X_y = softcap * tanh(ori_X_y / softcap)

    scaled_x_sum = 0.0
    eps = label_smoothing / n_cols

    for i in range(0, n_cols, BLOCK_SIZE):
        X_offsets = i + tl.arange(0, BLOCK_SIZE)
        X_block = tl.load(X_ptr + X_offsets, mask=X_offsets < n_cols, other=float("-inf")).cast(
            tl.float32
        )
        if HAS_SOFTCAPPING:
            # keep the padding lanes at -inf (tanh would map them to -softcap)
            X_block = tl.where(X_offsets < n_cols, softcap * tanh(X_block / softcap), float("-inf"))
        block_max = tl.max(X_block)
        if label_smoothing > 0:
            scaled_x_sum += tl.sum(tl.where(X_offsets < n_cols, -eps * X_block, 0.0))
        m_new = tl.maximum(m, block_max)
        d = d * tl.exp2((m - m_new) * LOG2_E) + tl.sum(tl.exp2((X_block - m_new) * LOG2_E))
        m = m_new

    # log(sum(e^x_i)) = m + log(d)
    lse = m + tl.log(d)

    loss = lse - ori_X_y
    if label_smoothing > 0:
        smooth_loss = scaled_x_sum + label_smoothing * lse
        loss = loss * (1 - label_smoothing) + smooth_loss

    z_loss = lse_square_scale * lse * lse
    loss += z_loss
    if RETURN_Z_LOSS:
        tl.store(z_loss_ptr, z_loss)
    tl.store(loss_ptr, loss)


def cross_entropy_forward(
    _input: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    lse_square_scale: float = 0.0,
    label_smoothing: float = 0.0,
    reduction: str = "none",
    softcap: Optional[float] = None,
    return_z_loss: bool = False,
):
    assert isinstance(return_z_loss, bool), (
        f"return_z_loss must be True or False. Got: {return_z_loss}"
    )
    assert reduction == "none", "this wrapper returns the unreduced loss"

    BT, V = _input.shape
    n_rows = BT
    BLOCK_SIZE = min(MAX_FUSED_SIZE, triton.next_power_of_2(V))

    # unreduced loss
    loss_1d = torch.zeros(n_rows, dtype=_input.dtype, device=_input.device)
    z_loss_1d = (
        torch.zeros(n_rows, dtype=_input.dtype, device=_input.device) if return_z_loss else None
    )

    # ensure _input and target are contiguous in the last dimension
    if _input.stride(-1) != 1:
        _input = _input.contiguous()
    if target.stride(-1) != 1:
        target = target.contiguous()

    cross_entropy_kernel[(n_rows,)](
        X_ptr=_input,
        X_stride=_input.stride(-2),
        Y_ptr=target,
        Y_stride=target.stride(-1),  # always 1
        loss_ptr=loss_1d,
        z_loss_ptr=z_loss_1d,
        loss_stride=loss_1d.stride(-1),  # always 1
        n_cols=V,
        ignore_index=ignore_index,
        lse_square_scale=lse_square_scale,
        label_smoothing=label_smoothing,
        reduction=reduction,
        softcap=softcap,
        RETURN_Z_LOSS=return_z_loss,
        BLOCK_SIZE=BLOCK_SIZE,
        HAS_SOFTCAPPING=True if softcap is not None else False,
        num_warps=32,
    )
    return loss_1d, z_loss_1d


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, logits, targets):
        loss, _ = cross_entropy_forward(logits, targets)
        return loss
