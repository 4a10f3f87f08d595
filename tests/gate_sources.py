"""Candidate sources shared by the static gate's tests: honest ones per backend, and a small
Triton template that each cheat edits in one place."""

from __future__ import annotations

import textwrap

from kernelloop.sandbox.static_gate import check_source

HONEST_TRITON = """
import math
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _bias_relu(v, b):
    return tl.maximum(v + b, 0.0)


@triton.autotune(configs=[triton.Config({"BLOCK_N": 64}, num_warps=4)], key=["N", "K"])
@triton.jit
def _linear_relu_kernel(x_ptr, w_ptr, b_ptr, y_ptr, M, N, K, BLOCK_N: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + row * K + ks, mask=ks < K, other=0.0)
        w = tl.load(w_ptr + cols[:, None] * K + ks[None, :],
                    mask=(cols[:, None] < N) & (ks[None, :] < K), other=0.0)
        acc += tl.sum(w * x[None, :], axis=1)
    b = tl.load(b_ptr + cols, mask=cols < N, other=0.0)
    tl.store(y_ptr + row * N + cols, _bias_relu(acc, b).to(tl.float32), mask=cols < N)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.scale = nn.Parameter(torch.ones(out_features))
        nn.init.kaiming_uniform_(self.linear.weight, a=math.sqrt(5))

    def forward(self, x):
        x = x.contiguous().view(-1, x.shape[-1]).to(torch.float32)
        M, K = x.shape
        N = self.linear.weight.shape[0]
        y = torch.empty((M, N), device=x.device, dtype=x.dtype)
        grid = lambda meta: (M, triton.cdiv(N, meta["BLOCK_N"]))
        _linear_relu_kernel[grid](x, self.linear.weight, self.linear.bias, y, M, N, K, BLOCK_K=32)
        return y.view(*x.shape[:-1], N)
"""

HONEST_CUDA = '''
import torch
import torch.nn as nn
from kernelloop.sandbox.nvrtc import load_kernel

_SOURCE = r"""
extern "C" __global__ void relu_kernel(const float* x, float* y, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
"""


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_kernel(_SOURCE, "relu_kernel")

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        threads = 256
        self.kernel(((n + threads - 1) // threads,), (threads,), x, y, n, shared_mem=0)
        return y
'''

HONEST_INLINE = '''
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_src = """
#include <torch/extension.h>
__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.f);
}
torch::Tensor relu_cuda(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
cpp_src = "torch::Tensor relu_cuda(torch::Tensor x);"
relu_ext = load_inline(name="relu_ext", cpp_sources=cpp_src, cuda_sources=cuda_src,
                       functions=["relu_cuda"], verbose=False)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.ext = relu_ext

    def forward(self, x):
        return self.ext.relu_cuda(x)
'''

# An honest Triton candidate whose forward body and module prelude the cheats below replace.
TEMPLATE = """
import torch
import torch.nn as nn
import triton
import triton.language as tl
{prelude}

@triton.jit
def _copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


def launch(x):
    y = torch.empty_like(x)
    _copy_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)
    return y


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x, w=None):
{body}
"""


def candidate(body: str = "return launch(x)", prelude: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
    return TEMPLATE.format(prelude=textwrap.dedent(prelude), body=body)


def codes(source: str, **kwargs) -> set[str]:
    return {f.code for f in check_source(source, **kwargs).findings}
