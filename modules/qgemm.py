"""Quantized GEMM: pack a weight to INT8/INT6/INT4, multiply by it with kernels from the library.

Story, top-down:

1. :func:`quantize_weight` turns a ``(out_features, in_features)`` weight into a
   :class:`QuantizedWeight`: unsigned codes packed into uint8 (layouts in
   ``kernels/qgemm_pack.py``), one scale per ``group_size`` consecutive input features of a row,
   and a zero point per group when asymmetric. The value of a code is ``(code - zero) * scale``;
   symmetric weights use the fixed zero ``2**(bits - 1)``.
2. :func:`qlinear` (``x @ W^T + bias``) is the torch custom op ``kernelloop::qlinear``; its
   implementation calls :func:`kernelloop.library.dispatch` on one of the ops registered below,
   so a tuned library entry runs where one is verified for this GPU/dtype/shape bucket, else the
   seed Triton kernel (``kernels/qgemm.py``), else the PyTorch reference.
3. :class:`QuantLinear` is the drop-in ``nn.Linear`` replacement (inference only).

Ops and their tensors (the positional convention a library entry's ``forward`` takes; config is
``group_size`` and ``symmetric``, the bundled problems' constructor arguments):

- ``qgemm.w8a16``, ``qgemm.w6a16``, ``qgemm.w4a16``: ``(x, packed, scales[, zeros][, bias])``,
  x (M, K) float16/bfloat16 (float32 accepted), weight-only dequantisation inside the kernel;
- ``qgemm.w8a8``: the same tensors with an INT8 weight; activations are quantised per row
  (token) at run time, ``s_x = max|x| / 127``, codes rounded half away from zero.

``zeros`` is present exactly when ``symmetric`` is False; ``bias`` is the optional last tensor.
Scales (and zeros, integer-valued) are stored in ``scale_dtype`` (float16 by default); kernels
read them in any float dtype and dequantise in fp32.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..kernels import qgemm_pack as packing
from ..library import dispatch, dispatcher, ops
from ._eager import all_plain, bypass_custom_op, cacheable, keep, plan_cache
from .quantize import (
    QuantizedWeight,
    _check_w8a8,
    dequantize,
    quantize_activations,
    quantize_weight,
    reference_qlinear,
    reference_qlinear_w8a8,
)

__all__ = [
    "QuantLinear",
    "QuantizedWeight",
    "dequantize",
    "qlinear",
    "quantize_activations",
    "quantize_weight",
    "reference_qlinear",
    "reference_qlinear_w8a8",
]

PROBLEMS = {
    "qgemm.w8a16": "modules/03_qgemm_w8a16",
    "qgemm.w4a16": "modules/05_qgemm_w4a16",
    "qgemm.w6a16": "modules/06_qgemm_w6a16",
    "qgemm.w8a8": "modules/07_qgemm_w8a8",
}


# --------------------------------------------------------------------------- library ops


def op_name(bits: int, act_bits: int = 16) -> str:
    if act_bits not in (8, 16):
        raise ValueError(f"act_bits must be 16 (weight-only) or 8 (W8A8), got {act_bits}")
    if act_bits == 8 and bits != 8:
        raise ValueError(f"act_bits=8 needs bits=8 (W8A8), got bits={bits}")
    packing.check_bits(bits)
    return f"qgemm.w{bits}a{act_bits}"


def op_tensors(x2d: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None) -> list:
    """The op's positional tensors: (x, packed, scales[, zeros][, bias])."""
    extra = [t for t in (qw.zeros, bias) if t is not None]
    return [x2d, qw.packed, qw.scales, *extra]


def _unbundle(tensors: Sequence[torch.Tensor], bits: int, group_size: int, symmetric: bool):
    """(x, QuantizedWeight, bias) from the op's positional tensors."""
    x, packed, scales, *rest = tensors
    expected = "(x, packed, scales" + ("" if symmetric else ", zeros") + "[, bias])"
    if len(rest) > (1 if symmetric else 2) or (not symmetric and not rest):
        raise ValueError(f"expected the tensors {expected}, got {len(tensors)} tensors")
    zeros = None if symmetric else rest.pop(0)
    bias = rest.pop(0) if rest else None
    shape = (packed.shape[0], packing.in_features_of(packed.shape[1], bits))
    qw = QuantizedWeight(packed, scales, zeros, bits, group_size, shape, symmetric)
    return x, qw, bias


def _reference_op(*tensors, bits: int, act_bits: int, group_size: int, symmetric: bool):
    x, qw, bias = _unbundle(tensors, bits, group_size, symmetric)
    if act_bits == 8:
        return reference_qlinear_w8a8(x, qw, bias)
    return reference_qlinear(x, qw, bias)


def _seed_op(*tensors, bits: int, act_bits: int, group_size: int, symmetric: bool):
    from ..kernels import qgemm as kernels  # imports triton: only when a kernel runs

    x, qw, bias = _unbundle(tensors, bits, group_size, symmetric)
    if act_bits == 8:
        _check_w8a8(qw)
        return kernels.w8a8_linear(x, qw.packed, qw.scales, qw.zeros, bias, group_size=group_size)
    return kernels.wxa16_linear(
        x, qw.packed, qw.scales, qw.zeros, bias, bits=bits, group_size=group_size
    )


def _bucket(tensors: Sequence[torch.Tensor], config: dict[str, Any], *, bits: int) -> str:
    # qlinear's plans key on what this reads: x's shape, packed's, config, the bias's presence.
    x, packed = tensors[0], tensors[1]
    m, k, n = x.shape[0], x.shape[-1], packed.shape[0]
    sym = config["symmetric"]
    has_bias = len(tensors) > (3 if sym else 4)
    return (
        f"m{ops.pow2_bucket(m, 1, 64)}-n{n}-k{k}-g{config['group_size']}"
        f"-{'sym' if sym else 'asym'}{'-bias' if has_bias else ''}"
    )


def _register(bits: int, act_bits: int) -> ops.OpSpec:
    name = op_name(bits, act_bits)
    return ops.register(
        ops.OpSpec(
            name=name,
            problems=(PROBLEMS[name],),
            reference=functools.partial(_reference_op, bits=bits, act_bits=act_bits),
            seed=functools.partial(_seed_op, bits=bits, act_bits=act_bits),
            init_args=lambda cfg: [int(cfg["group_size"]), bool(cfg["symmetric"])],
            config_from_init=lambda a: {"group_size": int(a[0]), "symmetric": bool(a[1])},
            bucket=functools.partial(_bucket, bits=bits),
        )
    )


for _bits, _act in ((8, 16), (6, 16), (4, 16), (8, 8)):
    _register(_bits, _act)


# --------------------------------------------------------------------------- public op


def _qlinear_impl(x, packed, scales, zeros, bias, bits, group_size, act_bits):
    k = x.shape[-1]
    x2d = x.reshape(-1, k)
    tensors = [x2d, packed, scales, *(t for t in (zeros, bias) if t is not None)]
    out = dispatch(
        op_name(bits, act_bits), *tensors, group_size=group_size, symmetric=zeros is None
    )
    return out.reshape(*x.shape[:-1], packed.shape[0])


_qlinear_op = torch.library.custom_op(
    "kernelloop::qlinear",
    mutates_args=(),
    schema="(Tensor x, Tensor packed, Tensor scales, Tensor? zeros, Tensor? bias, int bits, "
    "int group_size, int act_bits) -> Tensor",
)(_qlinear_impl)


@_qlinear_op.register_fake
def _qlinear_fake(x, packed, scales, zeros, bias, bits, group_size, act_bits):
    return x.new_empty((*x.shape[:-1], packed.shape[0]))


def qlinear(
    x: torch.Tensor, qw: QuantizedWeight, bias: torch.Tensor | None = None, act_bits: int = 16
) -> torch.Tensor:
    """``x @ W^T + bias`` for a quantized W; x is (..., in_features), out (..., out_features).

    ``act_bits=16`` is weight-only (W8A16/W6A16/W4A16 by ``qw.bits``); ``act_bits=8`` is W8A8.
    """
    return _qlinear(
        x, qw.packed, qw.scales, qw.zeros, bias, qw.bits, qw.group_size, act_bits, qw.in_features
    )


# Plans by what they and the dispatch decision read (x's shape, dtype, device and type, packed's
# shape, which of zeros and bias are there, the bias's type, the integers with theirs; not the
# weight's strides, which only the kernels read, per call): (op name, config, dispatcher slot,
# all tensor types plain, x's and out's shapes for the 2-D op or None where x is 2-D).
_plans: dict = plan_cache()


def _qlinear(x, packed, scales, zeros, bias, bits, group_size, act_bits, in_features):
    key = plan = None
    if not torch.compiler.is_compiling():  # dynamo traces the plain path below, not the cache
        try:
            # fmt: off
            key = (
                x.shape, x.dtype, x.device, type(x), packed.shape, zeros is None,
                None if bias is None else type(bias),
                bits, type(bits), group_size, type(group_size), act_bits, type(act_bits),
                in_features,  # only compared with x.shape[-1]: its type changes nothing
            )
            # fmt: on
            plan = _plans.get(key)
        except (AttributeError, TypeError):  # symbolic sizes, not tensors
            key = None
    if plan is None:
        name = op_name(bits, act_bits)  # validates the combination
        if x.shape[-1] != in_features:
            raise ValueError(f"x has {x.shape[-1]} features, the weight expects {in_features}")
        if key is None or not cacheable(bits, group_size, act_bits, in_features):
            op = _qlinear_impl if bypass_custom_op(x, bias) else torch.ops.kernelloop.qlinear
            return op(x, packed, scales, zeros, bias, bits, group_size, act_bits)
        config = {"group_size": group_size, "symmetric": zeros is None}
        shapes = (-1, x.shape[-1]), (*x.shape[:-1], packed.shape[0])
        if x.dim() == 2 and x.shape[1]:  # reshape(-1, 0) raises; otherwise a 2-D x stays as is
            shapes = None
        plan = keep(_plans, key, (name, config, [], all_plain(x, bias), shapes))
    name, config, slot, plain, shapes = plan
    if plain and not (
        torch.is_grad_enabled() and (x.requires_grad or (bias is not None and bias.requires_grad))
    ):
        # _qlinear_impl's work, with the shapes and the decision from this signature's plan
        # (torch.reshape: the method parses a tuple of sizes slower here)
        x2d = x if shapes is None else torch.reshape(x, shapes[0])
        tensors = (x2d, packed, scales) if zeros is None else (x2d, packed, scales, zeros)
        if bias is not None:
            tensors = (*tensors, bias)
        out = dispatcher.dispatch_in(slot, name, tensors, config)
        return out if shapes is None else torch.reshape(out, shapes[1])
    return torch.ops.kernelloop.qlinear(x, packed, scales, zeros, bias, bits, group_size, act_bits)


class QuantLinear(nn.Module):
    """Inference-only ``nn.Linear`` with a quantized weight; build it with :meth:`from_linear`."""

    def __init__(self, qweight: QuantizedWeight, bias: torch.Tensor | None, act_bits: int = 16):
        super().__init__()
        op_name(qweight.bits, act_bits)
        self.out_features, self.in_features = qweight.shape
        self.bits, self.group_size, self.act_bits = qweight.bits, qweight.group_size, act_bits
        self.register_buffer("packed", qweight.packed)
        self.register_buffer("scales", qweight.scales)
        self.register_buffer("zeros", qweight.zeros)
        self.register_buffer("bias", bias)

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        bits: int = 4,
        group_size: int = 128,
        symmetric: bool = True,
        act_bits: int = 16,
        scale_dtype: torch.dtype = torch.float16,
    ) -> QuantLinear:
        op_name(bits, act_bits)
        qw = quantize_weight(linear.weight, bits, group_size, symmetric, scale_dtype)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        return cls(qw, bias, act_bits)

    @property
    def qweight(self) -> QuantizedWeight:
        return QuantizedWeight(
            self.packed,
            self.scales,
            self.zeros,
            self.bits,
            self.group_size,
            (self.out_features, self.in_features),
            self.zeros is None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # qlinear(x, self.qweight, self.bias, self.act_bits) without building the QuantizedWeight
        # (a frozen dataclass: 2 us here) or nn.Module.__getattr__ (0.4 us a buffer). For this
        # class exactly, a name in _buffers is what attribute access returns (a subclass or a
        # parametrization may put a property in front of it; a Parameter moves it out).
        b = self._buffers
        try:
            if type(self) is not QuantLinear:
                raise KeyError
            tensors = b["packed"], b["scales"], b["zeros"], b["bias"]
        except KeyError:
            tensors = self.packed, self.scales, self.zeros, self.bias
        return _qlinear(x, *tensors, self.bits, self.group_size, self.act_bits, self.in_features)

    def extra_repr(self) -> str:
        kind = "W8A8" if self.act_bits == 8 else f"W{self.bits}A16"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, {kind}, "
            f"group_size={self.group_size}, symmetric={self.zeros is None}, "
            f"bias={self.bias is not None}"
        )
