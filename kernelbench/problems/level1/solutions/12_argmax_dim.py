"""Known-good Triton solution: argmax over the middle dimension of a contiguous 3-D tensor.

Each program owns BLOCK_C adjacent columns of one batch entry and walks down the reduced
dimension keeping, per lane, the best value and its first index; the final cross-lane
reduction picks the smallest index among the maxima (torch's first-occurrence rule).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _argmax_mid_kernel(x_ptr, y_ptr, R, C, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    offs_r = tl.arange(0, BLOCK_R)
    mask_c = offs_c < C
    base = x_ptr + b * R * C
    best = tl.full([BLOCK_R, BLOCK_C], -float("inf"), dtype=tl.float32)
    best_idx = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.int32)
    for start in range(0, R, BLOCK_R):
        r = start + offs_r
        ptrs = base + r[:, None] * C + offs_c[None, :]
        mask = (r[:, None] < R) & mask_c[None, :]
        x = tl.load(ptrs, mask=mask, other=-float("inf")).to(tl.float32)
        take = x > best
        best = tl.where(take, x, best)
        best_idx = tl.where(take, r[:, None], best_idx)
    col_max = tl.max(best, axis=0)
    cand = tl.where(best == col_max[None, :], best_idx, 2147483647)
    idx = tl.min(cand, axis=0)
    tl.store(y_ptr + b * C + offs_c, idx.to(tl.int64), mask=mask_c)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        B, R, C = x.shape
        y = torch.empty((B, C), dtype=torch.int64, device=x.device)
        BLOCK_C = min(128, triton.next_power_of_2(C))
        BLOCK_R = 16
        grid = (B, triton.cdiv(C, BLOCK_C))
        _argmax_mid_kernel[grid](x, y, R, C, BLOCK_R=BLOCK_R, BLOCK_C=BLOCK_C, num_warps=8)
        return y
