"""The state-space members: CPC (the ECG-CPC recipe) and S4-MAE, one encoder under two objectives.

Both read all leads at once as channels, zero-filled where absent, with a presence channel per
lead, so ``embed`` takes any subset of leads, in any order, as for the other members:

    z = frames(x)          # a strided convolution over all leads (leads as channels, plus a
                           #   presence channel per lead), then per-frame pointwise layers
    c = context(z)         # S4D layers (diagonal state-space kernels, FFT convolution)

CPC (documented, with its sources and the choices made where they leave it open, in
docs/method.md, "CPC"): the context is causal and

    loss = InfoNCE(W_k c_t, z_{t+k}),  k = 1..cpc_steps; negatives: the ECG's other frames and
                                       the same frame of the batch's other ECGs

S4-MAE (method.md, "S4-MAE"): LAMAE's masked objective on the same encoder, made
bidirectional. 75% of each lead's patches are blanked (zeroed, their presence channel 0 for
those samples); a state-space decoder rebuilds every lead's samples from the frames, and the loss
is LAMAE's: the MSE on the masked patches (and every patch of a lead hidden by lead dropout). It
separates the encoder from the objective: CPC and S4-MAE share the encoder, S4-MAE and LAMAE the
objective.

The pooled representation of both is the mean over time of the encoder's final layer.
``Cpc`` and ``S4Mae`` have the interface the trainer, the embedder and the comparison use for
``Lamae`` (``forward`` returning ``loss``/``reconstruction``/``pooled``, ``n_targets``,
``features``, ``embed``, ``num_parameters``); CPC has no decoder, so it reconstructs nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError
from ..leads import STANDARD_LEADS
from .aggregators import uniform_lead_weights
from .inputs import EcgInputs
from .ssm import S4Block


def info_nce_loss(preds: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """CPC's InfoNCE, with negatives from the batch: the other frames of the same ECG and the
    same frame of the other ECGs.

    preds (B, n, K, d): at each frame t, the predictions W_k c_t of frames t + 1 .. t + K;
    z (B, n, d) the frames. For step k and frame t, ECG b's prediction is scored (dot product)
    against every target frame t' of its own ECG and against frame t + k of every other ECG; the
    loss is the cross-entropy of picking its own frame t + k, averaged over k and t (k up to
    n - 1). Both kinds of negative are needed: with the other ECGs alone, anything constant
    over an ECG (its amplitude, which leads it has) identifies the right candidate, and
    pretraining solved the task without learning the signal (PTB-XL: loss 0.15 of a chance
    3.47, probe 0.65 against a random encoder's 0.63); with its own frames alone, nothing
    contrasts one ECG's morphology with another's."""
    b, n, steps, _ = preds.shape
    steps = min(steps, n - 1)
    total = z.new_zeros((), dtype=torch.float32)
    for k in range(1, steps + 1):
        p, target = preds[:, : n - k, k - 1].float(), z[:, k:].float()        # (B, n-k, d) each
        own = torch.bmm(p, target.transpose(1, 2))                             # (B, t, t'): own ECG's frames
        across = torch.einsum("btd,ctd->btc", p, target)                       # (B, t, c): frame t+k of ECG c
        mine = torch.eye(b, dtype=torch.bool, device=z.device)[:, None, :].expand(-1, n - k, -1)
        logits = torch.cat([own, across.masked_fill(mine, float("-inf"))], dim=-1)
        right = torch.arange(n - k, device=z.device).repeat(b)                 # frame t + k of its own ECG
        total = total + F.cross_entropy(logits.reshape(b * (n - k), -1), right)
    return total / steps


class _StateSpace(EcgInputs, nn.Module):
    """The encoder both state-space members share: leads as channels -> frames -> S4D blocks."""

    def __init__(self, cfg, bidirectional: bool):
        super().__init__()
        self.cfg = cfg
        d, n_vocab, stride = cfg.dim, len(STANDARD_LEADS), cfg.cpc_stride
        # frames: one strided convolution (a frame's samples of every lead and its presence
        # channel), then two pointwise layers; frames do not overlap, so z_t sees frame t only
        self.frames = nn.Sequential(nn.Conv1d(2 * n_vocab, d, kernel_size=stride, stride=stride), nn.GELU(),
                                    nn.Conv1d(d, d, 1), nn.GELU(), nn.Conv1d(d, d, 1))
        self.context = nn.ModuleList(S4Block(d, cfg.s4_state, cfg.mlp_ratio, bidirectional)
                                     for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)

    @property
    def n_frames(self) -> int:
        return self.cfg.n_samples // self.cfg.cpc_stride

    def channels(self, x: torch.Tensor, leads: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """(B, L, T) in any lead order -> (B, 24, T'): the twelve standard leads (zero where not
        seen) and whether each was seen, trimmed to whole frames. ``seen`` (B, L) is per lead
        (absent leads), or (B, L, T) per sample (S4-MAE's masked patches)."""
        b = x.shape[0]
        n_vocab = len(STANDARD_LEADS)
        t = self.n_frames * self.cfg.cpc_stride
        # per lead (CPC, embedding): presence is counted once per lead and broadcast over time
        seen = (seen[..., :t] if seen.ndim == 3 else seen[..., None]).to(x.dtype)
        span = seen.shape[-1]
        grid = x.new_zeros(b, n_vocab, t).scatter_add(1, leads[..., None].expand(-1, -1, t), x[..., :t] * seen)
        here = x.new_zeros(b, n_vocab, span).scatter_add(1, leads[..., None].expand(-1, -1, span), seen)
        return torch.cat([grid, here.clamp_max(1.0).expand(-1, -1, t)], dim=1)

    def encode(self, x, leads, seen) -> tuple[torch.Tensor, torch.Tensor]:
        """(frames z (B, T', d), context c (B, T', d))."""
        z = self.frames(self.channels(x, leads, seen)).transpose(1, 2)
        c = z
        for blk in self.context:
            c = blk(c)
        return z, self.norm(c)

    def features(self, x, leads, present=None, pooling: str = "latent"):
        """The mean over time of the encoder's final layer, and uniform weights over the leads
        given (these members have no attention over leads)."""
        if pooling != "latent":
            raise ValueError(f"{self.name} has one readout, pooling 'latent' (the mean over time of its encoder); "
                             f"got {pooling!r}")
        leads, present = self._check(x, leads, present)
        x = x / self.input_scale(x, present)
        _, c = self.encode(x, leads, present)
        return c.mean(dim=1), uniform_lead_weights(present)

    @torch.no_grad()
    def embed(self, x, leads, present=None, pooling: str = "latent"):
        return self.features(x, leads, present, pooling)

    def num_parameters(self, part: str = "all") -> int:
        mods = [self.frames, self.context, self.norm] if part == "encoder" else [self]
        return sum(p.numel() for m in mods for p in m.parameters())


class Cpc(_StateSpace):
    """Contrastive predictive coding over all leads at once, with a causal S4D context network."""

    name = "CPC"

    def __init__(self, cfg):
        super().__init__(cfg, bidirectional=False)
        self.predict = nn.Linear(cfg.dim, cfg.dim * cfg.cpc_steps)   # W_1 .. W_K side by side

    def n_targets(self, present, drop=None, mask_ratio: float | None = None):
        """The trainer weighs each part of a batch by its share of this count: ECGs, for CPC."""
        return torch.tensor(float(present.shape[0]), device=present.device)

    def forward(self, x, leads, present=None, mask_ratio: float | None = None, generator=None,
                align_scale: float = 1.0, noise=None, drop=None, intervene: str | None = None):
        """Pretraining step (the arguments of ``Lamae.forward``; ``drop`` (B, L) hides leads,
        as lead dropout; the masking arguments do not apply)."""
        if intervene is not None:
            raise ValueError("CPC has no latents to intervene on")
        leads, present = self._check(x, leads, present)
        present, _ = self.hide_leads(present, drop)
        if x.shape[0] < 2:
            raise ShapeError("CPC's loss needs at least 2 ECGs in a batch (the others are its negatives)")
        x = x / self.input_scale(x, present)
        z, c = self.encode(x, leads, present)
        b, n, d = z.shape
        loss = info_nce_loss(self.predict(c).view(b, n, self.cfg.cpc_steps, d), z)
        return {"loss": loss, "reconstruction": loss, "pooled": c.mean(dim=1), "lead_weights": None}


class S4Mae(_StateSpace):
    """LAMAE's masked objective on the state-space encoder (bidirectional), with a state-space
    decoder that rebuilds every lead's samples from the frames."""

    name = "S4-MAE"

    def __init__(self, cfg):
        super().__init__(cfg, bidirectional=True)
        n_vocab = len(STANDARD_LEADS)
        self.to_decoder = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.decoder = nn.ModuleList(S4Block(cfg.decoder_dim, cfg.s4_state, cfg.mlp_ratio, bidirectional=True)
                                     for _ in range(cfg.decoder_depth))
        self.decoder_norm = nn.LayerNorm(cfg.decoder_dim)
        self.head = nn.Linear(cfg.decoder_dim, n_vocab * cfg.cpc_stride)   # a frame's samples of every lead

    def forward(self, x, leads, present=None, mask_ratio: float | None = None, generator=None,
                align_scale: float = 1.0, noise=None, drop=None, intervene: str | None = None):
        """Pretraining step (the arguments of ``Lamae.forward``): ``mask_ratio`` of each input
        lead's patches are blanked (``noise`` (B, L, n_patches) replaces the random draw), leads
        ``drop`` hides are no input and every one of their patches is a target. ``pred`` (B, L,
        n_patches, patch_size) is in the units of ``x``."""
        if intervene is not None:
            raise ValueError("S4-MAE has no latents to intervene on")
        leads, targets = self._check(x, leads, present)
        present, drop = self.hide_leads(targets, drop)
        scale = self.input_scale(x, present)
        x = x / scale
        ratio = self.cfg.mask_ratio if mask_ratio is None else mask_ratio
        _, mask, _ = self.mask(x, leads, ratio, generator, noise)                    # (B, L, N), 1 = masked
        seen = present[..., None] & (mask == 0)
        seen = seen.repeat_interleave(self.cfg.patch_size, dim=2)                  # (B, L, T)
        _, c = self.encode(x, leads, seen)
        h = self.to_decoder(c)
        for blk in self.decoder:
            h = blk(h)
        b, n, _ = h.shape
        grid = self.head(self.decoder_norm(h)).view(b, n, len(STANDARD_LEADS), self.cfg.cpc_stride)
        grid = grid.permute(0, 2, 1, 3).reshape(b, len(STANDARD_LEADS), n * self.cfg.cpc_stride)
        pred = self.patchify(grid.gather(1, leads[..., None].expand(-1, -1, grid.shape[2])))
        if drop is not None:
            mask = torch.where(drop[..., None], torch.ones_like(mask), mask)
        recon = self.reconstruction_loss(x, pred, mask, targets)
        return {"loss": recon, "reconstruction": recon, "pred": pred * scale[..., None], "mask": mask,
                "pooled": c.mean(dim=1), "lead_weights": uniform_lead_weights(present)}
