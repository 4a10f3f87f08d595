"""Scaled dot-product attention, non-causal, head_dim 64, float16."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 32
num_heads = 16
seq_len = 4096
head_dim = 64

SIZES = {"cpu": {"batch_size": 1, "num_heads": 2, "seq_len": 64}}
HOLDOUT = [{"batch_size": 2, "num_heads": 3, "seq_len": 77}]
DTYPE = "float16"


class Model(nn.Module):
    """out = softmax(q k^T / sqrt(head_dim)) v per (batch, head); q, k, v are (B, H, S, D)."""

    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def get_inputs():
    shape = (batch_size, num_heads, seq_len, head_dim)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []
