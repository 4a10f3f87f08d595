"""The ``[outer, R, inner]`` view shared by the templates that reduce along one span of dims.

A reduction (or a softmax) over dims ``lo..hi-1`` of a tensor reads it as ``[O, R, I]``: ``O``
the product of the dims before, ``R`` of the reduced dims, ``I`` of the dims after. The host
computes the three sizes from the run-time shape and the kernel indexes the view through its
strides, so the reduced dim need not be last. A program owns one ``outer`` index and ``BI``
consecutive ``inner`` columns (contiguous in memory when the input is) and walks ``R`` in
``BR``-row tiles; ``I == 1`` (the last-dim case) degenerates to ``BI == 1``.
"""

from __future__ import annotations

# Knob values shared by the reduction and softmax templates.
MAX_BLOCKS = (256, 1024, 4096, 16384)
INNER_BLOCKS = (16, 32, 64, 128)
WARPS = (1, 2, 4, 8, 16)
# The config space of every template on this view (reductions, softmax, cumulative sums).
KNOBS = {"MAX_BLOCK": MAX_BLOCKS, "BLOCK_I": INNER_BLOCKS, "num_warps": WARPS}


def span(dims: object, rank: int) -> tuple[int, int] | None:
    """``dims`` (an int, a list, or None/empty for all) as ``(lo, hi)`` when they are
    consecutive, else None."""
    if dims is None or dims == () or dims == []:
        return (0, rank) if rank else None
    if isinstance(dims, int):
        dims = (dims,)
    if not isinstance(dims, tuple | list) or not all(isinstance(d, int) for d in dims):
        return None
    if rank == 0:
        return None
    norm = sorted({d % rank for d in dims})
    if len(norm) != len(dims) or norm != list(range(norm[0], norm[-1] + 1)):
        return None
    return norm[0], norm[-1] + 1


def _product(x: str, dims: range) -> str:
    return " * ".join(f"{x}.shape[{d}]" for d in dims) or "1"


def host_view(p: str, x: str, rank: int, lo: int, hi: int) -> list[str]:
    """Forward lines defining ``{p}_O``, ``{p}_R``, ``{p}_I`` and the view ``{p}_x``."""
    return [
        f"{p}_O = {_product(x, range(lo))}",
        f"{p}_R = {_product(x, range(lo, hi))}",
        f"{p}_I = {_product(x, range(hi, rank))}",
        f"{p}_x = {x}.reshape({p}_O, {p}_R, {p}_I)",
    ]


def host_blocks(p: str, config: dict) -> list[str]:
    """Forward lines choosing the tile ``{p}_BR`` x ``{p}_BI`` (powers of two, at most
    ``MAX_BLOCK`` elements) and the launch grid ``{p}_grid``."""
    cap, inner = config["MAX_BLOCK"], config["BLOCK_I"]
    return [
        f"{p}_BI = 1 if {p}_I == 1 else min(triton.next_power_of_2({p}_I), {inner})",
        f"{p}_BR = min(triton.next_power_of_2({p}_R), {cap} // {p}_BI)",
        f"{p}_grid = ({p}_O * triton.cdiv({p}_I, {p}_BI),)",
    ]


def kernel_prelude() -> list[str]:
    """Kernel lines: the program's outer index ``o``, inner columns ``i`` (int64, masked by
    ``imask``), pointers ``base`` to each column's first reduced element, row offsets ``r0``."""
    return [
        "pid = tl.program_id(0).to(tl.int64)",
        "nib = tl.cdiv(I, BI)",
        "o = pid // nib",
        "i = (pid % nib) * BI + tl.arange(0, BI)",
        "imask = i < I",
        "base = x_ptr + o * xs0 + i * xs2",
        "r0 = tl.arange(0, BR)",
    ]


def tile(rows: str) -> list[str]:
    """Kernel lines: ``mask`` and pointers ``ptrs`` of the ``[BR, BI]`` tile at reduced rows
    ``rows``."""
    return [
        f"mask = ({rows} < R)[:, None] & imask[None, :]",
        f"ptrs = base[None, :] + {rows}.to(tl.int64)[:, None] * xs1",
    ]


def default_config(reduced: int) -> dict:
    """The default of every row-view template: correct at any size, a sensible GPU start."""
    return {"MAX_BLOCK": 4096, "BLOCK_I": 32, "num_warps": default_warps(reduced)}


def default_warps(reduced: int) -> int:
    return 8 if reduced >= 4096 else 4
