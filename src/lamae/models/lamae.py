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

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError
from ..leads import LIMB_LEADS, STANDARD_LEADS, lead_indices
from .aggregators import READOUTS, build_aggregator, mean_of_leads
from .decoder import LeadDecoder
from .encoders import build_encoder, intervene_latents
from .layers import sincos_1d, take_rows
from .leadfield import LeadField

ENCODERS = ("router", "per_lead", "private", "joint", "s4")
OBJECTIVES = ("mae", "cpc")
AGGREGATORS = ("latent", "mean", "none")
MODEL_FORMAT = 3  # 1: lamae 0.1 (token_mixing / private_leads); 2: encoder + aggregator components;
                  # 3: narrow routers (router_width, latent_mlp; format 2's routers were full width)
# Settings format 3 added, with the values that give the models earlier formats wrote.
FORMAT_2_ROUTERS = {"router_width": 1.0, "latent_mlp": True}


# Upper bounds on the sizes a configuration may ask for (ViT-H is 1280 wide, 32 deep).
SIZE_LIMITS = {"patch_size": 100_000, "dim": 8192, "depth": 128, "heads": 128, "decoder_dim": 8192,
               "decoder_depth": 128, "decoder_heads": 128, "latent_heads": 128, "router_latents": 256,
               "n_latents": 1024, "latent_depth": 128, "router_every": 128, "cpc_steps": 1024,
               "cpc_stride": 100_000, "s4_state": 1024}
MAX_PARAMETERS = 5e9


@dataclass
class LamaeConfig:
    fs: float = 100.0                 # native rate: inputs are resampled to it
    window_s: float = 10.0
    patch_size: int = 25
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    # The model family: which encoder, which aggregator (see the module docstrings).
    #   encoder     "router":   per-lead blocks + lead routers (LAMAE)
    #               "per_lead": one shared transformer, one lead at a time (IndS, LAMAE-global)
    #               "private":  a transformer per lead (IndP)
    #               "joint":    one sequence over all leads (ST-MEM's design; aggregator "none")
    #   aggregator  "latent":   the router latents (router) or K global latents over leads (per_lead)
    #               "mean":     mean of the lead CLS tokens, prepended in the decoder (ablation)
    #               "none":     nothing crosses between leads outside a joint encoder
    #   encoder "s4": all leads as channels of a strided front end + S4D layers (cpc.py); with
    #               objective "cpc" contrastive predictive coding (CPC, no decoder), with "mae"
    #               the masked objective through a state-space decoder (S4-MAE)
    encoder: str = "router"
    aggregator: str = "latent"
    objective: str = "mae"            # "mae": masked reconstruction; "cpc": contrastive predictive coding
    cpc_steps: int = 12               # cpc: future frames predicted (InfoNCE per step)
    cpc_stride: int = 5               # s4: samples per frame of the strided front end
    s4_state: int = 32                # s4: state size of each S4D channel (conjugate pairs: even)
    router_latents: int = 2           # router: latents per position
    router_every: int = 1             # router: after every k-th block (0: one router after the encoder)
    readout: str = "latents"          # router: pooled embedding = mean of all latents (see aggregators.py)
    lead_gates: bool = False          # router: per-lead gates on what leads send to / read from the latents
    lead_field: int = 0               # router: K linear sources per position (leadfield.py); 0 = none
    router_width: float = 0.25        # router: width of the routers' and decoder reads' attention, as a
                                      #   fraction of dim / decoder_dim (model format 2 had 1.0: full width)
    latent_mlp: bool = False          # router: an MLP on the latents after each gather (format 2 had one)
    n_latents: int = 4                # global latent attention: K latents
    latent_heads: int = 4
    latent_depth: int = 0             # global latent attention: self-attention blocks over the latents
    latent_mode: str = "pma"          # global: "pma" latents query leads; "nvembed" leads query latents
    latent_input: str = "cls"         # global: "cls" one token per lead; "tokens" every visible token
    align: str = "none"               # MVMAE: "none" | "mse" | "cosine" | "infonce"
    align_weight: float = 1.0         # reached at the end of training (sigmoid-annealed from 0)
    align_temperature: float = 0.1    # InfoNCE
    decoder_dim: int = 64
    decoder_depth: int = 1
    decoder_heads: int = 4
    mask_ratio: float = 0.75
    decode_ratio: float = 1.0         # in training the decoder rebuilds only this fraction of each lead's
                                      #   masked patches (chosen at random with the mask; the rest are not
                                      #   decoded or scored); evaluation always decodes every patch
    mask_limb_together: bool = False  # the six limb leads share one patch mask per ECG
    norm_target: bool = False         # per-patch normalised reconstruction targets
    input_scale: str = "none"         # "rms": divide each ECG by the RMS of its input leads (ecg_zscore data)

    def inner_width(self, width: int, heads: int) -> int:
        """The width of a router's (or a decoder read's) attention with ``heads`` heads on a
        stream ``width`` wide: ``router_width`` of it, rounded to a whole number per head."""
        return heads * max(1, round(width * self.router_width / heads))

    def __post_init__(self):
        for name, value, allowed in (("encoder", self.encoder, ENCODERS),
                                     ("aggregator", self.aggregator, AGGREGATORS),
                                     ("readout", self.readout, READOUTS),
                                     ("latent_mode", self.latent_mode, ("pma", "nvembed")),
                                     ("latent_input", self.latent_input, ("cls", "tokens")),
                                     ("align", self.align, ("none", "mse", "cosine", "infonce")),
                                     ("objective", self.objective, OBJECTIVES),
                                     ("input_scale", self.input_scale, ("none", "rms"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if self.objective == "cpc" and self.encoder != "s4":
            raise ValueError("the cpc objective needs the s4 encoder (encoder 's4', objective 'cpc', aggregator 'none')")
        if self.encoder == "s4" and self.aggregator != "none":
            raise ValueError("the s4 encoder's representation is its context's mean: use aggregator 'none' with it")
        if self.encoder == "joint" and self.aggregator != "none":
            raise ValueError("the joint encoder already mixes all leads: use aggregator 'none' with it")
        if self.encoder == "router" and self.aggregator != "latent":
            raise ValueError("the router encoder's latents are its aggregator: use aggregator 'latent' with it "
                             "(for the mean or no aggregator, use encoder 'per_lead')")
        for name in ("patch_size", "dim", "depth", "heads", "decoder_dim", "decoder_depth", "decoder_heads",
                     "latent_heads", "router_latents", "n_latents", "cpc_steps", "cpc_stride", "s4_state"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            if value > SIZE_LIMITS[name]:
                raise ValueError(f"{name} is {value}, above the largest lamae builds ({SIZE_LIMITS[name]})")
        for name in ("latent_depth", "router_every"):  # 0 allowed: none / one router after the encoder
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SIZE_LIMITS[name]:
                raise ValueError(f"{name} must be an integer from 0 to {SIZE_LIMITS[name]}, got {value!r}")
        for name in ("fs", "window_s", "mlp_ratio", "align_weight", "align_temperature", "mask_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in ("lead_gates", "mask_limb_together", "norm_target", "latent_mlp"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not (0 < self.fs <= 50_000 and 0 < self.window_s <= 3600 and 0 < self.mlp_ratio <= 16):
            raise ValueError(f"fs {self.fs}, window_s {self.window_s} or mlp_ratio {self.mlp_ratio} out of range "
                             "(0 < fs <= 50000 Hz, 0 < window_s <= 3600 s, 0 < mlp_ratio <= 16)")
        if self.encoder == "s4" and self.align != "none":
            raise ValueError("align compares per-lead embeddings; the s4 encoder has none (leads enter as channels)")
        if self.encoder == "s4" and self.s4_state % 2:
            raise ValueError(f"s4_state must be even (complex conjugate pairs), got {self.s4_state}")
        if self.encoder == "s4" and self.objective == "mae" and self.n_samples % self.cpc_stride:
            raise ValueError(f"S4-MAE rebuilds every sample from its frames: the window's {self.n_samples} samples "
                             f"must be a multiple of cpc_stride {self.cpc_stride}")
        if self.objective == "cpc":
            if self.n_samples // self.cpc_stride <= self.cpc_steps:
                raise ValueError(f"cpc_stride {self.cpc_stride} leaves {self.n_samples // self.cpc_stride} frames in "
                                 f"the window, not more than cpc_steps {self.cpc_steps}")
        if self.patch_size > self.n_samples:
            raise ValueError(f"patch_size {self.patch_size} is longer than the window ({self.n_samples} samples)")
        for width, heads in (("dim", "heads"), ("decoder_dim", "decoder_heads"), ("dim", "latent_heads")):
            if getattr(self, width) % getattr(self, heads):
                raise ValueError(f"{width} {getattr(self, width)} is not divisible by {heads} {getattr(self, heads)}")
        value = self.router_width
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"router_width must be a fraction in (0, 1], got {value!r}")
        # Bounded before anything is allocated: a config.json asking for a model of billions of
        # parameters (a typo, or a hostile file) is refused rather than exhausting memory.
        # A transformer block holds (4 + 2 * mlp_ratio) * width^2 weights (attention and MLP).
        per_block = 4 + 2 * self.mlp_ratio
        blocks = self.depth * (12 if self.encoder == "private" else 1) + self.latent_depth
        estimate = per_block * (blocks * self.dim ** 2 + self.decoder_depth * self.decoder_dim ** 2)
        if estimate > MAX_PARAMETERS:
            raise ValueError(f"this configuration would build about {estimate / 1e9:.1f}e9 parameters, "
                             f"above lamae's limit of {MAX_PARAMETERS / 1e9:g}e9")
        if isinstance(self.lead_field, bool) or not isinstance(self.lead_field, int) or not 0 <= self.lead_field <= 64:
            raise ValueError(f"lead_field must be an integer from 0 (none) to 64 sources, got {self.lead_field!r}")
        if self.lead_field and self.encoder != "router":
            raise ValueError("lead_field feeds the router latents: use it with encoder 'router'")
        if self.lead_field and self.norm_target:
            raise ValueError("lead_field predicts patches in the input's units: it cannot be used with norm_target")
        if self.n_samples % self.patch_size:
            raise ValueError(
                f"window of {self.n_samples} samples is not a multiple of patch_size {self.patch_size}"
            )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        value = self.decode_ratio
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"decode_ratio must be a fraction in (0, 1], got {value!r}")
        if self.encoder == "s4" and value != 1:
            raise ValueError("decode_ratio needs a patch decoder: the s4 members rebuild every frame (use 1)")

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.window_s))

    @property
    def n_patches(self) -> int:
        return self.n_samples // self.patch_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, version: int = MODEL_FORMAT) -> "LamaeConfig":
        """Settings from a dict written by model format ``version`` (checkpoints store it)."""
        d = dict(d)
        if version == 1:
            d = migrate_v1_config(d)
        if version in (1, 2):
            d = {**FORMAT_2_ROUTERS, **d}
        elif version != MODEL_FORMAT:
            raise ValueError(f"model format {version!r} is not one this lamae reads (1 to {MODEL_FORMAT}); "
                             "a newer lamae wrote it: upgrade lamae")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model settings: {sorted(unknown)}")
        return cls(**d)


def migrate_v1_config(d: dict) -> dict:
    """lamae 0.1 model settings -> today's. 0.1 spelled the encoder as two flags and its
    LAMAE was the global latent attention over per-lead CLS tokens (today's LAMAE-global)."""
    d = dict(d)
    joint = d.pop("token_mixing", "per_lead") == "joint"
    private = d.pop("private_leads", False)
    d["encoder"] = "joint" if joint else "private" if private else "per_lead"
    d.setdefault("aggregator", "latent")
    return d



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

# Named sizes. "base" has ViT-B blocks (85M parameters, the paper's ~86M encoder); a lead router
# costs a sixth of a block's parameters (1.3 blocks' at full width with the latents' MLP, model
# format 2, when the deeper sizes came to place one after every few blocks).
SIZES: dict[str, dict] = {
    "tiny": dict(dim=64, depth=2, heads=4, n_latents=4, latent_heads=4, router_every=1,
                 decoder_dim=64, decoder_depth=1, decoder_heads=4),
    "small": dict(dim=384, depth=6, heads=6, n_latents=8, latent_heads=6, router_every=3,
                  decoder_dim=256, decoder_depth=2, decoder_heads=8),
    "base": dict(dim=768, depth=12, heads=12, n_latents=16, latent_heads=12, router_every=4,
                 decoder_dim=384, decoder_depth=4, decoder_heads=12),
}


def build_model(size: str = "tiny", **overrides) -> "Lamae":
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {sorted(SIZES)}")
    return make_model(LamaeConfig(**{**SIZES[size], **overrides}))


def make_model(cfg: LamaeConfig) -> nn.Module:
    """The model a configuration describes: a ``Lamae`` (masked autoencoder), or for the s4
    encoder (models/cpc.py) a ``Cpc`` (the cpc objective: the same interface without a decoder)
    or an ``S4Mae`` (the masked objective)."""
    if cfg.encoder == "s4":
        from .cpc import Cpc, S4Mae

        return Cpc(cfg) if cfg.objective == "cpc" else S4Mae(cfg)
    return Lamae(cfg)


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


class Lamae(EcgInputs, nn.Module):
    def __init__(self, cfg: LamaeConfig):
        super().__init__()
        self.cfg = cfg
        d, n_vocab = cfg.dim, len(STANDARD_LEADS)
        # Tokens: patch embedding + time position + lead identity; one CLS per lead
        self.patch_embed = nn.Linear(cfg.patch_size, d)
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

    def encode(self, x, leads, present, keep, intervene=None, sources=None):
        """Encode each lead's visible patches (``keep`` (B, L, n_keep)); the CLS comes first.
        ``sources`` (B, N, K, P): the lead field's, added to the router latents of their position."""
        b, n_leads, _ = x.shape
        lead_e = self.lead_embed(leads)  # (B, L, D)
        # only the visible patches are embedded (a quarter of them at 75% masking)
        patches = take_rows(self.patchify(x), keep)
        vis = self.patch_embed(patches) + self.pos[keep] + lead_e[:, :, None, :]
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
            mods = [self.patch_embed, self.lead_embed, self.encoder, self.norm]
            return sum(p.numel() for m in mods for p in m.parameters()) + self.cls_token.numel()
        return sum(p.numel() for p in self.parameters())
