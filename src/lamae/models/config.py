"""The settings of every member of the model family (``LamaeConfig``), the named sizes and the
limits a configuration may ask for. Below every model module: lamae.py and cpc.py read it, and
family.py (the registry) builds a member from it. Settings are flat in ``config.json`` (every
checkpoint ever written loads); ``SETTING_GROUPS`` says which component each one belongs to."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

ENCODERS = ("router", "per_lead", "private", "joint", "s4", "s4_lead")
OBJECTIVES = ("mae", "cpc")
AGGREGATORS = ("latent", "mean", "none")
READOUTS = ("latents", "cls_latents", "patch_latents")  # what the latent aggregator pools
MODEL_FORMAT = 3  # 1: lamae 0.1 (token_mixing / private_leads); 2: encoder + aggregator components;
                  # 3: narrow routers (router_width, latent_mlp; format 2's routers were full width)
# Settings format 3 added, with the values that give the models earlier formats wrote.
FORMAT_2_ROUTERS = {"router_width": 1.0, "latent_mlp": True}


# Upper bounds on the sizes a configuration may ask for (ViT-H is 1280 wide, 32 deep).
SIZE_LIMITS = {"patch_size": 100_000, "dim": 8192, "depth": 128, "heads": 128, "decoder_dim": 8192,
               "decoder_depth": 128, "decoder_heads": 128, "latent_heads": 128, "router_latents": 256,
               "n_latents": 1024, "latent_depth": 128, "router_every": 128, "cpc_steps": 1024,
               "cpc_stride": 100_000, "s4_state": 1024, "stem_frame": 100_000}
MAX_PARAMETERS = 5e9


# How the settings are grouped, by component (the decision of issue 39): ``config.json`` keeps
# them flat, so every checkpoint ever written loads as it is, and this table says which component
# each belongs to and when that component is part of a model, so ``settings_in_use`` (and
# ``lamae models --settings NAME``) shows a reader what one member uses. Grouping by member (as
# timm and transformers do, a config class each) was not taken: the family's members are
# settings of the same parts, and most settings are shared by several of them. A new encoder
# adds its group here; a test checks that every setting belongs to exactly one group.
SETTING_GROUPS = {
    "input": (("fs", "window_s", "patch_size", "input_scale"), lambda c: True),
    "encoder": (("encoder", "dim", "depth", "mlp_ratio"), lambda c: True),
    "encoder: attention": (("heads",), lambda c: c.encoder not in ("s4", "s4_lead")),
    "encoder: patch embedding": (("stem", "stem_frame"), lambda c: c.encoder not in ("s4", "s4_lead")),
    "encoder: state space": (("s4_state", "cpc_stride"), lambda c: c.encoder in ("s4", "s4_lead")),
    "cross-lead path: routers": (("router_latents", "router_every", "readout", "lead_gates", "router_width",
                                  "latent_mlp"), lambda c: _routers(c)),
    "cross-lead path: lead field": (("lead_field",), lambda c: _routers(c) and c.lead_field > 0),
    "latent attention": (("latent_heads",), lambda c: _routers(c) or _global_latents(c)),
    "aggregator": (("aggregator",), lambda c: c.encoder != "s4"),
    "aggregator: global latents": (("n_latents", "latent_depth", "latent_mode", "latent_input"), lambda c: _global_latents(c)),
    "objective": (("objective",), lambda c: True),
    "objective: masked reconstruction": (("mask_ratio", "mask_limb_together", "decode_ratio", "norm_target"),
                                         lambda c: c.objective == "mae"),
    "objective: contrastive predictive coding": (("cpc_steps",), lambda c: c.objective == "cpc"),
    "objective: masked contrastive term": (("nce_weight",), lambda c: c.encoder == "s4_lead"),
    "objective: view alignment (MVMAE)": (("align", "align_weight", "align_temperature"),
                                          lambda c: c.align != "none"),
    "decoder": (("decoder_dim", "decoder_depth"), lambda c: c.objective == "mae"),
    "decoder: attention": (("decoder_heads",), lambda c: c.objective == "mae" and c.encoder not in ("s4", "s4_lead")),
}


def _routers(c) -> bool:
    """LAMAE's lead routers: the router encoder, or the per-lead state-space one with them on."""
    return c.encoder == "router" or (c.encoder == "s4_lead" and c.aggregator == "latent")


def _global_latents(c) -> bool:
    """K latents attending over the leads (GlobalLatentAttention: LAMAE-global, MVMAE's pooling)."""
    return c.aggregator == "latent" and c.encoder in ("per_lead", "private", "joint")


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
    stem: str = "linear"              # transformer encoders' patch embedding: "linear" (each patch's samples
                                      #   projected, as ViT and MAE), "conv" (a strided convolution per lead
                                      #   over frames of stem_frame samples, one more over neighbouring frames,
                                      #   then one per patch: Xiao et al. 2021's early convolutions)
    stem_frame: int = 5               # conv stem: samples per frame (50 ms at 100 Hz)
    aggregator: str = "latent"
    objective: str = "mae"            # "mae": masked reconstruction; "cpc": contrastive predictive coding
    cpc_steps: int = 12               # cpc: future frames predicted (InfoNCE per step)
    cpc_stride: int = 5               # s4: samples per frame of the strided front end
    s4_state: int = 32                # s4: state size of each S4D channel (conjugate pairs: even)
    nce_weight: float = 0.0           # s4_lead: weight of a contrastive term beside reconstruction: each
                                      #   masked frame's encoding picks its own frame among its lead's
                                      #   other frames and the batch's (wav2vec 2.0's task; 0 = none)
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

    def settings_in_use(self) -> dict[str, dict]:
        """The settings this model uses, by component (``SETTING_GROUPS``): a group whose component
        the model lacks (the routers of a state-space model, the decoder of CPC) is left out."""
        return {group: {name: getattr(self, name) for name in names}
                for group, (names, applies) in SETTING_GROUPS.items() if applies(self)}

    def inner_width(self, width: int, heads: int) -> int:
        """The width of a router's (or a decoder read's) attention with ``heads`` heads on a
        stream ``width`` wide: ``router_width`` of it, rounded to a whole number per head."""
        return heads * max(1, round(width * self.router_width / heads))

    def __post_init__(self):
        for name, value, allowed in (("encoder", self.encoder, ENCODERS),
                                     ("aggregator", self.aggregator, AGGREGATORS),
                                     ("readout", self.readout, READOUTS),
                                     ("stem", self.stem, ("linear", "conv")),
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
        if self.encoder == "s4_lead" and self.aggregator not in ("latent", "none"):
            raise ValueError("the s4_lead encoder takes aggregator 'latent' (LAMAE's routers between the leads) or "
                             "'none' (independent leads)")
        if self.encoder == "s4_lead" and self.objective != "mae":
            raise ValueError("the s4_lead encoder is trained with the masked objective (objective 'mae')")
        value = self.nce_weight
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"nce_weight must be a finite number >= 0, got {value!r}")
        if value and self.encoder != "s4_lead":
            raise ValueError("nce_weight is the s4_lead encoder's contrastive term: use it with encoder 's4_lead'")
        if self.stem == "conv" and self.encoder in ("s4", "s4_lead"):
            raise ValueError("stem 'conv' embeds the transformer encoders' patches; the s4 encoders have their own "
                             "strided front end (cpc_stride)")
        if self.stem == "conv" and self.patch_size % self.stem_frame:
            raise ValueError(f"the conv stem's frames must tile the patches: patch_size {self.patch_size} is not a "
                             f"multiple of stem_frame {self.stem_frame}")
        if self.encoder == "s4_lead" and self.patch_size % self.cpc_stride:
            raise ValueError(f"the s4_lead encoder's frames must tile its patches: patch_size {self.patch_size} is "
                             f"not a multiple of cpc_stride {self.cpc_stride}")
        if self.encoder == "router" and self.aggregator != "latent":
            raise ValueError("the router encoder's latents are its aggregator: use aggregator 'latent' with it "
                             "(for the mean or no aggregator, use encoder 'per_lead')")
        for name in ("patch_size", "dim", "depth", "heads", "decoder_dim", "decoder_depth", "decoder_heads",
                     "latent_heads", "router_latents", "n_latents", "cpc_steps", "cpc_stride", "s4_state",
                     "stem_frame"):
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
        if self.encoder in ("s4", "s4_lead") and self.s4_state % 2:
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
        if self.lead_field and not (self.encoder == "router" or (self.encoder == "s4_lead" and self.aggregator == "latent")):
            raise ValueError("lead_field feeds the router latents: use it with encoder 'router' (or 's4_lead' with "
                             "aggregator 'latent')")
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
        if self.encoder in ("s4", "s4_lead") and value != 1:
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
