"""Aggregators: from encoded leads to one ECG embedding, lead weights and the decoder's condition.

Each returns ``Aggregate(condition, pooled, lead_weights)``:

- ``RouterReadout``          (LAMAE) reads the router encoder's time-resolved latents: the pooled
                             embedding is their mean (``readout``), the lead weights are the
                             latents' attention over leads, and the decoder reads the latents of
                             each position.
- ``GlobalLatentAttention``  (LAMAE-global, the first design) K global latents over the set of
                             per-lead CLS vectors (or every token); the decoder gets the K latents
                             prepended to every lead.
- ``MeanAggregator``         (LAMAE-mean) the mean of the lead CLS vectors, prepended likewise.
- no aggregator              (IndS, IndP, MVMAE, Joint) the pooled embedding is the mean of the
                             lead CLS vectors and the decoder gets nothing from other leads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import READOUTS
from .encoders import Encoded
from .layers import Block, CrossAttention, Mlp


@dataclass
class Aggregate:
    condition: torch.Tensor | None   # what the decoder is conditioned on (None: nothing)
    pooled: torch.Tensor             # (B, D)
    lead_weights: torch.Tensor       # (B, L), sums to 1 over present leads


def uniform_lead_weights(present: torch.Tensor) -> torch.Tensor:
    """(B, L): 1 / (number of present leads) at each present lead, 0 elsewhere."""
    return present.float() / present.float().sum(1, keepdim=True)


def mean_of_leads(encoded: torch.Tensor, present: torch.Tensor):
    """The mean of the present leads' CLS tokens (LAMAE_E's readout) and uniform lead weights."""
    w = uniform_lead_weights(present)
    return (encoded[:, :, 0] * w[..., None].to(encoded.dtype)).sum(1), w


class NoAggregator(nn.Module):
    def forward(self, enc: Encoded, present) -> Aggregate:
        pooled, w = mean_of_leads(enc.tokens, present)
        return Aggregate(None, pooled, w)


class MeanAggregator(nn.Module):
    def forward(self, enc: Encoded, present) -> Aggregate:
        pooled, w = mean_of_leads(enc.tokens, present)
        return Aggregate(pooled[:, None], pooled, w)


class RouterReadout(nn.Module):
    """The pooled embedding from the router latents (B, P, K, D), P = CLS position + N patches.

    ``latents``: mean over every position and latent; ``cls_latents``: the latents at the CLS
    position only; ``patch_latents``: mean over the patch positions only.
    """

    def __init__(self, readout: str):
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.readout = readout

    def forward(self, enc: Encoded, present) -> Aggregate:
        z = enc.latents
        if self.readout == "cls_latents":
            pooled = z[:, 0].mean(1)
        elif self.readout == "patch_latents":
            pooled = z[:, 1:].mean(dim=(1, 2))
        else:
            pooled = z.mean(dim=(1, 2))
        # Lead weights: the latents' attention over leads, averaged over the positions where any
        # lead was visible (each such position's weights sum to 1 over its visible leads).
        w = enc.lead_weights.float()
        seen = w.sum(-1, keepdim=True) > 0
        lead_w = (w * seen).sum(1) / seen.sum(1).clamp_min(1)
        return Aggregate(z, pooled, lead_w)


class GlobalLatentAttention(nn.Module):
    """K learned latents attend over the set of lead representations (the first LAMAE design).

    ``pma`` (Set Transformer's pooling by multi-head attention): latents are queries, leads are
    keys/values; the weights, averaged over heads and latents, are the lead weights, and
    ``latent_depth`` latent self-attention blocks follow. ``nvembed`` (NV-Embed): leads are
    queries, latents keys/values, then a mean over leads. Both are invariant to lead order.
    """

    def __init__(self, cfg):
        super().__init__()
        d = cfg.dim
        self.mode, self.input = cfg.latent_mode, cfg.latent_input
        self.latents = nn.Parameter(torch.randn(cfg.n_latents, d) * 0.02)
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.cross = CrossAttention(d, cfg.latent_heads)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = Mlp(d, cfg.mlp_ratio)
        n_blocks = cfg.latent_depth if self.mode == "pma" else 0
        self.blocks = nn.ModuleList(Block(d, cfg.latent_heads, cfg.mlp_ratio) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(d)

    def forward(self, enc: Encoded, present) -> Aggregate:
        encoded = enc.tokens
        b, n_leads, s, d = encoded.shape
        if self.input == "cls":
            items, attend = encoded[:, :, 0], present
            item_lead = torch.arange(n_leads, device=encoded.device)
        else:
            items = encoded.reshape(b, n_leads * s, d)
            attend = present[:, :, None].expand(-1, -1, s).reshape(b, n_leads * s)
            item_lead = torch.arange(n_leads, device=encoded.device).repeat_interleave(s)
        lat = self.latents.expand(b, -1, -1)
        if self.mode == "pma":
            out, w = self.cross(self.norm_q(lat), self.norm_kv(items), attend)
            lat = lat + out
            lat = lat + self.mlp(self.norm_mlp(lat))
            for blk in self.blocks:
                lat = blk(lat)
            lat = self.norm(lat)
            item_w = w.mean(dim=(1, 2))  # (B, S), sums to 1 over present items
            lead_w = torch.zeros(b, n_leads, device=items.device, dtype=item_w.dtype)
            lead_w.index_add_(1, item_lead, item_w)
            return Aggregate(lat, lat.mean(dim=1), lead_w)
        out, _ = self.cross(self.norm_q(items), self.norm_kv(lat), None)
        x = items + out
        x = x + self.mlp(self.norm_mlp(x))
        x = self.norm(x)
        weight = attend.float()
        pooled = (x * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1)
        lead_w = torch.zeros(b, n_leads, device=items.device)
        lead_w.index_add_(1, item_lead, weight / weight.sum(1, keepdim=True).clamp_min(1))
        return Aggregate(pooled[:, None, :], pooled, lead_w)


def build_aggregator(cfg) -> nn.Module:
    if cfg.aggregator == "none":
        return NoAggregator()
    if cfg.aggregator == "mean":
        return MeanAggregator()
    if cfg.encoder == "router":
        return RouterReadout(cfg.readout)
    return GlobalLatentAttention(cfg)
