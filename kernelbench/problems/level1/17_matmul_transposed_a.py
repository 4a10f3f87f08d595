"""Matrix multiplication with the left operand stored transposed: C = A.T @ B."""

import torch
import torch.nn as nn

M = 4096
K = 2048
N = 4096

SIZES = {"cpu": {"M": 48, "K": 64, "N": 56}}
HOLDOUT = [{"M": 33, "K": 45, "N": 61}]
# fp32 accumulation over K = 2048 leaves an absolute rounding error of up to ~3e-3 against the exact
# product (measured on an H100 for cuBLAS with TF32 off, "scaled" inputs), which a correct fp32 kernel
# with another summation order (split-K, 3xTF32, ...) doubles; TF32 or fp16/bf16 inputs are off by
# 0.02 and more, so this atol still rejects them.
TOLERANCE = {"atol": 1e-2, "rtol": 1e-4}


class Model(nn.Module):
    """A is stored (K, M) and B (K, N); returns A^T B of shape (M, N)."""

    def __init__(self):
        super().__init__()

    def forward(self, A, B):
        return torch.matmul(A.T, B)


def get_inputs():
    return [torch.randn(K, M), torch.randn(K, N)]


def get_init_inputs():
    return []
