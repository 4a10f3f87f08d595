"""Causal grouped-query attention (4 query heads per K/V head), head_dim 128, bfloat16."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 8
q_heads = 32
kv_heads = 8
seq_len = 4096
head_dim = 128
causal = True

SIZES = {"cpu": {"batch_size": 1, "q_heads": 4, "kv_heads": 2, "seq_len": 64}}
HOLDOUT = [
    {"batch_size": 1, "q_heads": 6, "kv_heads": 2, "seq_len": 45},
    {"batch_size": 1, "q_heads": 4, "kv_heads": 1, "seq_len": 150},
]
DTYPE = "bfloat16"
# "scaled" (x4 on q and k) multiplies the logits by 16; a bfloat16 reference that rounds them
# (PyTorch's CPU path does) then differs from a correct fp32-softmax kernel by more than 1e-2.
INPUT_DISTRIBUTIONS = ["given", "sparse"]


class Model(nn.Module):
    """out = softmax(q k^T * scale [masked]) v per (batch, head), as kernelloop's `attention` op.

    Constructor arguments are the op's configuration: ``causal`` (top-left aligned like SDPA's
    ``is_causal``: query i sees keys j <= i) and ``scale`` (None means 1/sqrt(head_dim)).
    q is (B, Hq, S, D); k and v are (B, Hkv, S, D) with Hq % Hkv == 0, query head h reading K/V
    head h // (Hq // Hkv). A library entry (ModelNew) for this problem serves every call of the
    op in its shape bucket, so it must honour both arguments and any head grouping.
    """

    def __init__(self, causal, scale):
        super().__init__()
        self.causal = causal
        self.scale = scale

    def forward(self, q, k, v):
        group = q.shape[1] // k.shape[1]
        if group != 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=self.scale)


def get_inputs():
    return [
        torch.randn(batch_size, q_heads, seq_len, head_dim),
        torch.randn(batch_size, kv_heads, seq_len, head_dim),
        torch.randn(batch_size, kv_heads, seq_len, head_dim),
    ]


def get_init_inputs():
    return [causal, None]
