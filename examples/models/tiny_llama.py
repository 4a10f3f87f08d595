"""A pre-norm transformer block in the Llama style, to try `kernelloop capture` on.

    kernelloop capture examples/models/tiny_llama.py:make_block -o captured/tiny_llama
    kernelloop optimize captured/tiny_llama --coder builtin

`make_block` and `get_inputs` are tiny, so a CPU captures and checks them in seconds;
`make_stack` holds two identical blocks (their layers share problems). `make_llama7b_block`
is one block at Llama-2-7B's sizes: capture it on the meta device, which allocates nothing:

    kernelloop capture examples/models/tiny_llama.py:make_llama7b_block \\
        --inputs examples/models/tiny_llama.py:llama7b_inputs --device meta -o captured/llama7b
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class Config:
    dim: int = 64
    heads: int = 4
    hidden: int = 128  # the MLP's inner width
    eps: float = 1e-6


TINY = Config()
LLAMA_7B = Config(dim=4096, heads=32, hidden=11008, eps=1e-5)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.q = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.k = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.v = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.o = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        shape = (b, t, self.heads, c // self.heads)
        q = self.q(x).view(shape).transpose(1, 2)
        k = self.k(x).view(shape).transpose(1, 2)
        v = self.v(x).view(shape).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.dim, cfg.hidden, bias=False)
        self.up = nn.Linear(cfg.dim, cfg.hidden, bias=False)
        self.down = nn.Linear(cfg.hidden, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg: Config = TINY) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Stack(nn.Module):
    def __init__(self, cfg: Config = TINY, layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def make_block() -> nn.Module:
    torch.manual_seed(0)
    return Block(TINY)


def make_stack() -> nn.Module:
    torch.manual_seed(0)
    return Stack(TINY, layers=2)


def make_llama7b_block() -> nn.Module:
    return Block(LLAMA_7B)


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(2, 16, TINY.dim)]


def llama7b_inputs() -> list[torch.Tensor]:
    return [torch.randn(8, 2048, LLAMA_7B.dim)]  # batch 8, 2048 tokens
