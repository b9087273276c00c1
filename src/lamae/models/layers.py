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


# ---------------------------------------------------------------------- grouped (per-lead) blocks
# IndP's twelve private encoders as one stack of grouped weights (G, ...): every lead's tokens
# go through its own weights in one batched matmul instead of twelve small ones in a loop.
# Initialised like nn.Linear / nn.LayerNorm, group by group, so a grouped block is exactly G
# independent ``Block``s (the state-dict hook of ``PrivateEncoder`` converts between the two).

class GroupedLinear(nn.Module):
    def __init__(self, groups: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(groups, d_out, d_in))
        self.bias = nn.Parameter(torch.empty(groups, d_out))
        bound = 1 / math.sqrt(d_in)
        for g in range(groups):  # nn.Linear's initialisation, per group
            nn.init.kaiming_uniform_(self.weight[g], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        """x (G', N, d_in) -> (G', N, d_out); ``groups`` (G',) picks the weights (all, in order, if None)."""
        w, b = (self.weight, self.bias) if groups is None else (self.weight[groups], self.bias[groups])
        return torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))


class GroupedLayerNorm(nn.Module):
    def __init__(self, groups: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(groups, dim))
        self.bias = nn.Parameter(torch.zeros(groups, dim))

    def forward(self, x, groups=None):
        w, b = (self.weight, self.bias) if groups is None else (self.weight[groups], self.bias[groups])
        return torch.addcmul(b[:, None, :], F.layer_norm(x, x.shape[-1:]), w[:, None, :])


class GroupedBlock(nn.Module):
    """G pre-norm transformer blocks, one per group, run together. Input (G', B, S, D)."""

    def __init__(self, groups: int, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        hidden = int(dim * mlp_ratio)
        self.heads = heads
        self.norm1 = GroupedLayerNorm(groups, dim)
        self.qkv = GroupedLinear(groups, dim, 3 * dim)
        self.proj = GroupedLinear(groups, dim, dim)
        self.norm2 = GroupedLayerNorm(groups, dim)
        self.fc1 = GroupedLinear(groups, dim, hidden)
        self.fc2 = GroupedLinear(groups, hidden, dim)

    def forward(self, x: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        g, b, s, d = x.shape
        h = x.reshape(g, b * s, d)
        qkv = self.qkv(self.norm1(h, groups), groups).view(g * b, s, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(g, b * s, d)
        h = h + self.proj(y, groups)
        h = h + self.fc2(F.gelu(self.fc1(self.norm2(h, groups), groups)), groups)
        return h.view(g, b, s, d)


# Block parameter names -> GroupedBlock parameter names (for the state-dict conversion)
BLOCK_TO_GROUPED = {"norm1.": "norm1.", "attn.qkv.": "qkv.", "attn.proj.": "proj.", "norm2.": "norm2.",
                    "mlp.0.": "fc1.", "mlp.2.": "fc2."}


class ConvStem(nn.Module):
    """Early convolutions in place of the linear patch embedding (Xiao et al. 2021, "Early
    convolutions help transformers see better"), per lead:

        frames = GELU(Conv(k = s = frame)([x * seen, seen]))   # frames of ``frame`` samples
        frames = GELU(Conv(k = 3)(frames))                      # each frame reads its neighbours,
                                                                #   across patch borders too
        tokens = Conv(k = s = patch / frame)(frames)            # one token per patch

    x (B, L, T) and seen (B, L, T) (1 where the sample may be read: masked patches enter as zeros
    with seen 0, so a visible patch next to a masked one learns nothing of it) -> (B, L, N, dim).
    ``width`` channels inside (a quarter of ``dim``: the stem costs about a tenth of a ``tiny``
    LAMAE step)."""

    def __init__(self, patch_size: int, frame: int, dim: int):
        super().__init__()
        width = max(8, dim // 4)
        self.frames = nn.Conv1d(2, width, kernel_size=frame, stride=frame)
        self.mix = nn.Conv1d(width, width, kernel_size=3, padding=1)
        self.patch = nn.Conv1d(width, dim, kernel_size=patch_size // frame, stride=patch_size // frame)

    def forward(self, x: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        b, n_leads, t = x.shape
        seen = seen.to(x.dtype)
        h = F.gelu(self.frames(torch.stack([x * seen, seen], dim=2).flatten(0, 1)))
        h = self.patch(F.gelu(self.mix(h)))                                # (B*L, dim, N)
        return h.transpose(1, 2).reshape(b, n_leads, h.shape[-1], -1)


def sincos_1d(n: int, dim: int) -> torch.Tensor:
    """Fixed 1-D sine-cosine position embedding (n, dim), as in MAE."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    ang = pos * omega[None, :]
    return torch.cat([ang.sin(), ang.cos()], dim=1).float()


# ---------------------------------------------------------------------- rows by index
# Moving whole rows (a token's width) by a flat row index: ``index_select`` / ``index_copy``
# copy contiguous rows, where ``gather`` / ``scatter`` with an index expanded over the width
# read an index per element; on CPU the row form is several times faster.

def _flat_rows(index: torch.Tensor, n: int) -> torch.Tensor:
    """(..., M) indices into dim -2 of (..., n, C) -> indices into its (prod(...) * n, C) rows."""
    groups = index.reshape(-1, index.shape[-1])
    return (torch.arange(groups.shape[0], device=index.device)[:, None] * n + groups).reshape(-1)


def take_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (..., S, C), index (..., M) -> (..., M, C): ``values.gather(-2, index)`` over whole rows."""
    *lead, s, c = values.shape
    return values.reshape(-1, c).index_select(0, _flat_rows(index, s)).view(*lead, index.shape[-1], c)


# ---------------------------------------------------------------------- the (lead x position) grid
# Per-lead sequences hold each lead's visible tokens in its own order; ``pos`` (B, L, S) gives
# each sequence item's patch position (0 is the lead's CLS). The latents gather from a grid
# (batch, leads, positions, width) where every token sits at its position; tokens read the
# latents back at their own position, without the grid.

def to_grid(values: torch.Tensor, pos: torch.Tensor, n_pos: int) -> torch.Tensor:
    """(B, L, S, C) sequence items -> (B, L, n_pos, C), zeros where a lead has no visible token."""
    b, n_leads, _, c = values.shape
    grid = values.new_zeros(b * n_leads * n_pos, c).index_copy(0, _flat_rows(pos, n_pos), values.reshape(-1, c))
    return grid.view(b, n_leads, n_pos, c)


def gather_over_leads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor, visible: torch.Tensor,
                      heads: int):
    """At every position, latents attend over the leads visible there.

    q (B, P, K, D) latent queries; k, v (B, L, S, D) the leads' tokens, at grid positions
    ``pos`` (B, L, S); visible (B, L, P). Returns (B, P, K, D) and the attention over leads
    (B, P, L), averaged over heads and latents (a distribution over the visible leads; all zeros
    where no lead is visible, and then the output is zero too). Each token meets the queries of
    its own position; only the scores (K x heads per token) go onto the grid, for the softmax
    over the leads at each position, and the weighted values are summed back per position.
    Written out rather than fused because the weights are needed.
    """
    b, p, n_lat, d = q.shape
    n_leads, s = k.shape[1], k.shape[2]
    hd = d // heads
    qt = take_rows(q.flatten(2), pos.reshape(b, -1)).view(b, n_leads, s, n_lat, heads, hd)
    scores = (qt * k.view(b, n_leads, s, 1, heads, hd)).sum(-1) * hd ** -0.5      # (B, L, S, K, H)
    vis = visible[..., None]                                                       # (B, L, P, 1)
    weights = to_grid(scores.flatten(3), pos, p).masked_fill(~vis, float("-inf")).softmax(dim=1)
    weights = torch.where(vis.any(dim=1, keepdim=True), weights, torch.zeros_like(weights))  # (B, L, P, K*H)
    per_token = take_rows(weights, pos).view(b, n_leads, s, n_lat, heads, 1)
    msg = (per_token * v.view(b, n_leads, s, 1, heads, hd)).reshape(b * n_leads * s, n_lat * d)
    out = msg.new_zeros(b * p, n_lat * d).index_add(0, _flat_rows(pos.reshape(b, -1), p), msg)
    return out.view(b, p, n_lat, d), weights.mean(dim=-1).transpose(1, 2)


def read_latents(q: torch.Tensor, kv: torch.Tensor, heads: int, pos: torch.Tensor | None = None) -> torch.Tensor:
    """Every token attends over the latents at its own position.

    q (B, L, S, D) token queries; kv (B, P, K, 2D) the latents' keys and values side by side
    -> (B, L, S, D). ``pos`` (B, L, S) gives each token's grid position; None means the queries
    are the whole grid in order (S = P, the decoder's case). Only the tokens that exist are
    computed, not the (mostly empty) grid around the encoder's visible patches. With a handful
    of latents per position the attention is written as products summed over each head's
    width and a softmax over the K latents: a fused kernel would spend its time on blocks of
    one query and K keys. In the decoder (``pos`` None) every lead's query at a position meets
    the same latents, and the read is a batched matmul.
    """
    b, n_leads, s, d = q.shape
    n_lat, hd = kv.shape[2], d // heads
    if pos is None:
        # Every lead's query at a position meets the same K latents: one (L x hd) @ (hd x K)
        # product per (batch, position, head), a batched matmul, rather than a product of
        # L x K x D per position written out and summed. The scores keep K off the last axis:
        # on CPU a softmax over a last axis of 2 ran 20x slower than over an inner one, and
        # this read's forward and backward took 0.75x the time of scores laid out (..., K)
        # (benchmarks/kernels.py).
        k, v = (t.unflatten(-1, (heads, hd)) for t in kv.chunk(2, dim=-1))    # (B, P, K, H, hd)
        qh = q.view(b, n_leads, s, heads, hd)
        weights = (torch.einsum("blphd,bpkhd->bpkhl", qh, k) * hd ** -0.5).softmax(dim=2)
        return torch.einsum("bpkhl,bpkhd->blphd", weights, v).reshape(b, n_leads, s, d)
    # Each token's own position's latents (B, L, S, K, 2D). Written as batched matmuls (one row
    # of queries per token) this read measured slower: 1.06x the step on CPU (tiny), 1.07x on
    # an H100 (base, 500 Hz).
    kv = take_rows(kv.flatten(2), pos.reshape(b, -1)).view(b, n_leads, s, n_lat, 2 * d)
    k, v = (t.unflatten(-1, (heads, hd)) for t in kv.chunk(2, dim=-1))
    qh = q.view(b, n_leads, s, 1, heads, hd)
    weights = ((qh * k).sum(-1) * hd ** -0.5).softmax(dim=3)           # (B, L, S, K, H)
    return (weights[..., None] * v).sum(3).reshape(b, n_leads, s, d)
