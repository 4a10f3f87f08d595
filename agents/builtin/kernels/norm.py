"""Normalisations by group statistics, in two passes that split every group across programs.

The input is read as a 4-d view ``[P, Q, R, I]`` (strides from the host): a *group* is one
``(q, i)``, its elements are every ``(p, r)``. One view serves each op:

- batch norm: ``[N, C, S, 1]`` (a channel's group spans the batch and the spatial dims), or
  ``[N, 1, 1, C]`` for a 2-d input, where the channels are the columns ``i``;
- instance norm ``[1, N*C, S, 1]``; group norm ``[1, N*G, C/G*S, 1]``; when groups are small
  the host permutes these to ``[1, 1, S, N*C]`` (and alike), so that a program takes ``BI``
  groups at once instead of one short group;
- a vector norm over dims ``lo..hi-1``: ``[1, O, R, I]`` (``rowview``); a whole-tensor norm
  (Frobenius) is ``[1, 1, numel, 1]``, a single group.

The flattened ``(p, r)`` axis of a group is cut into ``SPLIT`` chunks of ``CHUNK`` elements:

1. ``norm_stats_kernel``, grid ``(groups, SPLIT)``: each program reduces its chunk for ``BI``
   groups side by side (``[BE, BI]`` tiles) and stores a partial: a mean and a centred sum of
   squares (``KIND`` 0, combined across tiles by Chan et al.'s formula, so a large mean does
   not cancel the variance), or a sum of squares / of ``|x|`` / a max of ``|x|`` (1 / 2 / 3).
2. ``norm_apply_kernel``, same grid: each program combines its groups' ``SPLIT`` partials (in a
   fixed order: results do not depend on scheduling, and no atomics) and normalises its chunk,
   or with ``STAT_ONLY`` writes the finished statistic (a ``linalg_vector_norm`` result).
   ``KIND`` 4 takes stored running statistics instead of a first pass.

A chunk's size is known from its index (``min(CHUNK, TOTAL - s * CHUNK)``), so partials carry
no counts. Affine parameters and running statistics are per channel; an element's channel is
``((q * I + i) % CQ) * CPG + r // RPC`` in every view above.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def norm_element(e, R, ONE_P: tl.constexpr, ONE_R: tl.constexpr):
    """Element ``e`` of a group as ``(p, r)``; a unit ``P`` or ``R`` needs no division, which
    also lets the compiler see that consecutive elements are contiguous."""
    if ONE_P:
        return tl.zeros_like(e), e
    elif ONE_R:
        return e, tl.zeros_like(e)
    else:
        return e // R, e % R


@triton.jit
def norm_stats_kernel(
    x_ptr, part_ptr, Q, R, I, xs0, xs1, xs2, xs3, TOTAL, CHUNK, SPLIT,
    KIND: tl.constexpr, ONE_P: tl.constexpr, ONE_R: tl.constexpr,
    BE: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    g = tl.program_id(0).to(tl.int64)
    s = tl.program_id(1).to(tl.int64)
    nib = tl.cdiv(I, BI)
    q = g // nib
    i = (g % nib) * BI + tl.arange(0, BI)
    imask = i < I
    base = x_ptr + q * xs1 + i * xs3
    start = s * CHUNK
    stop = tl.minimum(start + CHUNK, TOTAL)
    e0 = tl.arange(0, BE)
    n = 0.0
    mean = tl.zeros([BI], tl.float32)
    m2 = tl.zeros([BI], tl.float32)
    acc = tl.zeros([BE, BI], tl.float32)
    for off in range(start, stop, BE):
        e = off + e0
        mask = (e < stop)[:, None] & imask[None, :]
        p, r = norm_element(e, R, ONE_P, ONE_R)
        ptrs = base[None, :] + (p * xs0 + r * xs2)[:, None]
        x = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
        if KIND == 0:
            cn = tl.minimum(stop - off, BE).to(tl.float32)
            cmean = tl.sum(x, axis=0) / cn
            d = tl.where(mask, x - cmean[None, :], 0.0)
            total = n + cn
            delta = cmean - mean
            mean = mean + delta * (cn / total)
            m2 = m2 + tl.sum(d * d, axis=0) + delta * delta * (n * cn / total)
            n = total
        elif KIND == 1:
            acc += x * x
        elif KIND == 2:
            acc += tl.abs(x)
        else:
            acc = tl.maximum(acc, tl.abs(x))
    pofs = (q * SPLIT + s) * I + i
    if KIND == 0:
        tl.store(part_ptr + pofs, mean, mask=imask)
        tl.store(part_ptr + Q * SPLIT * I + pofs, m2, mask=imask)
    elif KIND == 3:
        tl.store(part_ptr + pofs, tl.max(acc, axis=0), mask=imask)
    else:
        tl.store(part_ptr + pofs, tl.sum(acc, axis=0), mask=imask)


@triton.jit
def norm_apply_kernel(
    x_ptr, part_ptr, w_ptr, b_ptr, rm_ptr, rv_ptr, out_ptr,
    Q, R, I, xs0, xs1, xs2, xs3, os0, os1, os2, os3, TOTAL, CHUNK, SPLIT,
    CQ, CPG, RPC, eps, eps_out, lo,
    KIND: tl.constexpr, ONE_P: tl.constexpr, ONE_R: tl.constexpr,
    MEAN: tl.constexpr, ROOT: tl.constexpr, CLAMP: tl.constexpr,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, STAT_ONLY: tl.constexpr,
    BE: tl.constexpr, BI: tl.constexpr, BS: tl.constexpr,
):  # fmt: skip
    g = tl.program_id(0).to(tl.int64)
    s = tl.program_id(1).to(tl.int64)
    nib = tl.cdiv(I, BI)
    q = g // nib
    i = (g % nib) * BI + tl.arange(0, BI)
    imask = i < I
    if KIND != 4:
        j = tl.arange(0, BS).to(tl.int64)
        jmask = j < SPLIT
        pmask = jmask[:, None] & imask[None, :]
        pofs = (q * SPLIT + j)[:, None] * I + i[None, :]
        a = tl.load(part_ptr + pofs, mask=pmask, other=0.0)
        if KIND == 0:
            nj = tl.where(jmask, tl.minimum(CHUNK, TOTAL - j * CHUNK), 0).to(tl.float32)
            mean = tl.sum(a * nj[:, None], axis=0) / TOTAL
            m2 = tl.load(part_ptr + Q * SPLIT * I + pofs, mask=pmask, other=0.0)
            d = tl.where(pmask, a - mean[None, :], 0.0)
            var = (tl.sum(m2, axis=0) + tl.sum(nj[:, None] * d * d, axis=0)) / TOTAL
            rstd = tl.rsqrt(var + eps)
        else:
            if KIND == 3:
                stat = tl.max(a, axis=0)
            else:
                stat = tl.sum(a, axis=0)
            if MEAN:
                stat = stat / TOTAL
            stat = stat + eps
            if ROOT:
                stat = tl.sqrt(stat)
            stat = stat + eps_out
            if CLAMP:
                stat = tl.maximum(stat, lo)
    if STAT_ONLY:
        tl.store(out_ptr + q * os1 + i * os3, stat.to(out_ptr.dtype.element_ty), mask=imask)
    else:
        start = s * CHUNK
        stop = tl.minimum(start + CHUNK, TOTAL)
        e0 = tl.arange(0, BE)
        for off in range(start, stop, BE):
            e = off + e0
            p, r = norm_element(e, R, ONE_P, ONE_R)
            mask = (e < stop)[:, None] & imask[None, :]
            xofs = (p * xs0 + q * xs1 + r * xs2)[:, None] + (i * xs3)[None, :]
            x = tl.load(x_ptr + xofs, mask=mask, other=0.0).to(tl.float32)
            c = (r // RPC)[:, None] + (((q * I + i) % CQ) * CPG)[None, :]
            if KIND == 4:
                mu = tl.load(rm_ptr + c, mask=mask, other=0.0).to(tl.float32)
                var = tl.load(rv_ptr + c, mask=mask, other=1.0).to(tl.float32)
                y = (x - mu) * tl.rsqrt(var + eps)
            elif KIND == 0:
                y = (x - mean[None, :]) * rstd[None, :]
            else:
                y = x / stat[None, :]
            if HAS_W:
                y = y * tl.load(w_ptr + c, mask=mask, other=0.0).to(tl.float32)
            if HAS_B:
                y = y + tl.load(b_ptr + c, mask=mask, other=0.0).to(tl.float32)
            oofs = (p * os0 + q * os1 + r * os2)[:, None] + (i * os3)[None, :]
            tl.store(out_ptr + oofs, y.to(out_ptr.dtype.element_ty), mask=mask)
