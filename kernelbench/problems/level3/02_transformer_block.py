"""Pre-norm transformer encoder block: self-attention and a GELU MLP, each with a residual."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 8
seq_len = 1024
d_model = 1024
n_heads = 16
d_ff = 4096

SIZES = {"cpu": {"batch_size": 2, "seq_len": 16, "d_model": 32, "n_heads": 4, "d_ff": 64}}
HOLDOUT = [{"batch_size": 1, "seq_len": 13, "d_model": 24, "n_heads": 4, "d_ff": 37}]


class Model(nn.Module):
    """x + attn(ln1(x)), then + mlp(ln2(.)); attention is bidirectional (no mask), no dropout.

    attn: one fused QKV projection, per-head softmax(q k^T / sqrt(d_head)) v, output projection.
    mlp: fc1, exact GELU, fc2. Shapes: x is (batch, seq, d_model).
    """

    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)
        with torch.no_grad():  # non-trivial norm affines so that ignoring them is caught
            for ln in (self.ln1, self.ln2):
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        b, s, d = x.shape
        h = self.n_heads
        qkv = self.qkv(self.ln1(x)).view(b, s, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (b, h, s, d_head)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d // h)
        att = torch.matmul(torch.softmax(scores, dim=-1), v)
        x = x + self.proj(att.transpose(1, 2).reshape(b, s, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


def get_inputs():
    return [torch.randn(batch_size, seq_len, d_model)]


def get_init_inputs():
    return [d_model, n_heads, d_ff]
