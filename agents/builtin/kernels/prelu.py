"""PReLU: ``x`` where positive, else ``weight[c] * x`` with ``c`` the channel (dim 1), or one
shared weight. The input is read through its strides as ``[N, C, A, B]`` (the host pads lower
ranks with unit dims), the output is contiguous.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def prelu_kernel(
    x_ptr, w_ptr, out_ptr, TOTAL, C, A, B, xs0, xs1, xs2, xs3,
    PER_CHANNEL: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < TOTAL
    b = offs % B
    a = (offs // B) % A
    c = (offs // (B * A)) % C
    n = offs // (B * A * C)
    x = tl.load(x_ptr + n * xs0 + c * xs1 + a * xs2 + b * xs3, mask=mask, other=0.0)
    if PER_CHANNEL:
        w = tl.load(w_ptr + c, mask=mask, other=0.0)
    else:
        w = tl.load(w_ptr + c * 0, mask=mask, other=0.0)
    xf = x.to(tl.float32)
    y = tl.where(xf > 0.0, xf, w.to(tl.float32) * xf)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)
