"""LAMAE: the latent attention masked autoencoder for multi-lead ECG.

Read ``Lamae.forward`` first; it is the table of contents:

    keep, mask, ids_restore = self.mask(...)                       # independent per-lead masks
    enc  = self.encoder(tokens of visible patches, ...)             # per-lead blocks + lead routers
    agg  = self.aggregator(enc, present)                            # pooled embedding, lead weights
    pred = self.decoder(enc.tokens, ..., condition=agg.condition)   # reads the latents per position
    loss = masked MSE on masked patches of present leads

Each lead is cut into patches; one transformer shared by all leads runs along each lead's
visible patches. After its blocks, at every patch position, K learned latents gather from
the tokens of all leads visible at that position and every token reads them back (the lead
router). The decoder rebuilds each lead's masked patches with every token reading the latents
of its position, so a masked patch of one lead is predicted from what the other leads show at
the same time: the cross-lead structure supervises the latents. Leads enter only through
their lead embedding and attention over a set, so the model is invariant to lead order, and
its cost is linear in the number of leads.

The paper's baselines and the earlier design are other settings of the same parts
(``encoder``, ``aggregator``; see ``family.py`` for the named members).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..leads import STANDARD_LEADS
from .aggregators import build_aggregator, mean_of_leads
from .decoder import LeadDecoder
from .encoders import build_encoder, intervene_latents
from .layers import ConvStem, sincos_1d, take_rows
from .leadfield import LeadField
from .config import MODEL_FORMAT, SIZES, LamaeConfig
from .inputs import EcgInputs, n_decoded, n_visible, random_masking, share_limb_noise

# what code written before config.py and inputs.py existed imports from here
__all__ = ["Lamae", "LamaeConfig", "MODEL_FORMAT", "SIZES", "EcgInputs", "migrate_v1_state", "n_decoded",
           "n_visible", "random_masking", "share_limb_noise"]


_V1_NAMES = {"decoder_embed.": "decoder.embed.", "latent_to_decoder.": "decoder.cond.",
             "mask_token": "decoder.mask_token", "dec_lead_embed.": "decoder.lead_embed.",
             "dec_blocks.": "decoder.blocks.", "dec_norm.": "decoder.norm.", "dec_pred.": "decoder.pred.",
             "latent.": "aggregator."}


def migrate_v1_state(cfg: LamaeConfig, state: dict) -> dict:
    """lamae 0.1 weights -> today's names. 0.1 also built parts it never used (a decoder
    projection without an aggregator, unused encoder stacks, latent blocks in nvembed mode):
    those weights are dropped."""
    out = {}
    for key, value in state.items():
        new = key
        if key.startswith("encoders."):
            _, stack, rest = key.split(".", 2)
            if cfg.encoder == "private":
                new = f"encoder.stacks.{stack}.{rest}"
            elif stack == "0":
                new = f"encoder.blocks.{rest}"
            else:
                continue
        for old, repl in _V1_NAMES.items():
            if key.startswith(old):
                new = repl + key[len(old):]
                break
        if new.startswith("decoder.cond.") and cfg.aggregator == "none":
            continue
        if new.startswith("aggregator.blocks.") and cfg.latent_mode == "nvembed":
            continue
        out[new] = value
    return out


class Lamae(EcgInputs, nn.Module):
    def __init__(self, cfg: LamaeConfig):
        super().__init__()
        self.cfg = cfg
        d, n_vocab = cfg.dim, len(STANDARD_LEADS)
        # Tokens: patch embedding + time position + lead identity; one CLS per lead
        self.patch_embed = nn.Linear(cfg.patch_size, d) if cfg.stem == "linear" else None
        self.stem = ConvStem(cfg.patch_size, cfg.stem_frame, d) if cfg.stem == "conv" else None
        self.register_buffer("pos", sincos_1d(cfg.n_patches, d), persistent=False)
        self.lead_embed = nn.Embedding(n_vocab, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.encoder = build_encoder(cfg, n_vocab)
        self.norm = nn.LayerNorm(d)
        self.aggregator = build_aggregator(cfg)
        condition = ("read" if cfg.encoder == "router" else
                     "none" if cfg.aggregator == "none" else "prefix")
        mixing = "joint" if cfg.encoder == "joint" else "per_lead"
        self.decoder = LeadDecoder(cfg, n_vocab, condition, mixing)
        self.apply(self._init)
        self.lead_field = LeadField(n_vocab, cfg.lead_field, cfg.patch_size, d) if cfg.lead_field else None
        # As in MAE: the patch projection starts at xavier scale so a patch's content is not
        # drowned by the (unit-amplitude) sine-cosine positions; learning stalls otherwise.
        if self.patch_embed is not None:
            nn.init.xavier_uniform_(self.patch_embed.weight)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.decoder.mask_token, std=0.02)

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

    # ------------------------------------------------------------------ parts
    def field_sources(self, x, leads, visible):
        """The lead field's sources (B, N, K, P) from the patches ``visible`` (B, L, N), or None."""
        if self.lead_field is None:
            return None
        return self.lead_field.sources(self.patchify(x), leads, visible.bool())

    def embed_patches(self, x, present, keep):
        """The tokens (B, L, n_keep, D) of the patches ``keep`` (B, L, n_keep) of each lead: only
        those are embedded (a quarter of them at 75% masking); the conv stem runs along the whole
        lead, reading only the kept patches of present leads."""
        if self.stem is None:
            return self.patch_embed(take_rows(self.patchify(x), keep))
        b, n_leads, _ = x.shape
        seen = torch.zeros(b, n_leads, self.cfg.n_patches, dtype=x.dtype, device=x.device)
        seen = seen.scatter(2, keep, 1.0) * present[..., None].to(x.dtype)
        tokens = self.stem(x, seen.repeat_interleave(self.cfg.patch_size, dim=2))
        return take_rows(tokens, keep)

    def encode(self, x, leads, present, keep, intervene=None, sources=None):
        """Encode each lead's visible patches (``keep`` (B, L, n_keep)); the CLS comes first.
        ``sources`` (B, N, K, P): the lead field's, added to the router latents of their position."""
        b, n_leads, _ = x.shape
        lead_e = self.lead_embed(leads)  # (B, L, D)
        vis = self.embed_patches(x, present, keep) + self.pos[keep] + lead_e[:, :, None, :]
        cls = self.cls_token.expand(b, n_leads, -1)[:, :, None, :] + lead_e[:, :, None, :]
        seq = torch.cat([cls, vis], dim=2)
        pos = torch.cat([keep.new_zeros(b, n_leads, 1), keep + 1], dim=2)  # grid position; 0 = CLS
        field = None if sources is None else self.lead_field.latent(sources)
        enc = self.encoder(seq, pos, present, intervene=intervene, leads=leads, field=field)
        enc.tokens = self.norm(enc.tokens)
        return enc

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
                align_scale: float = 1.0, noise=None, drop=None, intervene: str | None = None):
        """Pretraining step. x (B, L, T) preprocessed; leads: names or (B, L)/(L,) lead indices.

        ``align_scale`` multiplies ``align_weight`` (the trainer anneals it from 0 to 1).
        ``noise`` (B, L, n_patches) replaces the random draw that picks the masked patches.
        ``drop`` (B, L) bool hides present leads from the encoder entirely (lead dropout, or
        leads to reconstruct): they are zeroed, left out of the cross-lead attention, and every
        one of their patches is a reconstruction target.
        ``intervene`` ("zero" or "shuffle") replaces the latents every reader sees by zeros or
        by another ECG's: the ablation that shows what crosses between leads.
        ``pred`` is returned in the units of ``x``, (B, L, N, patch_size); in training with
        ``decode_ratio`` < 1 only the decoded positions, (B, L, S, patch_size), whose patch
        indices are ``decoded`` (B, L, S) (None when every patch is decoded).
        """
        leads, present = self._check(x, leads, present)
        targets = present
        present, drop = self.hide_leads(targets, drop)
        scale = self.input_scale(x, present)
        x = x / scale
        x_in = x * present[..., None] if drop is not None else x
        ratio = self.cfg.mask_ratio if mask_ratio is None else mask_ratio
        keep, mask, ids_restore = self.mask(x_in, leads, ratio, generator, noise)
        sources = self.field_sources(x_in, leads, present[..., None] & (mask == 0))
        enc = self.encode(x_in, leads, present, keep, intervene, sources)
        agg = self.aggregator(enc, present)
        rows = self.decoded_positions(ids_restore, ratio) if self.partial_decoding else None
        pred = self.decoder(enc.tokens, leads, targets, ids_restore, agg.condition, hidden=drop, intervene=intervene,
                            rows=rows)
        if sources is not None:  # the decoder corrects the lead field's linear estimate
            est = self.lead_field.estimate(intervene_latents(sources, intervene), leads)
            pred = pred + (est if rows is None else take_rows(est, rows)).to(pred.dtype)
        if drop is not None:
            mask = torch.where(drop[..., None], torch.ones_like(mask), mask)
        recon = self.reconstruction_loss(x, pred, mask, targets, rows)
        out = {"loss": recon, "reconstruction": recon, "pred": pred * scale[..., None], "mask": mask,
               "pooled": agg.pooled, "lead_weights": agg.lead_weights, "decoded": rows}
        if self.cfg.align != "none":
            out["align"] = self.alignment_loss(enc.tokens, present)
            out["loss"] = recon + self.cfg.align_weight * align_scale * out["align"]
        return out

    def features(self, x, leads, present=None, pooling: str = "latent"):
        """One vector per ECG from the unmasked input (differentiable; see ``embed``)."""
        if pooling not in ("latent", "leads"):
            raise ValueError(f"pooling must be 'latent' or 'leads', got {pooling!r}")
        leads, present = self._check(x, leads, present)
        x = x / self.input_scale(x, present)
        keep = torch.arange(self.cfg.n_patches, device=x.device).expand(*x.shape[:2], -1)
        sources = self.field_sources(x, leads, present[..., None].expand(-1, -1, self.cfg.n_patches))
        enc = self.encode(x, leads, present, keep, sources=sources)
        if pooling == "leads":
            return mean_of_leads(enc.tokens, present)
        agg = self.aggregator(enc, present)
        return agg.pooled, agg.lead_weights

    @torch.no_grad()
    def embed(self, x, leads, present=None, pooling: str = "latent"):
        """One vector per ECG from the unmasked input.

        ``pooling="latent"`` is the model's own representation (for LAMAE, the mean of its
        router latents); ``"leads"`` averages the per-lead CLS tokens (LAMAE_E).
        Returns (embedding (B, D), lead weights (B, L)).
        """
        return self.features(x, leads, present, pooling)

    def num_parameters(self, part: str = "all") -> int:
        if part == "encoder":
            mods = [m for m in (self.patch_embed, self.stem) if m is not None] + [self.lead_embed, self.encoder, self.norm]
            return sum(p.numel() for m in mods for p in m.parameters()) + self.cls_token.numel()
        return sum(p.numel() for p in self.parameters())
