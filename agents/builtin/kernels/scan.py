"""Cumulative sums and products along one dim of an ``[outer, R, inner]`` view.

A program owns one outer index and ``BI`` inner columns and walks ``R`` in ``BR``-row tiles in
*scan order*: each tile is scanned in registers and combined with the running total of the tiles
before it, so any length takes one pass over memory. The variants are constexpr, so each compiles
to straight-line code:

- ``PROD``: a product instead of a sum, accumulated in float64 as PyTorch does on the CPU: a
  float32 product that leaves the float32 range in the middle of a row (a long row of values
  around 2) would otherwise overflow where the reference's does not, and the other way round;
- ``REVERSE``: scan order runs from the last element to the first (``flip . cumsum . flip``);
- ``EXCLUSIVE``: element ``s`` gets the total of the elements before it in scan order (the
  first gets the identity), read as the inclusive scan of the input shifted by one;
- ``MASKED``: each element is multiplied by a second (bool) tensor first (``cumsum(x * mask)``).

Rows past the end load the identity, so a tile's last row always holds the running total.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _scan_kernel(x_ptr, m_ptr, out_ptr, R, I, xs0, xs1, xs2, ms0, ms1, ms2,
                 PROD: tl.constexpr, REVERSE: tl.constexpr, EXCLUSIVE: tl.constexpr,
                 MASKED: tl.constexpr, BR: tl.constexpr, BI: tl.constexpr):  # fmt: skip
    pid = tl.program_id(0).to(tl.int64)
    nib = tl.cdiv(I, BI)
    o = pid // nib
    i = (pid % nib) * BI + tl.arange(0, BI)
    imask = i < I
    r0 = tl.arange(0, BR)
    if PROD:
        identity = 1.0
        carry = tl.full([BI], 1.0, tl.float64)
    else:
        identity = 0.0
        carry = tl.zeros([BI], tl.float32)
    for start in range(0, R, BR):
        step = start + r0  # positions in scan order
        if EXCLUSIVE:
            src = step - 1
        else:
            src = step
        if REVERSE:
            src_row = R - 1 - src
            dst_row = R - 1 - step
        else:
            src_row = src
            dst_row = step
        src_row = src_row.to(tl.int64)
        lmask = ((src >= 0) & (src < R))[:, None] & imask[None, :]
        x_offs = o * xs0 + src_row[:, None] * xs1 + i[None, :] * xs2
        x = tl.load(x_ptr + x_offs, mask=lmask, other=identity).to(tl.float32)
        if MASKED:
            m_offs = o * ms0 + src_row[:, None] * ms1 + i[None, :] * ms2
            m = tl.load(m_ptr + m_offs, mask=lmask, other=1)
            x = x * m.to(tl.float32)
        if PROD:
            c = tl.cumprod(x.to(tl.float64), axis=0) * carry[None, :]
        else:
            c = tl.cumsum(x, axis=0) + carry[None, :]
        smask = (step < R)[:, None] & imask[None, :]
        o_offs = (o * R + dst_row.to(tl.int64))[:, None] * I + i[None, :]
        tl.store(out_ptr + o_offs, c.to(out_ptr.dtype.element_ty), mask=smask)
        carry = tl.sum(tl.where((r0 == BR - 1)[:, None], c, 0.0), axis=0)
