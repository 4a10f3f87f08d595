"""Convolution: ``conv2d`` with a fused bias + activation epilogue, and the ``Conv2d`` module.

``conv2d(x, w, bias, stride, padding, dilation, activation)`` runs the best kernel this machine
has for the call through ``kernelloop.library.dispatch("conv2d", x, w, bias, **config)``: a
verified library entry tuned on ``modules/04_conv2d_bias_relu_nhwc``, else the seed kernel (a
Triton implicit GEMM, ``kernels/conv.py``), else PyTorch. It is the custom op
``torch.ops.kernelloop.conv2d``, so ``torch.compile`` keeps it whole instead of tracing into
Triton; it has an autograd formula (PyTorch's convolution backward), so ``Conv2d`` trains too.

The op's convention, shared by the reference, the seed and every library entry:
tensors ``(x, w, bias)`` with x (N, C_in, H, W) in NCHW or channels-last memory, w
(C_out, C_in, KH, KW), bias (C_out,); config ``stride``, ``padding``, ``dilation`` (tuples of two
ints) and ``activation`` (None, "relu", "gelu", "silu"). The output has x's memory format.

What the kernels do not cover runs in PyTorch, saying why under ``KERNELLOOP_DISPATCH_LOG=1``:
groups > 1, padding modes other than zeros, asymmetric "same" padding, unbatched or non-float
inputs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..kernels.conv_shapes import ACTIVATIONS, channels_last, output_size
from ..library import dispatch, dispatcher
from ..library.ops import OpSpec, pow2_bucket, register
from ._eager import all_plain, bypass_custom_op, cacheable, keep, plan_cache

_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if channels_last(x) else torch.contiguous_format


def _activate(y: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation is None:
        return y
    if activation == "relu":
        return F.relu(y)
    if activation == "gelu":
        return F.gelu(y)
    if activation == "silu":
        return F.silu(y)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def reference_conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    activation: str | None = None,
    groups: int = 1,
) -> torch.Tensor:
    """The PyTorch definition: act(F.conv2d(...)), in x's memory format.

    (F.conv2d alone returns channels-last when only the *filter* is channels-last.)
    """
    y = _activate(F.conv2d(x, w, bias, stride, padding, dilation, groups), activation)
    return y.contiguous(memory_format=_memory_format(x)) if y.dim() == 4 else y


def _seed(x, w, bias, stride, padding, dilation, activation):
    from ..kernels import conv as seed_kernel  # imports triton: only when a kernel runs

    return seed_kernel.conv2d(x, w, bias, stride, padding, dilation, activation)


def _bucket(tensors: Sequence[torch.Tensor], cfg: dict[str, Any]) -> str:
    # Stride, padding, dilation and activation are part of the bucket: an entry verified and
    # timed for one of them never serves another. conv2d's plans key on what this reads.
    x, w = tensors[0], tensors[1]
    (kh, kw), (c_out, c_in) = w.shape[2:], w.shape[:2]
    sh, sw = cfg["stride"]
    ph, pw = cfg["padding"]
    dh, dw = cfg["dilation"]
    layout = "nhwc" if channels_last(x) else "nchw"
    return (
        f"k{kh}x{kw}-s{sh}x{sw}-p{ph}x{pw}-d{dh}x{dw}-c{c_in}-o{c_out}"
        f"-hw{pow2_bucket(x.shape[2] * x.shape[3])}-{layout}-{cfg['activation'] or 'none'}"
    )


SPEC = register(
    OpSpec(
        name="conv2d",
        problems=("modules/04_conv2d_bias_relu_nhwc",),
        reference=reference_conv2d,
        seed=_seed,
        init_args=lambda cfg: [cfg["stride"], cfg["padding"], cfg["dilation"], cfg["activation"]],
        config_from_init=lambda args: {
            "stride": _pair(args[0]),
            "padding": _pair(args[1]),
            "dilation": _pair(args[2]),
            "activation": args[3],
        },
        bucket=_bucket,
    )
)


# --- the custom op -------------------------------------------------------------------------

_SCHEMA = (
    "(Tensor x, Tensor w, Tensor? bias, int[] stride, int[] padding, int[] dilation, "
    "str? activation) -> Tensor"
)


def _conv2d_impl(x, w, bias, stride, padding, dilation, activation, plan=None):
    # ``plan``: an eager call's cached _Plan, so that the dispatch decision is not keyed a second
    # time; the custom op (which passes none) and uncached calls key it in dispatch().
    if bias is None:  # the op convention always passes three tensors, so entries need no None
        bias = x.new_zeros(w.shape[0])
    if plan is not None:
        out = dispatcher.dispatch_in(plan.slot, "conv2d", (x, w, bias), plan.config)
        return out.contiguous(memory_format=plan.fmt)
    out = dispatch(
        "conv2d",
        x,
        w,
        bias,
        stride=tuple(stride),
        padding=tuple(padding),
        dilation=tuple(dilation),
        activation=activation,
    )
    # A library entry may return NCHW for channels-last x; the fake kernel promised x's format.
    return out.contiguous(memory_format=_memory_format(x))


_conv2d_op = torch.library.custom_op("kernelloop::conv2d", mutates_args=(), schema=_SCHEMA)(
    _conv2d_impl
)


@_conv2d_op.register_fake
def _(x, w, bias, stride, padding, dilation, activation):
    oh = output_size(x.shape[2], w.shape[2], stride[0], padding[0], dilation[0])
    ow = output_size(x.shape[3], w.shape[3], stride[1], padding[1], dilation[1])
    return torch.empty(
        (x.shape[0], w.shape[0], oh, ow),
        dtype=x.dtype,
        device=x.device,
        memory_format=_memory_format(x),
    )


def _setup_context(ctx, inputs, output):
    x, w, bias, stride, padding, dilation, activation = inputs
    ctx.save_for_backward(x, w, bias)
    ctx.config = (stride, padding, dilation, activation)


def _backward(ctx, grad):
    # The forward kept no pre-activation tensor (it never exists outside the kernel), so the
    # backward recomputes it once in PyTorch and uses PyTorch's convolution backward.
    x, w, bias = ctx.saved_tensors
    stride, padding, dilation, activation = ctx.config
    z = F.conv2d(x, w, bias, stride, padding, dilation)
    dz = grad * _activation_grad(z, activation) if activation else grad
    gx, gw, gb = torch.ops.aten.convolution_backward(
        dz,
        x,
        w,
        None if bias is None else list(bias.shape),
        stride,
        padding,
        dilation,
        False,
        [0, 0],
        1,
        [ctx.needs_input_grad[0], ctx.needs_input_grad[1], bias is not None],
    )
    return gx, gw, gb, None, None, None, None


def _activation_grad(z: torch.Tensor, activation: str) -> torch.Tensor:
    z32 = z.float()
    if activation == "relu":
        d = (z32 > 0).float()
    elif activation == "gelu":
        cdf = 0.5 * (1.0 + torch.erf(z32 * 0.7071067811865476))
        d = cdf + z32 * torch.exp(-0.5 * z32 * z32) * 0.3989422804014327
    else:  # silu
        s = torch.sigmoid(z32)
        d = s * (1.0 + z32 * (1.0 - s))
    return d.to(z.dtype)


_conv2d_op.register_autograd(_backward, setup_context=_setup_context)


# --- the public function and module -------------------------------------------------------

_said: set[str] = set()


def _say(reason: str) -> None:
    from .. import settings

    if settings.get().dispatch_log and reason not in _said:
        _said.add(reason)
        print(f"[kernelloop dispatch] conv2d: PyTorch ({reason})", file=sys.stderr)


def _padding(
    padding: int | Sequence[int] | str, kernel: Sequence[int], dilation: tuple[int, int]
) -> tuple[int, int] | None:
    """Symmetric per-side padding, or None where only PyTorch can pad (odd "same" totals)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return None if any(t % 2 for t in totals) else (totals[0] // 2, totals[1] // 2)
    return _pair(padding)


def _unsupported(x, w, bias, padding, groups) -> str | None:
    if groups != 1:
        return f"groups={groups}: the conv2d kernels handle groups=1 only"
    if padding is None:
        return "asymmetric 'same' padding (even kernel extent)"
    if x.dim() != 4:
        return f"{x.dim()}-D input: the kernels take batched (N, C, H, W) input"
    if x.dtype not in _KERNEL_DTYPES:
        return f"dtype {x.dtype}: the kernels take float16, bfloat16 or float32"
    if w.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        return "x, w and bias differ in dtype"
    return None


def _normalise(x, w, bias, stride, padding, dilation, activation, groups):
    """(stride, pads, dilation, why PyTorch must run it or None); raises on invalid arguments."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    stride, dilation = _pair(stride), _pair(dilation)
    pads = _padding(padding, w.shape[2:], dilation)
    return stride, pads, dilation, _unsupported(x, w, bias, pads, groups)


class _Plan:
    """What a call's signature alone decides, worked out once per signature: the normalised
    arguments, the output's memory format, the dispatch config and the dispatcher's slot."""

    __slots__ = ("norm", "stride", "pads", "dilation", "reason", "plain", "fmt", "config", "slot")

    def __init__(self, x, w, bias, stride, padding, dilation, activation, groups):
        self.norm = _normalise(x, w, bias, stride, padding, dilation, activation, groups)
        self.stride, self.pads, self.dilation, self.reason = self.norm
        self.plain = all_plain(x, w, bias)
        self.fmt = _memory_format(x)
        self.config = {
            "stride": self.stride,
            "padding": self.pads,
            "dilation": self.dilation,
            "activation": activation,
        }
        self.slot: list = []


# Keyed by what a plan and the dispatch decision read: x's shape, strides (its layout), dtype,
# device; w's shape; every tensor's dtype and type; the arguments with their types (_bucket reads
# no more; the kernels read w's and bias's strides per call).
_plans: dict = plan_cache()


def conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    activation: str | None = None,
    groups: int = 1,
) -> torch.Tensor:
    """act(F.conv2d(x, w, bias, stride, padding, dilation, groups)), activation fused.

    x is (N, C_in, H, W) in NCHW or channels-last memory; the result has the same memory
    format. ``activation``: None, "relu", "gelu" (exact, erf) or "silu".
    """
    plan = None
    if not torch.compiler.is_compiling():  # dynamo traces the plain path below, not the cache
        try:
            # fmt: off
            key = (
                x.shape, x.stride(), x.dtype, x.device, type(x), w.shape, w.dtype, type(w),
                None if bias is None else (bias.dtype, type(bias)),
                stride, type(stride), padding, type(padding), dilation, type(dilation),
                activation, groups, type(groups),
            )
            # fmt: on
            plan = _plans.get(key)
        except (AttributeError, TypeError):  # lists, symbolic sizes, not tensors
            key = None
        if (
            plan is None
            and key is not None
            and cacheable(stride, padding, dilation, activation, groups)
        ):
            plan = keep(
                _plans, key, _Plan(x, w, bias, stride, padding, dilation, activation, groups)
            )
    if plan is None:
        norm = _normalise(x, w, bias, stride, padding, dilation, activation, groups)
        return _run(norm, x, w, bias, padding, activation, groups)
    if plan.reason is None and plan.plain:
        if not torch.is_grad_enabled() or not (
            x.requires_grad or w.requires_grad or (bias is not None and bias.requires_grad)
        ):
            return _conv2d_impl(x, w, bias, plan.stride, plan.pads, plan.dilation, activation, plan)
    return _run(plan.norm, x, w, bias, padding, activation, groups)


def _run(norm, x, w, bias, padding, activation, groups) -> torch.Tensor:
    """A call off the eager fast path: PyTorch, or the custom op (autograd, subclasses, tracing)."""
    stride, pads, dilation, reason = norm
    if reason is not None:
        _say(reason)
        return reference_conv2d(x, w, bias, stride, padding, dilation, activation, groups)
    op = _conv2d_impl if bypass_custom_op(x, w, bias) else _conv2d_op
    return op(x, w, bias, list(stride), list(pads), list(dilation), activation)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` whose forward is :func:`conv2d`, with an optional fused activation.

    Same constructor, parameters and state dict as ``nn.Conv2d`` (it is one), so it drops in
    anywhere; ``Conv2d.from_conv(conv)`` wraps an existing layer, sharing its parameters.
    """

    def __init__(self, *args: Any, activation: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, activation: str | None = None) -> Conv2d:
        """A Conv2d computing act(conv(x)) with ``conv``'s own Parameter objects (shared, not
        copied: training either one trains both)."""
        new = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device="meta",  # placeholders only: replaced by conv's parameters below
            activation=activation,
        )
        new.weight = conv.weight
        new.bias = conv.bias
        return new.train(conv.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            _say(f"padding_mode={self.padding_mode!r}: the kernels pad with zeros only")
            return _activate(self._conv_forward(x, self.weight, self.bias), self.activation)
        params = self._parameters
        if type(self) is Conv2d and "weight" in params and "bias" in params:
            # What self.weight returns, without nn.Module.__getattr__ (0.4 us a parameter here,
            # once the normal attribute lookup has failed). A subclass or a parametrization may
            # put a property in front of the name, and weight_norm moves it out of _parameters.
            weight, bias = params["weight"], params["bias"]
        else:
            weight, bias = self.weight, self.bias
        return conv2d(
            x,
            weight,
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.activation,
            self.groups,
        )

    def extra_repr(self) -> str:
        extra = super().extra_repr()
        return extra + (f", activation={self.activation!r}" if self.activation else "")
