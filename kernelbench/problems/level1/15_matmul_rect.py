"""Rectangular single-precision matrix multiplication with M, N and K all different."""

import torch
import torch.nn as nn

M = 8192
K = 1536
N = 4096

SIZES = {"cpu": {"M": 48, "K": 80, "N": 64}}
HOLDOUT = [{"M": 37, "K": 53, "N": 71}]
# fp32 accumulation over K = 1536 leaves an absolute rounding error of up to ~2.5e-3 against the exact
# product (measured on an H100 for cuBLAS with TF32 off, "scaled" inputs), which a correct fp32 kernel
# with another summation order (split-K, 3xTF32, ...) doubles; TF32 or fp16/bf16 inputs are off by
# 0.02 and more, so this atol still rejects them.
TOLERANCE = {"atol": 1e-2, "rtol": 1e-4}


class Model(nn.Module):
    """(M, K) @ (K, N) -> (M, N) in float32."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A, B)


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []
