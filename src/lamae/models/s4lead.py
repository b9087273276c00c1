"""The state-space cells of issue 40's factorial: encoder {transformer over patches, state space} x
cross-lead path {none, LAMAE's routers and lead field}. The transformer cells are IndS and LAMAE;
these are the other two, so the factorial separates what the encoder does from what the
cross-lead path does.

Each lead runs alone through one shared state-space stack over short frames, as CPC's and
S4-MAE's encoder does over all leads at once; LAMAE's routers, when on, exchange between the
leads at every frame position:

    z = frames(x * seen, seen)        # per lead: a strided convolution over frames of cpc_stride
                                      #   samples of the signal (zero where masked) and whether
                                      #   each sample was seen, plus the lead's embedding
    for each block:                   # shared by the leads, bidirectional
        z = S4Block(z)                #   along each lead's frames
        z, latents = LeadRouter(...)  #   (S4-LAMAE) latents at each frame gather from the leads
                                      #   there, every lead reads them back (encoders.LeadRouter)
    pred = S4 decoder(z + latents) (+ the lead field's estimate)   # per lead, every frame

Unlike LAMAE's encoder, which reads only the visible patches (a transformer takes a set), a
state-space layer runs along the whole sequence: masked patches enter as zeros with their
``seen`` channel off, as in S4-MAE. The masked objective, patch mask, lead dropout and loss are
LAMAE's (``EcgInputs``), so the cells differ only in encoder and cross-lead path. The pooled
embedding is the mean of the router latents (LAMAE's readout) with routers, else the mean over
the present leads and frames of the last layer (IndS-like). Every frame is decoded, so
``decode_ratio`` does not apply. ``encoder: s4_lead``; ``aggregator: latent`` turns the routers on,
``none`` leaves the leads independent; ``lead_field`` K adds LAMAE's lead field (routers only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..leads import STANDARD_LEADS
from .aggregators import RouterReadout, mean_of_leads
from .encoders import Encoded, LeadRouter, intervene_latents
from .inputs import EcgInputs
from .layers import sincos_1d
from .leadfield import LeadField
from .ssm import S4Block


def masked_info_nce(q: torch.Tensor, z: torch.Tensor, scored: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The contrastive term (``nce_weight``): each masked frame's encoding picks its own frame.

    q (N, F, d): each sequence's (one lead of one ECG) encoding at each frame, made from the
    masked input; z (N, F, d): its frames as the front end encodes them from the unmasked input;
    scored (N, F): the frames to score (the masked ones); valid (N,): the sequences that hold a
    signal (present leads). The candidates of frame t of sequence n are every frame of n (its
    other frames are the negatives that make the term about the signal's shape, as in CPC's
    ``info_nce_loss``) and frame t of every other valid sequence (the negatives that contrast one
    ECG's or lead's morphology with another's). Dot-product scores, cross-entropy of picking
    (n, t), averaged over the scored frames."""
    n, f, _ = q.shape
    q, z = q.float(), z.float()
    own = torch.bmm(q, z.transpose(1, 2))                                   # (N, F, F')
    across = torch.einsum("ntd,mtd->ntm", q, z)                             # (N, F, N): frame t of m
    other = valid[None, :] & ~torch.eye(n, dtype=torch.bool, device=q.device)
    logits = torch.cat([own, across.masked_fill(~other[:, None, :], float("-inf"))], dim=-1)[scored]
    if logits.shape[0] == 0:
        return q.new_zeros(())
    right = torch.arange(f, device=q.device).expand(n, -1)[scored]
    return F.cross_entropy(logits, right)


class S4LeadEncoder(nn.Module):
    """Per-lead bidirectional S4 blocks over frames, with LAMAE's lead routers after every
    ``router_every``-th block (and the last) when ``routers``."""

    def __init__(self, cfg, n_frames: int, routers: bool, n_vocab: int):
        super().__init__()
        d = cfg.dim
        self.blocks = nn.ModuleList(S4Block(d, cfg.s4_state, cfg.mlp_ratio, bidirectional=True)
                                    for _ in range(cfg.depth))
        self.after = []
        self.routers = nn.ModuleList()
        if routers:
            every = cfg.router_every
            after = {cfg.depth - 1} | ({i for i in range(cfg.depth) if (i + 1) % every == 0} if every > 0 else set())
            self.after = sorted(after)
            gates = n_vocab if cfg.lead_gates else 0
            self.routers = nn.ModuleList(LeadRouter(d, cfg.latent_heads, cfg.mlp_ratio, gates,
                                                    cfg.inner_width(d, cfg.latent_heads), cfg.latent_mlp)
                                         for _ in self.after)
            self.latents = nn.Parameter(torch.randn(cfg.router_latents, d) * 0.02)
            self.register_buffer("positions", sincos_1d(n_frames, d), persistent=False)
            self.norm = nn.LayerNorm(d)

    def forward(self, x, present, intervene=None, leads=None, field=None) -> Encoded:
        """x (B, L, F, D) every lead's frames; present (B, L) the leads the routers may read;
        ``field`` (B, F, D) the lead field's sources at each frame, added to its latents."""
        b, n_leads, n_frames, d = x.shape
        if not self.routers:
            for blk in self.blocks:
                x = blk(x.flatten(0, 1)).view(b, n_leads, n_frames, d)
            return Encoded(x)
        pos = torch.arange(n_frames, device=x.device).expand(b, n_leads, -1)
        visible = present[:, :, None].expand(-1, -1, n_frames)
        z = (self.latents[None, None] + self.positions.to(x.dtype)[None, :, None]).expand(b, -1, -1, -1)
        if field is not None:
            z = z + field[:, :, None, :].to(z.dtype)
        weights, routers = None, iter(self.routers)
        for i, blk in enumerate(self.blocks):
            x = blk(x.flatten(0, 1)).view(b, n_leads, n_frames, d)
            if i in self.after:
                x, z, weights = next(routers)(x, z, pos, visible, intervene, leads)
        return Encoded(x, self.norm(z), weights, visible)


class S4Lamae(EcgInputs, nn.Module):
    """The state-space encoder per lead, with LAMAE's cross-lead path (S4-LAMAE) or without it
    (S4-IndS), under LAMAE's masked objective."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, n_vocab, stride = cfg.dim, len(STANDARD_LEADS), cfg.cpc_stride
        self.name = "S4-LAMAE" if cfg.aggregator == "latent" else "S4-IndS"
        self.n_frames = cfg.n_samples // stride
        # frames of one lead: its samples (zero where unseen) and whether each was seen
        self.frames = nn.Sequential(nn.Conv1d(2, d, kernel_size=stride, stride=stride), nn.GELU(),
                                    nn.Conv1d(d, d, 1))
        self.lead_embed = nn.Embedding(n_vocab, d)
        self.encoder = S4LeadEncoder(cfg, self.n_frames, cfg.aggregator == "latent", n_vocab)
        self.norm = nn.LayerNorm(d)
        self.readout = RouterReadout(cfg.readout) if cfg.aggregator == "latent" else None
        self.lead_field = (LeadField(n_vocab, cfg.lead_field, cfg.patch_size, d)
                           if cfg.lead_field and cfg.aggregator == "latent" else None)
        self.to_decoder = nn.Linear(d, cfg.decoder_dim)
        # with routers, the decoder of every lead also reads the latents of each frame (their mean
        # over the K latents), as LAMAE's decoder reads the latents of its position
        self.latent_to_decoder = nn.Linear(d, cfg.decoder_dim) if cfg.aggregator == "latent" else None
        self.decoder = nn.ModuleList(S4Block(cfg.decoder_dim, cfg.s4_state, cfg.mlp_ratio, bidirectional=True)
                                     for _ in range(cfg.decoder_depth))
        self.decoder_norm = nn.LayerNorm(cfg.decoder_dim)
        self.head = nn.Linear(cfg.decoder_dim, stride)   # a frame's samples of its lead
        # the contrastive term's prediction of a masked frame's front-end encoding (nce_weight)
        self.nce_head = nn.Linear(d, d) if cfg.nce_weight else None
        nn.init.normal_(self.lead_embed.weight, std=0.02)

    # ------------------------------------------------------------------ parts
    def _sources(self, x, leads, visible):
        """The lead field's sources (B, N, K, P) from the patches ``visible`` (B, L, N), or None."""
        if self.lead_field is None:
            return None
        return self.lead_field.sources(self.patchify(x), leads, visible.bool())

    def frame_features(self, x, seen) -> torch.Tensor:
        """Each lead's frames (B, L, F, D) through the front end: x (B, L, T) zero where ``seen``
        (B, L, T) is off, and ``seen`` itself as a second channel."""
        b, n_leads, _ = x.shape
        seen = seen.to(x.dtype)
        frames = self.frames(torch.stack([x * seen, seen], dim=2).flatten(0, 1))       # (B*L, D, F)
        return frames.transpose(1, 2).reshape(b, n_leads, self.n_frames, -1)

    def encode(self, x, leads, present, seen, intervene=None, sources=None) -> Encoded:
        """x (B, L, T); seen (B, L, T) the samples the encoder may read; present (B, L) the
        leads the routers read."""
        tokens = self.frame_features(x, seen) + self.lead_embed(leads)[:, :, None]
        field = None
        if sources is not None:  # per patch -> every frame of the patch
            field = self.lead_field.latent(sources).repeat_interleave(self.cfg.patch_size // self.cfg.cpc_stride, dim=1)
        enc = self.encoder(tokens, present, intervene=intervene, leads=leads, field=field)
        enc.tokens = self.norm(enc.tokens)
        return enc

    def decode(self, tokens, latents=None, intervene=None) -> torch.Tensor:
        """(B, L, F, D) tokens and (B, F, K, D) latents -> every lead's samples as patches
        (B, L, N, patch_size)."""
        b, n_leads, n_frames, _ = tokens.shape
        h = self.to_decoder(tokens)
        if latents is not None:
            h = h + self.latent_to_decoder(intervene_latents(latents, intervene).mean(dim=2))[:, None]
        h = h.flatten(0, 1)
        for blk in self.decoder:
            h = blk(h)
        samples = self.head(self.decoder_norm(h)).reshape(b, n_leads, n_frames * self.cfg.cpc_stride)
        return self.patchify(samples)  # frames tile the patches (LamaeConfig checks it)

    def _pool(self, enc: Encoded, present, pooling: str = "latent"):
        """(pooled (B, D), lead weights (B, L)): the router latents' mean, or the mean over the
        present leads of each lead's mean over frames (uniform weights)."""
        if self.readout is not None and pooling == "latent":
            agg = self.readout(enc, present)
            return agg.pooled, agg.lead_weights
        return mean_of_leads(enc.tokens.mean(dim=2, keepdim=True), present)

    # ------------------------------------------------------------------ API
    def forward(self, x, leads, present=None, mask_ratio: float | None = None, generator=None,
                align_scale: float = 1.0, noise=None, drop=None, intervene: str | None = None):
        """Pretraining step, as ``Lamae.forward``: ``mask_ratio`` of each input lead's patches are
        blanked, leads ``drop`` hides are no input and every one of their patches is a target;
        ``intervene`` ("zero" / "shuffle") replaces the router latents every token reads.
        ``pred`` (B, L, n_patches, patch_size) is in the units of ``x``."""
        if intervene is not None and self.readout is None:
            raise ValueError(f"{self.name} has no latents to intervene on")
        leads, targets = self._check(x, leads, present)
        present, drop = self.hide_leads(targets, drop)
        scale = self.input_scale(x, present)
        x = x / scale
        x_in = x * present[..., None] if drop is not None else x
        ratio = self.cfg.mask_ratio if mask_ratio is None else mask_ratio
        _, mask, _ = self.mask(x_in, leads, ratio, generator, noise)                 # (B, L, N), 1 = masked
        visible = present[..., None] & (mask == 0)
        sources = self._sources(x_in, leads, visible)
        seen = visible.repeat_interleave(self.cfg.patch_size, dim=2)
        enc = self.encode(x_in, leads, present, seen, intervene, sources)
        pred = self.decode(enc.tokens, enc.latents, intervene)
        if sources is not None:  # the decoder corrects the lead field's linear estimate, as in LAMAE
            pred = pred + self.lead_field.estimate(intervene_latents(sources, intervene), leads).to(pred.dtype)
        if drop is not None:
            mask = torch.where(drop[..., None], torch.ones_like(mask), mask)
        recon = self.reconstruction_loss(x, pred, mask, targets)
        pooled, weights = self._pool(enc, present)
        out = {"loss": recon, "reconstruction": recon, "pred": pred * scale[..., None], "mask": mask,
               "pooled": pooled, "lead_weights": weights, "decoded": None}
        if self.nce_head is not None:
            out["nce"] = self.contrastive_term(x, targets, mask, enc.tokens)
            out["loss"] = recon + self.cfg.nce_weight * out["nce"]
        return out

    def contrastive_term(self, x, targets, mask, tokens) -> torch.Tensor:
        """``masked_info_nce`` over the masked frames of every target lead (those lead dropout hid
        included): the encoding at the frame against the front end's frames of the unmasked lead."""
        clean = self.frame_features(x, targets[..., None].expand_as(x))
        scored = mask.bool().repeat_interleave(self.cfg.patch_size // self.cfg.cpc_stride, dim=2) & targets[..., None]
        return masked_info_nce(self.nce_head(tokens).flatten(0, 1), clean.flatten(0, 1), scored.flatten(0, 1),
                               targets.flatten())

    def features(self, x, leads, present=None, pooling: str = "latent"):
        """One vector per ECG from the unmasked input: the router latents' mean (S4-LAMAE) or the
        mean of the leads' last layer (S4-IndS; ``pooling="leads"`` gives it for S4-LAMAE too)."""
        if pooling not in ("latent", "leads"):
            raise ValueError(f"pooling must be 'latent' or 'leads', got {pooling!r}")
        leads, present = self._check(x, leads, present)
        x = x / self.input_scale(x, present)
        visible = present[..., None].expand(-1, -1, self.cfg.n_patches)
        sources = self._sources(x, leads, visible)
        seen = present[..., None].expand(-1, -1, x.shape[2])
        enc = self.encode(x, leads, present, seen, sources=sources)
        return self._pool(enc, present, pooling)

    @torch.no_grad()
    def embed(self, x, leads, present=None, pooling: str = "latent"):
        """(embedding (B, D), lead weights (B, L)) from the unmasked input."""
        return self.features(x, leads, present, pooling)

    def num_parameters(self, part: str = "all") -> int:
        if part == "encoder":
            mods = [self.frames, self.lead_embed, self.encoder, self.norm]
            return sum(p.numel() for m in mods for p in m.parameters())
        return sum(p.numel() for p in self.parameters())
