"""LAMAE: the latent attention masked autoencoder for multi-lead ECG.

Read ``Lamae.forward`` first; it is the table of contents:

    encoded, mask, ids_restore = self.encode(x, leads, present, mask_ratio)  # per-lead encoder
    latents, pooled, weights  = self.aggregate(encoded, present)             # latent attention
    pred                      = self.decode(encoded, ids_restore, latents)   # conditioned decoder
    loss                      = masked MSE on masked patches of present leads

Each lead is cut into patches and encoded by one transformer shared by all leads, on that
lead's visible tokens only. K learned latents cross-attend over the set of per-lead
representations (no order over leads, so the result is permutation invariant; the attention
weights are the adaptive lead weights). The decoder reconstructs each lead's masked patches
with the latents prepended to its sequence, so information from the other leads is what
makes the task solvable: the cross-lead structure supervises the encoder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError
from ..leads import STANDARD_LEADS, lead_indices
from .layers import Block, CrossAttention, Mlp, sincos_1d


@dataclass
class LamaeConfig:
    fs: float = 100.0                 # native rate: inputs are resampled to it
    window_s: float = 10.0
    patch_size: int = 25
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    n_latents: int = 4
    latent_heads: int = 4
    latent_depth: int = 0             # latent self-attention blocks after the cross-attention
    latent_mode: str = "pma"          # "pma": latents query leads; "nvembed": leads query latents
    latent_input: str = "cls"         # "cls": one token per lead; "tokens": every visible token
    # The model family. LAMAE is the default; the paper's baselines are other settings:
    #   aggregator   "latent": latent attention across leads, decoder conditioned on the latents
    #                "mean":   mean of per-lead CLS, decoder conditioned on it (ablation of LAMAE)
    #                "none":   no cross-lead path at all (IndS / IndP / MVMAE)
    #   token_mixing "per_lead": the encoder sees one lead at a time
    #                "joint":    one sequence over all leads' tokens (ST-MEM design; use aggregator "none")
    #   private_leads  separate encoder blocks per lead (IndP)
    #   align          alignment loss between pooled, L2-normalised lead embeddings (MVMAE)
    aggregator: str = "latent"
    token_mixing: str = "per_lead"
    private_leads: bool = False
    align: str = "none"               # "none" | "mse" | "cosine" | "infonce"
    align_weight: float = 1.0         # reached at the end of training (sigmoid-annealed from 0)
    align_temperature: float = 0.1    # InfoNCE
    decoder_dim: int = 64
    decoder_depth: int = 1
    decoder_heads: int = 4
    mask_ratio: float = 0.75
    norm_target: bool = False         # per-patch normalised reconstruction targets

    def __post_init__(self):
        if self.latent_mode not in ("pma", "nvembed"):
            raise ValueError(f"latent_mode must be 'pma' or 'nvembed', got {self.latent_mode!r}")
        if self.latent_input not in ("cls", "tokens"):
            raise ValueError(f"latent_input must be 'cls' or 'tokens', got {self.latent_input!r}")
        if self.n_samples % self.patch_size:
            raise ValueError(
                f"window of {self.n_samples} samples is not a multiple of patch_size {self.patch_size}"
            )
        for name, value, allowed in (("aggregator", self.aggregator, ("latent", "mean", "none")),
                                     ("token_mixing", self.token_mixing, ("per_lead", "joint")),
                                     ("align", self.align, ("none", "mse", "cosine", "infonce"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.window_s))

    @property
    def n_patches(self) -> int:
        return self.n_samples // self.patch_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LamaeConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model settings: {sorted(unknown)}")
        return cls(**d)


# Named sizes. "base" has a ViT-B encoder (85M parameters), the paper's ~86M model.
SIZES: dict[str, dict] = {
    "tiny": dict(dim=64, depth=2, heads=4, n_latents=4, latent_heads=4,
                 decoder_dim=64, decoder_depth=1, decoder_heads=4),
    "small": dict(dim=384, depth=6, heads=6, n_latents=8, latent_heads=6,
                  decoder_dim=256, decoder_depth=2, decoder_heads=8),
    "base": dict(dim=768, depth=12, heads=12, n_latents=16, latent_heads=12,
                 decoder_dim=384, decoder_depth=4, decoder_heads=12),
}


def build_model(size: str = "tiny", **overrides) -> "Lamae":
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {sorted(SIZES)}")
    return Lamae(LamaeConfig(**{**SIZES[size], **overrides}))


def random_masking(b: int, n_leads: int, n: int, ratio: float, device, generator=None, noise=None):
    """Independent random mask per lead and per sample.

    Returns ``keep`` (B, L, n_keep) indices of visible patches, ``mask`` (B, L, N) with 1 for
    masked patches, and ``ids_restore`` (B, L, N) to undo the shuffle.
    """
    n_keep = max(1, int(round(n * (1 - ratio))))
    if noise is None:
        noise = torch.rand(b, n_leads, n, device=device, generator=generator)
    ids_shuffle = noise.argsort(dim=-1)
    ids_restore = ids_shuffle.argsort(dim=-1)
    mask = torch.ones(b, n_leads, n, device=device)
    mask[..., :n_keep] = 0
    mask = mask.gather(-1, ids_restore)
    return ids_shuffle[..., :n_keep], mask, ids_restore


class LatentLeadAttention(nn.Module):
    """K learned latents attend over the set of lead representations.

    ``pma`` (Set Transformer's pooling by multi-head attention, Perceiver-style): latents are
    queries, leads are keys/values; the weights, averaged over heads and latents, are the
    lead weights. ``nvembed`` (NV-Embed): leads are queries, latents keys/values, then a
    mean over leads. Both are invariant to the order of the leads.
    """

    def __init__(self, cfg: LamaeConfig):
        super().__init__()
        d = cfg.dim
        self.mode = cfg.latent_mode
        self.latents = nn.Parameter(torch.randn(cfg.n_latents, d) * 0.02)
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.cross = CrossAttention(d, cfg.latent_heads)
        self.norm_mlp = nn.LayerNorm(d)
        self.mlp = Mlp(d, cfg.mlp_ratio)
        self.blocks = nn.ModuleList(Block(d, cfg.latent_heads, cfg.mlp_ratio) for _ in range(cfg.latent_depth))
        self.norm = nn.LayerNorm(d)

    def forward(self, items, attend, item_lead):
        """items (B, S, D); attend (B, S) bool; item_lead (S,) lead slot of each item.

        Returns latents (B, K, D), pooled (B, D) and lead weights (B, n_lead_slots).
        """
        b = items.shape[0]
        n_slots = int(item_lead.max()) + 1
        if self.mode == "pma":
            lat = self.latents.expand(b, -1, -1)
            out, w = self.cross(self.norm_q(lat), self.norm_kv(items), attend)
            lat = lat + out
            lat = lat + self.mlp(self.norm_mlp(lat))
            for blk in self.blocks:
                lat = blk(lat)
            lat = self.norm(lat)
            item_w = w.mean(dim=(1, 2))  # (B, S), sums to 1 over present items
            lead_w = torch.zeros(b, n_slots, device=items.device, dtype=item_w.dtype)
            lead_w.index_add_(1, item_lead, item_w)
            return lat, lat.mean(dim=1), lead_w
        lat = self.latents.expand(b, -1, -1)
        out, _ = self.cross(self.norm_q(items), self.norm_kv(lat), None)
        x = items + out
        x = x + self.mlp(self.norm_mlp(x))
        x = self.norm(x)
        weight = attend.float()
        pooled = (x * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1)
        lead_w = torch.zeros(b, n_slots, device=items.device)
        lead_w.index_add_(1, item_lead, weight / weight.sum(1, keepdim=True).clamp_min(1))
        return pooled[:, None, :], pooled, lead_w


class Lamae(nn.Module):
    def __init__(self, cfg: LamaeConfig):
        super().__init__()
        self.cfg = cfg
        d, dd, p = cfg.dim, cfg.decoder_dim, cfg.patch_size
        n_vocab = len(STANDARD_LEADS)
        # Encoder
        self.patch_embed = nn.Linear(p, d)
        self.register_buffer("pos", sincos_1d(cfg.n_patches, d), persistent=False)
        self.lead_embed = nn.Embedding(n_vocab, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        n_stacks = n_vocab if cfg.private_leads else 1
        self.encoders = nn.ModuleList(
            nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)) for _ in range(n_stacks)
        )
        self.norm = nn.LayerNorm(d)
        # Latent attention across leads
        self.latent = LatentLeadAttention(cfg) if cfg.aggregator == "latent" else None
        # Decoder (shared by all leads), conditioned on the latents
        self.decoder_embed = nn.Linear(d, dd)
        self.latent_to_decoder = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer("dec_pos", sincos_1d(cfg.n_patches, dd), persistent=False)
        self.dec_lead_embed = nn.Embedding(n_vocab, dd)
        self.dec_blocks = nn.ModuleList(Block(dd, cfg.decoder_heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth))
        self.dec_norm = nn.LayerNorm(dd)
        self.dec_pred = nn.Linear(dd, p)
        self.apply(self._init)
        # As in MAE: the patch projection starts at xavier scale so a patch's content is not
        # drowned by the (unit-amplitude) sine-cosine positions; learning stalls otherwise.
        nn.init.xavier_uniform_(self.patch_embed.weight)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ inputs
    def _check(self, x, leads, present):
        if not torch.is_tensor(x) or x.ndim != 3:
            raise ShapeError(f"x must be a tensor (batch, leads, samples), got {getattr(x, 'shape', type(x))}")
        b, n_leads, t = x.shape
        if t != self.cfg.n_samples:
            raise ShapeError(
                f"x has {t} samples per lead; this model takes {self.cfg.n_samples} "
                f"({self.cfg.window_s:g} s at {self.cfg.fs:g} Hz); preprocess the input first"
            )
        if isinstance(leads, (list, tuple)):
            leads = torch.tensor(lead_indices(leads), device=x.device)
        if leads.ndim == 1:
            leads = leads[None, :].expand(b, -1)
        if leads.shape != (b, n_leads):
            raise ShapeError(f"leads must give one lead per row of x ({n_leads}), got shape {tuple(leads.shape)}")
        if present is None:
            present = torch.ones(b, n_leads, dtype=torch.bool, device=x.device)
        if present.shape != (b, n_leads):
            raise ShapeError(f"present must be (batch, leads) = {(b, n_leads)}, got {tuple(present.shape)}")
        if not bool(present.any(dim=1).all()):
            raise ShapeError("every ECG in the batch needs at least one present lead")
        return leads.long(), present.bool()

    def patchify(self, x):
        b, n_leads, _ = x.shape
        return x.view(b, n_leads, self.cfg.n_patches, self.cfg.patch_size)

    # ------------------------------------------------------------------ parts
    def encode(self, x, leads, present, mask_ratio: float, generator=None, noise=None):
        """Encode each lead's visible patches with the shared encoder.

        Returns encoded (B, L, 1 + n_keep, D) with the lead's CLS first, mask (B, L, N) and
        ids_restore (B, L, N).
        """
        b, n_leads, _ = x.shape
        cfg = self.cfg
        lead_e = self.lead_embed(leads)  # (B, L, D)
        tok = self.patch_embed(self.patchify(x)) + self.pos + lead_e[:, :, None, :]
        keep, mask, ids_restore = random_masking(b, n_leads, cfg.n_patches, mask_ratio, x.device, generator, noise)
        vis = tok.gather(2, keep[..., None].expand(-1, -1, -1, cfg.dim))
        cls = self.cls_token.expand(b, n_leads, -1)[:, :, None, :] + lead_e[:, :, None, :]
        seq = torch.cat([cls, vis], dim=2)
        return self.norm(self._run_encoder(seq, leads, present)), mask, ids_restore

    def _run_encoder(self, seq, leads, present):
        """seq (B, L, S, D) -> (B, L, S, D) through shared, private or joint blocks."""
        b, n_leads, s, d = seq.shape
        if self.cfg.token_mixing == "joint":
            attend = present[:, :, None].expand(-1, -1, s).reshape(b, n_leads * s)
            x = seq.reshape(b, n_leads * s, d)
            for blk in self.encoders[0]:
                x = blk(x, attend)
            return x.view(b, n_leads, s, d)
        if not self.cfg.private_leads:
            x = seq.flatten(0, 1)
            for blk in self.encoders[0]:
                x = blk(x)
            return x.view(b, n_leads, s, d)
        out = torch.empty_like(seq)
        for lead in leads.unique().tolist():
            sel = leads == lead
            x = seq[sel]
            for blk in self.encoders[lead]:
                x = blk(x)
            out[sel] = x
        return out

    def aggregate(self, encoded, present):
        """Latent attention across leads -> latents (B, K, D), pooled (B, D), lead weights (B, L)."""
        b, n_leads, s, d = encoded.shape
        if self.latent is None:
            w = present.float() / present.float().sum(1, keepdim=True)
            pooled = (encoded[:, :, 0] * w[..., None]).sum(1)
            return (pooled[:, None] if self.cfg.aggregator == "mean" else None), pooled, w
        if self.cfg.latent_input == "cls":
            items, attend = encoded[:, :, 0], present
            item_lead = torch.arange(n_leads, device=encoded.device)
        else:
            items = encoded.reshape(b, n_leads * s, d)
            attend = present[:, :, None].expand(-1, -1, s).reshape(b, n_leads * s)
            item_lead = torch.arange(n_leads, device=encoded.device).repeat_interleave(s)
        return self.latent(items, attend, item_lead)

    def decode(self, encoded, leads, present, ids_restore, latents, hidden=None):
        """Predict every patch of every lead (B, L, N, patch_size).

        ``hidden`` (B, L) bool marks leads the encoder did not see (dropped or missing): all
        their tokens are mask tokens, so they are predicted from the latents alone.
        """
        b, n_leads, s, _ = encoded.shape
        n, dd = self.cfg.n_patches, self.cfg.decoder_dim
        y = self.decoder_embed(encoded)
        if hidden is not None:
            y = torch.where(hidden[:, :, None, None], self.mask_token.to(y.dtype), y)
        cls, vis = y[:, :, :1], y[:, :, 1:]
        fill = self.mask_token.expand(b * n_leads, n - vis.shape[2], dd).view(b, n_leads, -1, dd)
        full = torch.cat([vis, fill], dim=2).gather(2, ids_restore[..., None].expand(-1, -1, -1, dd))
        full = full + self.dec_pos + self.dec_lead_embed(leads)[:, :, None, :]
        parts = [cls, full]
        n_prefix = 1
        if latents is not None:
            cond = self.latent_to_decoder(latents)[:, None].expand(-1, n_leads, -1, -1)
            parts.insert(0, cond)
            n_prefix += cond.shape[2]
        seq = torch.cat(parts, dim=2)
        width = seq.shape[2]
        if self.cfg.token_mixing == "joint":
            seq = seq.reshape(b, n_leads * width, dd)
            attend = present[:, :, None].expand(-1, -1, width).reshape(b, n_leads * width)
        else:
            seq, attend = seq.flatten(0, 1), None
        for blk in self.dec_blocks:
            seq = blk(seq, attend)
        seq = self.dec_norm(seq).view(b, n_leads, width, dd)[:, :, n_prefix:]
        return self.dec_pred(seq)

    def reconstruction_loss(self, x, pred, mask, present):
        """MSE on masked patches of present leads only (averaged over those patches)."""
        target = self.patchify(x)
        if self.cfg.norm_target:
            mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mu) / (var + 1e-6).sqrt()
        per_patch = (pred.float() - target.float()).pow(2).mean(-1)
        weight = mask * present[..., None].float()
        return (per_patch * weight).sum() / weight.sum().clamp_min(1.0)

    def alignment_loss(self, encoded, present):
        """MVMAE's alignment between the L2-normalised per-lead embeddings of each ECG."""
        z = F.normalize(encoded[:, :, 0].float(), dim=-1)  # (B, L, D)
        pair = present[:, :, None] & present[:, None, :]
        pair = pair & ~torch.eye(present.shape[1], dtype=torch.bool, device=z.device)
        if self.cfg.align in ("mse", "cosine"):
            cos = z @ z.transpose(1, 2)
            per_pair = 2 - 2 * cos if self.cfg.align == "mse" else -cos
            return (per_pair * pair).sum() / pair.sum().clamp_min(1)
        # InfoNCE across the batch: lead i of ECG b should match lead j of ECG b, not of others.
        b, n_leads, _ = z.shape
        total, count = z.new_zeros(()), 0
        for i in range(n_leads):
            for j in range(n_leads):
                ok = pair[:, i, j]
                if i == j or ok.sum() < 2:
                    continue
                zi, zj = z[ok, i], z[ok, j]
                logits = zi @ zj.T / self.cfg.align_temperature
                total = total + F.cross_entropy(logits, torch.arange(len(zi), device=z.device))
                count += 1
        return total / max(count, 1)

    # ------------------------------------------------------------------ API
    def forward(self, x, leads, present=None, mask_ratio: float | None = None, generator=None,
                align_scale: float = 1.0, noise=None, drop=None):
        """Pretraining step. x (B, L, T) preprocessed; leads: names or (B, L)/(L,) lead indices.

        ``align_scale`` multiplies ``align_weight`` (the trainer anneals it from 0 to 1).
        ``noise`` (B, L, n_patches) replaces the random draw that picks the masked patches.
        ``drop`` (B, L) bool hides present leads from the encoder entirely (lead dropout, or
        leads to reconstruct): they are zeroed, left out of the latent attention, and every
        one of their patches is a reconstruction target.
        """
        leads, present = self._check(x, leads, present)
        targets = present
        if drop is not None:
            drop = drop.bool() & present
            present = present & ~drop
            if not bool(present.any(dim=1).all()):
                raise ShapeError("lead dropout left an ECG without any input lead")
            x_in = x * present[..., None]
        else:
            x_in = x
        ratio = self.cfg.mask_ratio if mask_ratio is None else mask_ratio
        encoded, mask, ids_restore = self.encode(x_in, leads, present, ratio, generator, noise)
        latents, pooled, lead_weights = self.aggregate(encoded, present)
        pred = self.decode(encoded, leads, targets, ids_restore, latents, hidden=drop)
        if drop is not None:
            mask = torch.where(drop[..., None], torch.ones_like(mask), mask)
        recon = self.reconstruction_loss(x, pred, mask, targets)
        out = {"loss": recon, "reconstruction": recon, "pred": pred, "mask": mask, "pooled": pooled,
               "lead_weights": lead_weights}
        if self.cfg.align != "none":
            out["align"] = self.alignment_loss(encoded, present)
            out["loss"] = recon + self.cfg.align_weight * align_scale * out["align"]
        return out

    def features(self, x, leads, present=None, pooling: str = "latent"):
        """One vector per ECG from the unmasked input (differentiable; see ``embed``)."""
        leads, present = self._check(x, leads, present)
        encoded, _, _ = self.encode(x, leads, present, 0.0)
        if pooling == "leads":
            w = present.float() / present.float().sum(1, keepdim=True)
            return (encoded[:, :, 0] * w[..., None]).sum(1), w
        if pooling != "latent":
            raise ValueError(f"pooling must be 'latent' or 'leads', got {pooling!r}")
        _, pooled, weights = self.aggregate(encoded, present)
        return pooled, weights

    @torch.no_grad()
    def embed(self, x, leads, present=None, pooling: str = "latent"):
        """One vector per ECG from the unmasked input.

        ``pooling="latent"`` is LAMAE's representation (the pooled latent-attention output);
        ``"leads"`` averages the per-lead CLS tokens without the aggregator (LAMAE_E).
        Returns (embedding (B, D), lead weights (B, L)).
        """
        return self.features(x, leads, present, pooling)

    def num_parameters(self, part: str = "all") -> int:
        if part == "encoder":
            mods = [self.patch_embed, self.lead_embed, self.encoders, self.norm]
            return sum(p.numel() for m in mods for p in m.parameters()) + self.cls_token.numel()
        return sum(p.numel() for p in self.parameters())
