"""Non-causal scaled dot-product attention in half precision, (batch, heads, seq, head_dim)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 16
num_heads = 16
seq_len = 4096
head_dim = 64

SIZES = {"cpu": {"batch_size": 1, "num_heads": 2, "seq_len": 64, "head_dim": 32}}
HOLDOUT = [{"batch_size": 1, "num_heads": 3, "seq_len": 77, "head_dim": 40}]
DTYPE = "float16"


class Model(nn.Module):
    """softmax(Q K^T / sqrt(head_dim)) V over the full sequence (no mask)."""

    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def get_inputs():
    shape = (batch_size, num_heads, seq_len, head_dim)
    # Queries and keys with std 1.6 give logits of std ~2.6, so each query attends to a handful of
    # keys (as in trained models) and the output is not an average that shrinks towards zero.
    q = 1.6 * torch.randn(shape)
    k = 1.6 * torch.randn(shape)
    v = torch.randn(shape)
    return [q, k, v]


def get_init_inputs():
    return []
