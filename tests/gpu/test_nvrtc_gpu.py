"""NVRTC kernels launched on real CUDA tensors (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from kernelloop.sandbox import nvrtc
from kernelloop.sandbox.nvrtc import CudaLaunchError, load_kernel

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

VADD = """extern "C" __global__ void vadd(const float* __restrict__ x, const float* __restrict__ y,
                                 float* __restrict__ out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i] + y[i];
}
"""


def test_vector_add_matches_torch_and_counts_the_launch():
    kernel = load_kernel(VADD, "vadd")
    assert kernel.compiled.arch.startswith("sm_") and kernel.compiled.cubin
    n = 10_000
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.empty_like(x)
    before = nvrtc.launch_count()
    kernel((n + 255) // 256, 256, x, y, out, n)
    torch.cuda.synchronize()
    assert nvrtc.launch_count() == before + 1
    torch.testing.assert_close(out, x + y, rtol=0, atol=0)


def test_float_and_double_scale_params():
    src = """extern "C" __global__ void axpb(const float* x, float* out, float a, double b, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + (float)b;
}"""
    kernel = load_kernel(src, "axpb")
    x = torch.randn(1000, device="cuda")
    out = torch.empty_like(x)
    kernel((8,), (128,), x, out, 2.5, 1, 1000)  # an int is accepted for a double parameter
    torch.testing.assert_close(out, 2.5 * x + 1.0)


def test_int64_size_beyond_int32_indexing():
    src = """#include <cstdint>
extern "C" __global__ void fill(float* out, int64_t n, long long offset) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (float)(i + offset);
}"""
    kernel = load_kernel(src, "fill")
    n = 4096
    out = torch.empty(n, device="cuda")
    kernel(n // 256, 256, out, n, 2**40)  # 2**40 would overflow an int parameter
    expected = (torch.arange(n, device="cuda", dtype=torch.float64) + 2**40).float()
    torch.testing.assert_close(out, expected)


def test_half_kernel_with_cuda_fp16_header():
    src = """#include <cuda_fp16.h>
extern "C" __global__ void hadd(const __half* x, __half* out, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = __hadd(x[i], x[i]);
}"""
    kernel = load_kernel(src, "hadd")
    x = torch.randn(512, device="cuda", dtype=torch.float16)
    out = torch.empty_like(x)
    kernel(2, 256, x, out, 512)
    torch.testing.assert_close(out, x + x)


def test_runs_on_the_current_torch_stream():
    kernel = load_kernel(VADD, "vadd")
    x = torch.ones(1 << 20, device="cuda")
    out = torch.zeros_like(x)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        y = x * 2  # queued on `stream`; the kernel must run after it
        kernel((1 << 20) // 256, 256, x, y, out, 1 << 20)
    stream.synchronize()
    assert out.eq(3).all()


def test_large_dynamic_shared_memory_is_opted_in():
    src = """extern "C" __global__ void smem(float* out) {
    extern __shared__ float buf[];
    buf[threadIdx.x] = threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}"""
    kernel = load_kernel(src, "smem")
    out = torch.empty(256, device="cuda")
    kernel(1, 256, out, shared_mem=96 * 1024)  # above the 48 KiB default limit
    torch.testing.assert_close(out, torch.arange(255, -1, -1, device="cuda", dtype=torch.float32))


def test_bad_launch_configuration_names_the_driver_error():
    kernel = load_kernel(VADD, "vadd")
    x = torch.ones(4, device="cuda")
    with pytest.raises(CudaLaunchError, match="CUDA_ERROR_INVALID_VALUE"):
        kernel(1, 4096, x, x, x, 4)  # more than 1024 threads per block


def test_cpu_tensor_is_rejected_before_launch():
    kernel = load_kernel(VADD, "vadd")
    x = torch.ones(4, device="cuda")
    with pytest.raises(ValueError, match="move it with .cuda()"):
        kernel(1, 4, x, torch.ones(4), x, 4)


def test_driver_reports_resource_attributes():
    src = """extern "C" __global__ void stat(float* out) {
    __shared__ float tile[256];
    tile[threadIdx.x] = threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = tile[255 - threadIdx.x];
}"""
    attrs = load_kernel(src, "stat").attributes()
    assert attrs["registers"] > 0 and attrs["static_shared_bytes"] == 256 * 4
    assert attrs["local_bytes"] == 0 and attrs["max_threads_per_block"] >= 256
