"""Known-good Triton solution: NCHW max-pool 2d, one lane per output element.

The window is unrolled at compile time (KS is a constexpr); padded taps are masked to -inf.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _maxpool2d_kernel(
    x_ptr, y_ptr, total, H, W, OH, OW, stride, pad, KS: tl.constexpr, BLOCK: tl.constexpr
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < total
    ow = offs % OW
    t = offs // OW
    oh = t % OH
    nc = t // OH
    base = x_ptr + nc.to(tl.int64) * H * W
    ih0 = oh * stride - pad
    iw0 = ow * stride - pad
    acc = tl.full([BLOCK], -float("inf"), dtype=tl.float32)
    for kh in tl.static_range(KS):
        ih = ih0 + kh
        row_ok = mask & (ih >= 0) & (ih < H)
        for kw in tl.static_range(KS):
            iw = iw0 + kw
            ok = row_ok & (iw >= 0) & (iw < W)
            v = tl.load(base + ih * W + iw, mask=ok, other=-float("inf")).to(tl.float32)
            acc = tl.maximum(acc, v)
    tl.store(y_ptr + offs, acc.to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

    def forward(self, x):
        x = x.contiguous()
        NB, C, H, W = x.shape
        ks, st, pad = self.kernel_size, self.stride, self.padding
        OH = (H + 2 * pad - ks) // st + 1
        OW = (W + 2 * pad - ks) // st + 1
        y = torch.empty((NB, C, OH, OW), dtype=x.dtype, device=x.device)
        total = y.numel()
        BLOCK = 1024
        grid = (triton.cdiv(total, BLOCK),)
        _maxpool2d_kernel[grid](x, y, total, H, W, OH, OW, st, pad, KS=ks, BLOCK=BLOCK, num_warps=4)
        return y
