"""Group-wise weight quantisation and the PyTorch references of quantized linear layers.

The numbers every quantized-GEMM kernel must reproduce: how a weight becomes codes, scales and
zero points (packed by ``kernels/qgemm_pack.py``), what the codes stand for, and the weight-only
and W8A8 products computed from them. ``modules/qgemm.py`` dispatches the products to kernels.
"""

from __future__ import annotations

import dataclasses

import torch

from ..kernels import qgemm_pack as packing


@dataclasses.dataclass(frozen=True)
class QuantizedWeight:
    packed: torch.Tensor  # (out_features, packed_cols(in_features, bits)) uint8
    scales: torch.Tensor  # (out_features, in_features // group_size), scale_dtype
    zeros: torch.Tensor | None  # like scales (integer values in [0, 2**bits)); None: symmetric
    bits: int
    group_size: int
    shape: tuple[int, int]  # (out_features, in_features) of the original weight
    symmetric: bool = True

    @property
    def out_features(self) -> int:
        return self.shape[0]

    @property
    def in_features(self) -> int:
        return self.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes a kernel reads for the weight: packed codes, scales and zeros."""
        parts = [self.packed, self.scales] + ([self.zeros] if self.zeros is not None else [])
        return sum(t.numel() * t.element_size() for t in parts)

    def to(self, device: torch.device | str) -> QuantizedWeight:
        zeros = self.zeros.to(device) if self.zeros is not None else None
        return dataclasses.replace(
            self, packed=self.packed.to(device), scales=self.scales.to(device), zeros=zeros
        )

    def codes(self) -> torch.Tensor:
        """Unpacked uint8 codes, (out_features, in_features)."""
        return packing.unpack(self.packed, self.bits, self.in_features)


def quantize_weight(
    w: torch.Tensor,
    bits: int,
    group_size: int,
    symmetric: bool = True,
    scale_dtype: torch.dtype = torch.float16,
) -> QuantizedWeight:
    """Round-to-nearest group-wise quantisation of ``w`` (out_features, in_features).

    Symmetric: ``scale = max|w| / (2**(bits-1) - 1)`` per group, codes ``round(w / scale) +
    2**(bits-1)``. Asymmetric: the group's range ``[min(w, 0), max(w, 0)]`` maps onto
    ``[0, 2**bits - 1]`` with an integer zero point. Scales are rounded *up* to ``scale_dtype``
    before the codes are computed, so no code clips and every dequantised value is within
    ``scale / 2`` of ``w`` (round-off of the division aside).
    """
    packing.check_bits(bits)
    if w.dim() != 2:
        raise ValueError(f"w must be 2-D (out_features, in_features), got shape {tuple(w.shape)}")
    n, k = w.shape
    if group_size <= 0 or k % group_size:
        raise ValueError(
            f"group_size ({group_size}) must be a positive divisor of in_features ({k}); "
            f"use group_size={k} for one scale per output channel"
        )
    packing.packed_cols(k, bits)  # in_features must fill whole packing units
    wg = w.detach().float().reshape(n, k // group_size, group_size)
    tiny = torch.finfo(scale_dtype).tiny  # keeps all-zero (or subnormal) groups finite
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = _round_up(wg.abs().amax(-1) / qmax, scale_dtype, tiny)
        q = torch.round(wg / scale.float().unsqueeze(-1)).clamp(-qmax, qmax) + 2 ** (bits - 1)
        zeros = None
    else:
        qmax = 2**bits - 1
        lo = wg.amin(-1).clamp(max=0.0)
        hi = wg.amax(-1).clamp(min=0.0)
        scale = _round_up((hi - lo) / qmax, scale_dtype, tiny)
        zero = torch.round(-lo / scale.float()).clamp(0, qmax)
        q = (torch.round(wg / scale.float().unsqueeze(-1)) + zero.unsqueeze(-1)).clamp(0, qmax)
        zeros = zero.to(scale_dtype)
    codes = q.reshape(n, k).to(torch.uint8)
    return QuantizedWeight(
        packed=packing.pack(codes, bits),
        scales=scale,
        zeros=zeros,
        bits=bits,
        group_size=group_size,
        shape=(n, k),
        symmetric=symmetric,
    )


def _round_up(scale: torch.Tensor, dtype: torch.dtype, tiny: float) -> torch.Tensor:
    scale = scale.clamp(min=tiny)
    rounded = scale.to(dtype)
    low = rounded.float() < scale
    return torch.where(low, torch.nextafter(rounded, torch.full_like(rounded, torch.inf)), rounded)


def dequantize(qw: QuantizedWeight, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The weight the codes stand for, ``(code - zero) * scale`` computed in fp32, in ``dtype``."""
    n, k = qw.shape
    codes = qw.codes().float().view(n, k // qw.group_size, qw.group_size)
    zero = qw.zeros.float().unsqueeze(-1) if qw.zeros is not None else 2.0 ** (qw.bits - 1)
    w = (codes - zero) * qw.scales.float().unsqueeze(-1)
    return w.view(n, k).to(dtype)


def reference_qlinear(
    x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``x @ dequantize(qw, x.dtype).T + bias`` in x's dtype (the weight-only reference).

    The matmul is PyTorch's for ``x.dtype``: float16/bfloat16 accumulate in fp32 on CPU; on CUDA
    cuBLAS also accumulates in fp32 but may reduce split-K partials in half precision (see
    ``torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction``). The seed kernel
    accumulates in fp32 and, where a K step lies in one group, applies scale and zero to the
    partial sum instead of rounding each dequantised weight to x's dtype: it agrees with this
    reference to about one unit in the last place of x's dtype.
    """
    out = torch.matmul(x, dequantize(qw, x.dtype).t())
    return out + bias.to(out.dtype) if bias is not None else out


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row dynamic int8: (codes int8, scales fp32 with a trailing dim of 1), as the kernel."""
    xf = x.float()
    scale = xf.abs().amax(-1, keepdim=True).clamp(min=packing.ACT_EPS) / 127.0
    v = xf / scale
    q = torch.trunc(v + torch.where(v >= 0, 0.5, -0.5)).clamp(-127, 127)
    return q.to(torch.int8), scale


def reference_qlinear_w8a8(
    x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """W8A8 reference: quantise x per row, multiply in fp32 (exact for the integer products up to
    fp32 summation round-off), add the bias, return x's dtype."""
    _check_w8a8(qw)
    xq, sx = quantize_activations(x)
    out = torch.matmul(xq.float(), dequantize(qw, torch.float32).t()) * sx
    if bias is not None:
        out = out + bias.float()
    return out.to(x.dtype)


def _check_w8a8(qw: QuantizedWeight) -> None:
    if qw.bits != 8:
        raise ValueError(f"W8A8 needs an INT8 weight, got bits={qw.bits}; use act_bits=16")
