"""Losses: per-row distances and similarities, and the two-stage sum that ends every loss.

A loss reduced to one number runs as many programs as the tensor needs, each writing one float32
partial sum (``_sum_partials``, or a template's own elementwise kernel), and then ``_finish``: a
single program that adds the partials in a fixed order and scales the total (``1 / n`` for a
mean). The result does not depend on scheduling, and no value ever goes through the host.

``_row_loss`` gives one value per row of ``[M, D]`` operands, one program a row, streaming
``D`` in ``BLOCK``-wide tiles; ``KIND`` picks the formula (constexpr: each kind compiles alone):

- ``TRIPLET``: ``max(margin + ||a - p + eps||_P - ||a - n + eps||_P, 0)`` (``P`` 1 or 2);
- ``COSINE``: ``a . b / (max(||a||, eps) * max(||b||, eps))``;
- ``COSINE_EMBEDDING``: with ``cos = a . b / sqrt((|a|^2 + 1e-12) (|b|^2 + 1e-12))``, ``1 - cos``
  where the label ``y`` is 1 and ``max(cos - margin, 0)`` where it is -1, as in ATen.
"""

from __future__ import annotations

import triton
import triton.language as tl

TRIPLET = 0
COSINE = 1
COSINE_EMBEDDING = 2


@triton.jit
def _row_loss(a_ptr, b_ptr, c_ptr, out_ptr, D, as0, as1, bs0, bs1, cs0, cs1, margin, eps,
              KIND: tl.constexpr, P: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    s1 = tl.zeros([BLOCK], tl.float32)
    s2 = tl.zeros([BLOCK], tl.float32)
    s3 = tl.zeros([BLOCK], tl.float32)
    for start in range(0, D, BLOCK):
        k = start + tl.arange(0, BLOCK)
        ok = k < D
        a = tl.load(a_ptr + row * as0 + k * as1, mask=ok, other=0.0).to(tl.float32)
        b = tl.load(b_ptr + row * bs0 + k * bs1, mask=ok, other=0.0).to(tl.float32)
        if KIND == 0:
            n = tl.load(c_ptr + row * cs0 + k * cs1, mask=ok, other=0.0).to(tl.float32)
            dp = tl.where(ok, a - b + eps, 0.0)
            dn = tl.where(ok, a - n + eps, 0.0)
            if P == 1:
                s1 += tl.abs(dp)
                s2 += tl.abs(dn)
            else:
                s1 += dp * dp
                s2 += dn * dn
        else:
            s1 += a * b
            s2 += a * a
            s3 += b * b
    t1 = tl.sum(s1, axis=0)
    t2 = tl.sum(s2, axis=0)
    if KIND == 0:
        if P == 1:
            loss = tl.maximum(margin + t1 - t2, 0.0)
        else:
            loss = tl.maximum(margin + tl.sqrt(t1) - tl.sqrt(t2), 0.0)
    elif KIND == 1:
        t3 = tl.sum(s3, axis=0)
        loss = t1 / (tl.maximum(tl.sqrt(t2), eps) * tl.maximum(tl.sqrt(t3), eps))
    else:
        t3 = tl.sum(s3, axis=0)
        cos = t1 / tl.sqrt((t2 + 1e-12) * (t3 + 1e-12))
        y = tl.load(c_ptr + row * cs0).to(tl.float32)
        loss = tl.where(y == 1.0, 1.0 - cos, 0.0) + tl.where(
            y == -1.0, tl.maximum(cos - margin, 0.0), 0.0
        )
    tl.store(out_ptr + row, loss.to(out_ptr.dtype.element_ty))


@triton.jit
def _sum_partials(x_ptr, part_ptr, n, BLOCK: tl.constexpr):
    """Program ``pid`` of ``P`` adds elements ``pid * BLOCK + j * P * BLOCK + [0, BLOCK)`` of a
    contiguous float tensor into ``part_ptr[pid]``."""
    pid = tl.program_id(0)
    step = tl.num_programs(0) * BLOCK
    acc = tl.zeros([BLOCK], tl.float32)
    for start in range(pid * BLOCK, n, step):
        offs = start + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + offs, mask=offs < n, other=0.0).to(tl.float32)
    tl.store(part_ptr + pid, tl.sum(acc, axis=0))


@triton.jit
def _finish(part_ptr, out_ptr, parts, scale, BLOCK: tl.constexpr):
    """``out = scale * sum(part_ptr[:parts])``, in one program (``parts <= BLOCK``)."""
    offs = tl.arange(0, BLOCK)
    total = tl.sum(tl.load(part_ptr + offs, mask=offs < parts, other=0.0), axis=0)
    tl.store(out_ptr, (total * scale).to(out_ptr.dtype.element_ty))
