"""The light reconstruction decoder, shared by all leads, and how it hears about other leads.

Every lead's sequence is its CLS, its encoded visible patches and mask tokens for the rest
(all mask tokens for a lead the encoder did not see), with position and lead embeddings.
The condition decides what crosses between leads:

- ``read``    (LAMAE) before each block, every token reads the router latents at its own
              position, so a masked patch of lead i at time t is predicted from what the other
              leads showed at t: the path the cross-lead structure supervises.
- ``prefix``  (LAMAE-global, LAMAE-mean) the aggregate is prepended to every lead's sequence.
- ``none``    nothing crosses (IndS, IndP, MVMAE); with ``joint`` mixing all leads' tokens form
              one sequence instead (Joint, ST-MEM's design).
"""

from __future__ import annotations

import torch
from torch import nn

from .encoders import LeadGates, intervene_latents
from .layers import Block, read_latents, sincos_1d, take_rows


class LatentRead(nn.Module):
    """Decoder tokens (B, L, P, Dd) attend over the latents at their position (B, P, K, Dd)."""

    def __init__(self, dim: int, heads: int, lead_gates: int = 0, width: int | None = None):
        super().__init__()
        inner = width or dim  # the attention's inner width (see LeadRouter)
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, inner)
        self.kv = nn.Linear(dim, 2 * inner)
        self.proj = nn.Linear(inner, dim)
        self.receive = LeadGates(lead_gates, dim) if lead_gates else None

    def forward(self, x, z, leads=None, pos=None):
        """``pos`` (B, L, S): each token's grid position, where the tokens are not the whole grid in order."""
        msg = self.proj(read_latents(self.q(self.norm_q(x)), self.kv(self.norm_kv(z)), self.heads, pos))
        if self.receive is not None:
            msg = self.receive(msg, leads)
        return x + msg


class LeadDecoder(nn.Module):
    def __init__(self, cfg, n_vocab: int, condition: str, mixing: str):
        super().__init__()
        d, dd = cfg.dim, cfg.decoder_dim
        self.condition, self.mixing, self.n_patches = condition, mixing, cfg.n_patches
        self.embed = nn.Linear(d, dd)
        self.cond = nn.Linear(d, dd) if condition != "none" else None
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer("pos", sincos_1d(cfg.n_patches, dd), persistent=False)
        self.lead_embed = nn.Embedding(n_vocab, dd)
        self.blocks = nn.ModuleList(Block(dd, cfg.decoder_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth))
        gates = n_vocab if cfg.lead_gates else 0
        self.reads = (nn.ModuleList(LatentRead(dd, cfg.decoder_heads, gates, cfg.inner_width(dd, cfg.decoder_heads))
                                    for _ in range(cfg.decoder_depth))
                      if condition == "read" else None)
        self.norm = nn.LayerNorm(dd)
        self.pred = nn.Linear(dd, cfg.patch_size)

    def forward(self, encoded, leads, targets, ids_restore, condition, hidden=None, intervene=None, rows=None):
        """Predict every patch of every lead (B, L, N, patch_size).

        ``targets`` (B, L): leads to predict (the joint decoder attends only to these);
        ``hidden`` (B, L): leads the encoder did not see, all of whose tokens are mask tokens;
        ``rows`` (B, L, S): decode only these positions, the visible ones first in the encoder's
        order, and predict (B, L, S, patch_size): the other masked patches are left out of the
        sequence altogether (partial decoding, ``decode_ratio``).
        """
        b, n_leads, _, _ = encoded.shape
        n, dd = self.n_patches, self.mask_token.shape[-1]
        y = self.embed(encoded)
        if hidden is not None:
            y = torch.where(hidden[:, :, None, None], self.mask_token.to(y.dtype), y)
        cls, vis = y[:, :, :1], y[:, :, 1:]
        shown = n if rows is None else rows.shape[-1]
        fill = self.mask_token.expand(b * n_leads, shown - vis.shape[2], dd).view(b, n_leads, -1, dd)
        full = torch.cat([vis, fill], dim=2)
        if rows is None:
            full = take_rows(full, ids_restore) + self.pos
        else:
            full = full + self.pos[rows]
        full = full + self.lead_embed(leads)[:, :, None, :]
        parts, n_prefix = [cls, full], 0
        if self.condition == "prefix":
            cond = self.cond(intervene_latents(condition, intervene))[:, None].expand(-1, n_leads, -1, -1)
            parts.insert(0, cond)
            n_prefix = cond.shape[2]
        seq = torch.cat(parts, dim=2)
        width = seq.shape[2]
        if self.condition == "read":
            z = self.cond(intervene_latents(condition, intervene))
            pos = None if rows is None else torch.cat([rows.new_zeros(b, n_leads, 1), rows + 1], dim=2)
            for read, blk in zip(self.reads, self.blocks):
                seq = read(seq, z, leads, pos)
                seq = blk(seq.flatten(0, 1)).view(b, n_leads, width, dd)
        elif self.mixing == "joint":
            flat = seq.reshape(b, n_leads * width, dd)
            attend = (None if bool(targets.all()) else
                      targets[:, :, None].expand(-1, -1, width).reshape(b, n_leads * width))
            for blk in self.blocks:
                flat = blk(flat, attend)
            seq = flat.view(b, n_leads, width, dd)
        else:
            flat = seq.flatten(0, 1)
            for blk in self.blocks:
                flat = blk(flat)
            seq = flat.view(b, n_leads, width, dd)
        return self.pred(self.norm(seq)[:, :, n_prefix + 1:])
