"""Known-good Triton solution: per-row cross-entropy in one streaming pass.

One program per row keeps an online (max, sum of exp) over BLOCK-wide chunks of the logits and
reads the target logit with a single gathered load: loss = max + log(sum) - logit[target].
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _cross_entropy_kernel(x_ptr, t_ptr, y_ptr, n_cols, stride_x, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    cols = tl.arange(0, BLOCK)
    m = -float("inf")
    s = 0.0
    for start in range(0, n_cols, BLOCK):
        c = start + cols
        x = tl.load(x_row + c, mask=c < n_cols, other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    target = tl.load(t_ptr + row)
    x_t = tl.load(x_row + target).to(tl.float32)
    loss = m + tl.log(s) - x_t
    tl.store(y_ptr + row, loss.to(y_ptr.dtype.element_ty))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, logits, targets):
        logits = logits.contiguous()
        targets = targets.contiguous()
        n_rows, n_cols = logits.shape
        y = torch.empty((n_rows,), dtype=logits.dtype, device=logits.device)
        BLOCK = min(4096, triton.next_power_of_2(n_cols))
        _cross_entropy_kernel[(n_rows,)](
            logits, targets, y, n_cols, logits.stride(0), BLOCK=BLOCK, num_warps=8
        )
        return y
