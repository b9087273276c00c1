"""Standard pre-norm transformer blocks using fused scaled-dot-product attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None = None) -> torch.Tensor:
        """``attend`` (batch, keys) bool: False marks keys to ignore (padding)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if attend is None else attend[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, ratio: float = 4.0):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x, attend=None):
        x = x + self.attn(self.norm1(x), attend)
        return x + self.mlp(self.norm2(x))


class CrossAttention(nn.Module):
    """Multi-head cross-attention that also returns its weights (needed as lead weights)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, queries, keys, attend=None):
        """queries (B, Q, D), keys (B, S, D), attend (B, S) bool -> (B, Q, D), weights (B, H, Q, S)."""
        b, nq, d = queries.shape
        s = keys.shape[1]
        h, hd = self.heads, d // self.heads
        q = self.q(queries).view(b, nq, h, hd).transpose(1, 2)
        k, v = self.kv(keys).view(b, s, 2, h, hd).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        if attend is not None:
            scores = scores.masked_fill(~attend[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, nq, d)
        return self.proj(out), weights


def sincos_1d(n: int, dim: int) -> torch.Tensor:
    """Fixed 1-D sine-cosine position embedding (n, dim), as in MAE."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    ang = pos * omega[None, :]
    return torch.cat([ang.sin(), ang.cos()], dim=1).float()
