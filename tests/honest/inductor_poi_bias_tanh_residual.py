"""TorchInductor generated-code style pointwise kernel: fused bias + tanh + residual add.

Idioms: kernel named `triton_poi_fused_add_tanh_0` with `in_ptr0..`, `out_ptr0`, `ks0`/`ks1` dynamic
sizes, `xnumel`, `XBLOCK: tl.constexpr`; `xoffset`/`xindex`/`xmask`, `tl.arange(0, XBLOCK)[:]`,
`x3 = xindex`, `x1 = ((xindex // ks0) % ks1)`, `tmpN` temporaries, `eviction_policy='evict_last'`;
`libdevice.tanh` through an Inductor-style module alias
(`try: from triton.language.extra import libdevice` / `except ImportError: libdevice = tl.math`);
multi-config `triton.autotune(key=["xnumel"])` standing in for Inductor's CachingAutotuner;
host `call(args)` with `args.clear()`, an `assert_size_stride` helper, `torch.empty_strided`.
"""
# problem: level2/10_bias_tanh_residual

import torch
import torch.nn as nn
import triton
import triton.language as tl

try:
    from triton.language.extra import libdevice
except ImportError:
    libdevice = tl.math


@triton.autotune(
    configs=[
        triton.Config({"XBLOCK": 1024}, num_warps=4, num_stages=1),
        triton.Config({"XBLOCK": 512}, num_warps=8, num_stages=1),
        triton.Config({"XBLOCK": 128}, num_warps=4, num_stages=1),
    ],
    key=["xnumel"],
)
@triton.jit
def triton_poi_fused_add_tanh_0(
    in_ptr0, in_ptr1, in_ptr2, out_ptr0, ks0, ks1, xnumel, XBLOCK: tl.constexpr
):
    xoffset = tl.program_id(0) * XBLOCK
    xindex = xoffset + tl.arange(0, XBLOCK)[:]
    xmask = xindex < xnumel
    x3 = xindex
    x1 = (xindex // ks0) % ks1
    tmp0 = tl.load(in_ptr0 + (x3), xmask)
    tmp1 = tl.load(in_ptr1 + (x1), xmask, eviction_policy="evict_last")
    tmp4 = tl.load(in_ptr2 + (x3), xmask)
    tmp2 = tmp0 + tmp1
    tmp3 = libdevice.tanh(tmp2)
    tmp5 = tmp3 + tmp4
    tl.store(out_ptr0 + (x3), tmp5, xmask)


def contiguous_strides(size):
    strides, acc = [], 1
    for s in reversed(size):
        strides.append(acc)
        acc *= s
    return tuple(reversed(strides))


def assert_size_stride(t, size, stride):
    assert tuple(t.size()) == tuple(size), f"expected size {size}, got {tuple(t.size())}"
    assert tuple(t.stride()) == tuple(stride), f"expected stride {stride}, got {tuple(t.stride())}"


def grid(xnumel):
    def grid_fn(meta):
        return (triton.cdiv(xnumel, meta["XBLOCK"]), 1, 1)

    return grid_fn


def call(args):
    arg0_1, arg1_1, arg2_1 = args
    args.clear()
    s0, s1, s2, s3 = arg0_1.shape
    assert_size_stride(arg0_1, (s0, s1, s2, s3), contiguous_strides((s0, s1, s2, s3)))
    assert_size_stride(arg1_1, (s1,), (1,))
    assert_size_stride(arg2_1, (s0, s1, s2, s3), contiguous_strides((s0, s1, s2, s3)))
    buf0 = torch.empty_strided(
        (s0, s1, s2, s3),
        contiguous_strides((s0, s1, s2, s3)),
        device=arg0_1.device,
        dtype=torch.float32,
    )
    xnumel = s0 * s1 * s2 * s3
    triton_poi_fused_add_tanh_0[grid(xnumel)](arg0_1, arg1_1, arg2_1, buf0, s2 * s3, s1, xnumel)
    del arg0_1, arg1_1, arg2_1
    return (buf0,)


class ModelNew(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x, residual):
        return call([x.contiguous(), self.bias, residual.contiguous()])[0]
