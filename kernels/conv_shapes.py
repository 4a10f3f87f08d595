"""Shape facts the conv module and its seed kernel share: the output size of a window, whether
a tensor is laid out channels-last, and the fused activations by name. Kept apart from
``conv.py`` so that ``modules/conv.py`` reads them at import without importing Triton."""

from __future__ import annotations

import torch

ACTIVATIONS = (None, "relu", "gelu", "silu")  # the kernel's ACTIVATION constexpr is the index


def output_size(size: int, k: int, stride: int, pad: int, dil: int) -> int:
    return (size + 2 * pad - dil * (k - 1) - 1) // stride + 1


def channels_last(x: torch.Tensor) -> bool:
    """True when x is laid out NHWC (and not trivially also NCHW, e.g. one channel)."""
    return (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
