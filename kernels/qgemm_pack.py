"""Bit layouts of packed quantized weights (uint8 storage), in PyTorch.

A weight of shape ``(out_features, in_features)`` is stored as unsigned *codes*, one row per
output feature, packed along ``in_features`` so that a kernel reading one row reads contiguous
bytes. Every bit width stores codes in ``[0, 2**bits - 1]``; the value is
``(code - zero) * scale`` (symmetric quantisation uses the fixed zero ``2**(bits - 1)``).

Layouts, per row (``c[k]`` is the code of input feature ``k``, bit 0 is the least significant):

- **INT8**: one code per byte, ``byte[k] = c[k]``.
- **INT4**: two codes per byte, ``byte[j] = c[2j] | c[2j + 1] << 4`` (even ``k`` in the low
  nibble). ``in_features`` must be even.
- **INT6**: four codes in three bytes. Bytes ``3j, 3j + 1, 3j + 2`` are the little-endian 24-bit
  word ``c[4j] | c[4j + 1] << 6 | c[4j + 2] << 12 | c[4j + 3] << 18``. Code ``k`` starts at bit
  ``6 * (k % 4)`` of its word, so it lies in byte ``3 * (k // 4) + (6 * (k % 4)) // 8`` at shift
  ``(6 * (k % 4)) % 8`` and spills into the next byte when that shift exceeds 2 (``k % 4`` of 1
  or 2). ``in_features`` must be a multiple of 4.

The Triton kernels in ``qgemm.py`` unpack exactly these layouts.

W8A8 activations are int8 codes made per row at run time: ``s_x = max(max|x|, ACT_EPS) / 127``
in fp32 and ``round_half_away_from_zero(x / s_x)`` clamped to ``[-127, 127]``.
"""

from __future__ import annotations

import torch

BITS = (8, 6, 4)
ACT_EPS = 1e-10  # floor of a row's max |x| before dividing by it: an all-zero row gets codes 0
# bits -> (codes, bytes) of the smallest whole unit of a packed row
_UNIT = {8: (1, 1), 6: (4, 3), 4: (2, 1)}


def check_bits(bits: int) -> None:
    if bits not in _UNIT:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")


def codes_per_unit(bits: int) -> int:
    """How many input features ``in_features`` must be a multiple of for this bit width."""
    check_bits(bits)
    return _UNIT[bits][0]


def packed_cols(in_features: int, bits: int) -> int:
    """Bytes per packed row."""
    codes, nbytes = _UNIT[bits]
    if in_features % codes:
        raise ValueError(
            f"INT{bits} packs {codes} values per {nbytes} byte(s): in_features ({in_features}) "
            f"must be a multiple of {codes}"
        )
    return in_features // codes * nbytes


def in_features_of(cols: int, bits: int) -> int:
    """Inverse of :func:`packed_cols`."""
    codes, nbytes = _UNIT[bits]
    if cols % nbytes:
        raise ValueError(f"an INT{bits} packed row has a multiple of {nbytes} bytes, got {cols}")
    return cols // nbytes * codes


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes ``(rows, in_features)`` in ``[0, 2**bits)`` -> uint8 ``(rows, bytes)``."""
    check_bits(bits)
    rows, cols = codes.shape
    packed_cols(cols, bits)  # validates the width
    c = codes.to(torch.int32)
    if bits == 8:
        out = c
    elif bits == 4:
        c = c.view(rows, cols // 2, 2)
        out = c[..., 0] | (c[..., 1] << 4)
    else:
        c = c.view(rows, cols // 4, 4)
        word = c[..., 0] | (c[..., 1] << 6) | (c[..., 2] << 12) | (c[..., 3] << 18)
        out = torch.stack([word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFF], dim=-1)
    return out.reshape(rows, -1).to(torch.uint8).contiguous()


def unpack(packed: torch.Tensor, bits: int, in_features: int | None = None) -> torch.Tensor:
    """uint8 ``(rows, bytes)`` -> uint8 codes ``(rows, in_features)``."""
    check_bits(bits)
    rows, cols = packed.shape
    k = in_features_of(cols, bits)
    if in_features is not None and in_features != k:
        raise ValueError(
            f"packed rows of {cols} bytes hold {k} INT{bits} values, not {in_features}"
        )
    p = packed.to(torch.int32)
    if bits == 8:
        out = p
    elif bits == 4:
        out = torch.stack([p & 0xF, p >> 4], dim=-1)
    else:
        b = p.view(rows, cols // 3, 3)
        word = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        out = torch.stack([(word >> s) & 0x3F for s in (0, 6, 12, 18)], dim=-1)
    return out.reshape(rows, k).to(torch.uint8)
