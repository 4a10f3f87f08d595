"""Square single-precision matrix multiplication C = A @ B."""

import torch
import torch.nn as nn

N = 4096

SIZES = {"cpu": {"N": 64}}
HOLDOUT = [{"N": 97}]
# fp32 accumulation over K = 4096 leaves an absolute rounding error of up to ~5e-3 against the exact
# product (measured on an H100 for cuBLAS with TF32 off, "scaled" inputs), which a correct fp32 kernel
# with another summation order (split-K, 3xTF32, ...) doubles; TF32 or fp16/bf16 inputs are off by
# 0.02 and more, so this atol still rejects them.
TOLERANCE = {"atol": 2e-2, "rtol": 1e-4}


class Model(nn.Module):
    """(N, N) @ (N, N) in float32."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(N, N), torch.randn(N, N)]


def get_init_inputs():
    return []
