"""A `cuda` candidate for level1/01_relu: raw CUDA C++ compiled by kernelloop's NVRTC helper.

    kernelloop eval level1/01_relu examples/relu_cuda.py

On a machine without a GPU the kernel compiles (errors come back with line numbers) but cannot
run, and the verdict says NOT_RUN_NO_GPU.
"""

import torch
import torch.nn as nn

from kernelloop.sandbox.nvrtc import load_kernel

SOURCE = r"""
extern "C" __global__ void relu_f32(const float* __restrict__ x, float* __restrict__ y,
                                    long long n) {
    // Grid-stride loop over float4 vectors; the tail (n % 4) is handled element-wise.
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long stride = (long long)gridDim.x * blockDim.x;
    long long nvec = n / 4;
    const float4* xv = reinterpret_cast<const float4*>(x);
    float4* yv = reinterpret_cast<float4*>(y);
    for (long long v = i; v < nvec; v += stride) {
        float4 a = xv[v];
        a.x = fmaxf(a.x, 0.f); a.y = fmaxf(a.y, 0.f); a.z = fmaxf(a.z, 0.f); a.w = fmaxf(a.w, 0.f);
        yv[v] = a;
    }
    for (long long t = nvec * 4 + i; t < n; t += stride) {
        y[t] = fmaxf(x[t], 0.f);
    }
}
"""

_relu = load_kernel(SOURCE, "relu_f32")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        blocks = min(max((n // 4 + 255) // 256, 1), 132 * 16)
        _relu(blocks, 256, x, y, n)
        return y
