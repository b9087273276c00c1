"""What every member of the family shares about its input: the checks, the RMS scale, patches,
the random patch masks and the masked reconstruction loss (``EcgInputs``). Below lamae.py and
cpc.py, which both build on it."""

from __future__ import annotations

import torch

from ..errors import ShapeError
from ..leads import LIMB_LEADS, STANDARD_LEADS, lead_indices
from .layers import take_rows

def n_visible(n: int, ratio: float) -> int:
    """Patches left visible in each lead of ``n`` when a fraction ``ratio`` is masked."""
    return max(1, int(round(n * (1 - ratio))))


def n_decoded(n: int, ratio: float, decode_ratio: float) -> int:
    """Masked patches of each lead of ``n`` that a training step decodes (``decode_ratio`` of them,
    at least one where any is masked)."""
    masked = n - n_visible(n, ratio)
    return min(masked, max(1, int(round(masked * decode_ratio)))) if masked else 0


def random_masking(b: int, n_leads: int, n: int, ratio: float, device, generator=None, noise=None):
    """Independent random mask per lead and per sample.

    Returns ``keep`` (B, L, n_keep) indices of visible patches, ``mask`` (B, L, N) with 1 for
    masked patches, and ``ids_restore`` (B, L, N) to undo the shuffle.
    """
    n_keep = n_visible(n, ratio)
    if noise is None:
        noise = torch.rand(b, n_leads, n, device=device, generator=generator)
    ids_shuffle = noise.argsort(dim=-1)
    ids_restore = ids_shuffle.argsort(dim=-1)
    mask = torch.ones(b, n_leads, n, device=device)
    mask[..., :n_keep] = 0
    mask = mask.gather(-1, ids_restore)
    return ids_shuffle[..., :n_keep], mask, ids_restore


def share_limb_noise(noise: torch.Tensor, leads: torch.Tensor) -> torch.Tensor:
    """Give the limb leads of each ECG one masking noise, so they are masked at the same patches.

    The six limb leads are linear combinations of any two of them: with independent masks a
    masked limb patch is usually solvable from two other limb leads at that time, which
    teaches little; masked together, the limb leads must be inferred from the chest leads.
    """
    limb = torch.isin(leads, torch.tensor(lead_indices(LIMB_LEADS), device=leads.device))  # (B, L)
    if not bool(limb.any()):
        return noise
    # the noise of each ECG's limb lead with the lowest standard index (I if present): a choice
    # that does not depend on the order of the rows
    first = torch.where(limb, leads, torch.full_like(leads, len(STANDARD_LEADS))).argmin(dim=1)
    shared = noise[torch.arange(noise.shape[0], device=noise.device), first]  # (B, N)
    return torch.where(limb[..., None], shared[:, None, :], noise)


class EcgInputs:
    """What every member shares about its input: the checks, the RMS scale, patches, the random
    patch mask and the masked reconstruction loss (``Lamae``, and the state-space members in
    cpc.py). Needs ``self.cfg``, a ``LamaeConfig``."""

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

    def input_scale(self, x, inputs):
        """(B, 1, 1) divisor of each ECG: the RMS over its input leads with ``input_scale: rms``
        (so an ECG scaled by one factor for all leads looks the same whichever leads are given),
        else 1."""
        if self.cfg.input_scale == "none":
            return x.new_ones(x.shape[0], 1, 1)
        sq = (x.float() ** 2 * inputs[..., None]).sum(dim=(1, 2))
        n = inputs.sum(1).float() * x.shape[2]
        return (sq / n.clamp_min(1)).sqrt().clamp_min(1e-3).to(x.dtype)[:, None, None]

    def n_targets(self, present, drop=None, mask_ratio: float | None = None):
        """How many patches ``forward`` scores: the masked patches of each input lead and every
        patch of a hidden one (in training with ``decode_ratio`` < 1, the decoded ones of those)."""
        ratio = self.cfg.mask_ratio if mask_ratio is None else mask_ratio
        n = self.cfg.n_patches
        present = present.bool()
        hidden = present & drop.bool() if drop is not None else torch.zeros_like(present)
        masked = n - n_visible(n, ratio)
        if self.partial_decoding:
            masked = n_decoded(n, ratio, self.cfg.decode_ratio)
            n = n_visible(n, ratio) + masked
        return (present & ~hidden).sum() * masked + hidden.sum() * n

    @property
    def partial_decoding(self) -> bool:
        """Whether ``forward`` decodes only some masked patches (training with ``decode_ratio`` < 1)."""
        return self.training and self.cfg.decode_ratio < 1

    def decoded_positions(self, ids_restore, mask_ratio: float):
        """(B, L, S) patch positions a partial-decoding step rebuilds: each lead's visible patches,
        then the first ``decode_ratio`` of its masked ones in the mask's random order."""
        n = self.cfg.n_patches
        s = n_visible(n, mask_ratio) + n_decoded(n, mask_ratio, self.cfg.decode_ratio)
        return ids_restore.argsort(dim=-1)[..., :s]

    def patchify(self, x):
        b, n_leads, _ = x.shape
        return x.view(b, n_leads, self.cfg.n_patches, self.cfg.patch_size)

    def mask(self, x, leads, mask_ratio, generator=None, noise=None):
        b, n_leads, _ = x.shape
        if noise is None:
            # generator=None is not passed on: torch.compile (2.11) fails on it with a dynamic batch size
            noise = torch.rand(b, n_leads, self.cfg.n_patches, device=x.device,
                               **({} if generator is None else {"generator": generator}))
        if self.cfg.mask_limb_together:
            noise = share_limb_noise(noise, leads)
        return random_masking(b, n_leads, self.cfg.n_patches, mask_ratio, x.device, noise=noise)

    def hide_leads(self, present, drop):
        """Lead dropout (or leads withheld to be rebuilt): (the input leads, ``drop`` limited to
        present leads, or None). An ECG left without any input lead is refused."""
        if drop is None:
            return present, None
        drop = drop.bool() & present
        inputs = present & ~drop
        if not bool(inputs.any(dim=1).all()):
            raise ShapeError("lead dropout left an ECG without any input lead")
        return inputs, drop

    def reconstruction_loss(self, x, pred, mask, present, rows=None):
        """MSE on masked patches of present leads only (averaged over those patches). ``rows``
        (B, L, S): the positions ``pred`` (B, L, S, P) holds, where it does not hold them all."""
        target = self.patchify(x)
        if rows is not None:
            target, mask = take_rows(target, rows), mask.gather(-1, rows)
        if self.cfg.norm_target:
            mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mu) / (var + 1e-6).sqrt()
        per_patch = (pred.float() - target.float()).pow(2).mean(-1)
        weight = mask * present[..., None].float()
        return (per_patch * weight).sum() / weight.sum().clamp_min(1.0)
