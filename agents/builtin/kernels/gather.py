"""Copies that only move elements: a strided copy (one input of a ``cat`` into its slab of the
output) and a row gather (``embedding``: rows of a table picked by an index tensor).

Both read and write through strides, so the host passes views (``narrow`` of the output, a
transposed input) and nothing is made contiguous first; offsets are int64, so tables and
outputs past 2**31 elements are addressed correctly.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _copy4d_kernel(src_ptr, dst_ptr, N, D1, D2, D3, s0, s1, s2, s3, t0, t1, t2, t3,
                   BLOCK: tl.constexpr):  # fmt: skip
    # Element k of the [D0, D1, D2, D3] index space, in row-major order; the host pads lower
    # ranks with leading 1s.
    k = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = k < N
    i3 = k % D3
    r = k // D3
    i2 = r % D2
    r = r // D2
    i1 = r % D1
    i0 = r // D1
    v = tl.load(src_ptr + i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3, mask=mask)
    tl.store(dst_ptr + i0 * t0 + i1 * t1 + i2 * t2 + i3 * t3, v, mask=mask)


@triton.jit
def _gather_rows_kernel(idx_ptr, w_ptr, out_ptr, R, D, ws0, ws1,
                        BR: tl.constexpr, BD: tl.constexpr):  # fmt: skip
    # Row r of the output is row idx[r] of the table; the index tensor and the output are
    # contiguous [R] and [R, D] (the host flattens the index's shape into R).
    r = tl.program_id(0).to(tl.int64) * BR + tl.arange(0, BR)
    d = tl.program_id(1).to(tl.int64) * BD + tl.arange(0, BD)
    rmask = r < R
    mask = rmask[:, None] & (d < D)[None, :]
    rows = tl.load(idx_ptr + r, mask=rmask, other=0).to(tl.int64)
    v = tl.load(w_ptr + rows[:, None] * ws0 + d[None, :] * ws1, mask=mask)
    tl.store(out_ptr + r[:, None] * D + d[None, :], v, mask=mask)
