"""Causal grouped-query attention (fewer K/V heads than query heads), head_dim 128, bfloat16."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 8
q_heads = 32
kv_heads = 8
seq_len = 4096
head_dim = 128

SIZES = {"cpu": {"batch_size": 1, "q_heads": 4, "kv_heads": 2, "seq_len": 64}}
HOLDOUT = [{"batch_size": 1, "q_heads": 6, "kv_heads": 2, "seq_len": 45}]
DTYPE = "bfloat16"
# "scaled" (x4 on q and k) multiplies the logits by 16; a bfloat16 reference that rounds them
# (PyTorch's CPU path does) then differs from a correct fp32-softmax kernel by more than 1e-2.
INPUT_DISTRIBUTIONS = ["given", "sparse"]


class Model(nn.Module):
    """Query head h reads K/V head h // (q_heads // kv_heads); position i attends to j <= i.

    q is (B, q_heads, S, D); k and v are (B, kv_heads, S, D); scale 1/sqrt(D).
    """

    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        group = q.shape[1] // k.shape[1]
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def get_inputs():
    return [
        torch.randn(batch_size, q_heads, seq_len, head_dim),
        torch.randn(batch_size, kv_heads, seq_len, head_dim),
        torch.randn(batch_size, kv_heads, seq_len, head_dim),
    ]


def get_init_inputs():
    return []
