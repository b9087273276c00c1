"""The model family by name: LAMAE, its ablations and the paper's baselines.

Each member says how to build and how to read out a model: ``model`` overrides the shared
configuration (the encoder and aggregator components, see ``LamaeConfig``), ``pooling`` picks
the representation, ``reuse`` shares another member's pretrained weights (LAMAE_E is LAMAE's
encoder read as the mean of its lead CLS tokens), ``kind`` says whether it is pretrained
(``mae``), trained supervised from scratch (``scratch``) or frozen at random initialisation
(``random``). ``pretrain`` holds a member's recommended pretraining settings, used where the
run does not set them. ``lamae pretrain --model NAME`` and ``lamae compare`` take these names.

This is the registry: the one module that knows every member and builds it (``make_model``);
``lamae.py`` and ``cpc.py`` each know only their own models and the shared input (``inputs.py``)
and settings (``config.py``) below them.
"""

from __future__ import annotations

import dataclasses

import torch

from torch import nn

from .config import SIZES, LamaeConfig
from .cpc import Cpc, S4Mae
from .lamae import Lamae
from .s4lead import S4Lamae


def make_model(cfg: LamaeConfig) -> nn.Module:
    """The model a configuration describes: a ``Lamae`` (masked autoencoder), or for the s4
    encoder (models/cpc.py) a ``Cpc`` (the cpc objective: the same interface without a decoder)
    or an ``S4Mae`` (the masked objective)."""
    if cfg.encoder == "s4":
        return Cpc(cfg) if cfg.objective == "cpc" else S4Mae(cfg)
    if cfg.encoder == "s4_lead":
        return S4Lamae(cfg)
    return Lamae(cfg)


def build_model(size: str = "tiny", **overrides) -> nn.Module:
    """A model of a named size (``SIZES``) with ``overrides`` of its settings."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {sorted(SIZES)}")
    return make_model(LamaeConfig(**{**SIZES[size], **overrides}))

# LAMAE: router latents at every patch position, fed by an 8-source lead field (leadfield.py).
# Chosen by design.py runs on two normalisations x 2 seeds of PTB-XL and the synthetic set: the
# lead field rebuilds withheld leads (III r 0.91-0.99 where routers alone reach 0.2) and the
# ablation shows the decoder using it; see docs/method.md, "Why these choices".
# Its routers are a quarter of the width with an MLP on the latents (``LamaeConfig``'s default
# is the narrow router without it, model format 3's). Re-decided twice by issue 40 with evidence
# beyond the 488-ECG set: format 3's narrow routers lost 0.03-0.04 there, and the routers' 2x2
# put that loss on the latents' MLP, not the width. Narrow with the MLP, against full width with
# it, over five seeds each: pooled probe +0.021 on PTB-XL-500 (p 0.062) and +0.008 on the
# synthetic set (p 0.094), and pretrained on one dataset then probed on the other +0.009
# (p 0.017) and +0.004 (p 0.42), at 0.84x the FLOPs and 0.67x Joint's step at 500 Hz
# (docs/results.md, "The routers' width" and "Held out").
_ROUTERS = {"router_width": 0.25, "latent_mlp": True}
_LAMAE = {"encoder": "router", "aggregator": "latent", "lead_field": 8, **_ROUTERS}
# LAMAE pretrains with partial decoding: each step rebuilds half of each lead's masked patches
# (decode_ratio, models/lamae.py), so its 500 Hz ViT-S step costs 0.68x Joint's rather than 0.83x.
# Chosen by design.py over five seeds on PTB-XL-500 and the synthetic set, paired with full
# decoding: pooled probe +0.003 and -0.007, neither significant; 0.25 lost on both (docs/speed.md).
# LAMAE-attn, its ablation without the lead field, trains the same way; Scratch and Random never
# train the decoder, so they keep the architecture alone.
_PARTIAL_DECODING = {"decode_ratio": 0.5}
_LAMAE_PRETRAINED = {**_LAMAE, **_PARTIAL_DECODING}

FAMILY: dict[str, dict] = {
    "LAMAE": {"kind": "mae", "model": _LAMAE_PRETRAINED, "pooling": "latent", "pretrain": {"lead_dropout": 0.25},
              "about": "per-lead encoder with lead routers at every position fed by a lead field; "
                       "the decoder reads the latents and starts from the lead field's estimate"},
    "LAMAE_E": {"kind": "mae", "model": _LAMAE_PRETRAINED, "pooling": "leads",
                "reuse": "LAMAE", "about": "LAMAE's encoder read as the mean of its lead CLS tokens"},
    "LAMAE-attn": {"kind": "mae", "model": {"encoder": "router", "aggregator": "latent", **_ROUTERS,
                                            **_PARTIAL_DECODING},
                   "pooling": "latent",
                   "pretrain": {"lead_dropout": 0.25},
                   "about": "ablation: LAMAE without the lead field (routers only: LAMAE as it was before the lead field)"},
    "LAMAE-summary": {"kind": "mae", "model": {"encoder": "router", "aggregator": "latent", "router_every": 0},
                      "pooling": "latent",
                      "about": "one router after a per-lead encoder: per-time summary latents read by the decoder"},
    "LAMAE-global": {"kind": "mae", "model": {"encoder": "per_lead", "aggregator": "latent"}, "pooling": "latent",
                     "about": "the first design: K global latents over the lead CLS tokens, prepended in the decoder"},
    "LAMAE-mean": {"kind": "mae", "model": {"encoder": "per_lead", "aggregator": "mean"}, "pooling": "latent",
                   "about": "ablation: the mean of the lead CLS tokens instead of latent attention"},
    "IndS": {"kind": "mae", "model": {"encoder": "per_lead", "aggregator": "none"}, "pooling": "latent",
             "about": "independent leads, one shared encoder, no cross-lead path"},
    "IndP": {"kind": "mae", "model": {"encoder": "private", "aggregator": "none"}, "pooling": "latent",
             "about": "independent leads, a private encoder per lead"},
    "MVMAE": {"kind": "mae", "model": {"encoder": "per_lead", "aggregator": "none", "align": "cosine"},
              "pooling": "latent", "about": "IndS + an annealed alignment loss between lead embeddings"},
    "Joint": {"kind": "mae", "model": {"encoder": "joint", "aggregator": "none"}, "pooling": "latent",
              "about": "all leads' tokens in one sequence (ST-MEM's design)"},
    "CPC": {"kind": "mae", "model": {"encoder": "s4", "aggregator": "none", "objective": "cpc"}, "pooling": "latent",
            "about": "contrastive predictive coding: a strided front end over all leads (absent ones zero-filled, "
                     "with presence channels), causal S4D context layers, InfoNCE over future frames with "
                     "batch negatives (ECG-CPC's recipe)"},
    "S4-MAE": {"kind": "mae", "model": {"encoder": "s4", "aggregator": "none", "objective": "mae"},
               "pooling": "latent",
               "about": "CPC's state-space encoder (made bidirectional) under LAMAE's masked objective, with a "
                        "state-space decoder: separates the encoder from the objective"},
    # issue 40's factorial: the state-space encoder per lead, with and without LAMAE's cross-lead
    # path (the transformer cells are LAMAE and IndS); models/s4lead.py
    "S4-LAMAE": {"kind": "mae", "model": {"encoder": "s4_lead", "aggregator": "latent", "lead_field": 8},
                 "pooling": "latent", "pretrain": {"lead_dropout": 0.25},
                 "about": "a state-space stack per lead over 50 ms frames with LAMAE's lead routers at every frame "
                          "and its lead field (the factorial's state-space x cross-lead cell)"},
    "S4-IndS": {"kind": "mae", "model": {"encoder": "s4_lead", "aggregator": "none"}, "pooling": "latent",
                "about": "the same state-space stack per lead with no cross-lead path (the state-space x none cell)"},
    "Scratch": {"kind": "scratch", "model": _LAMAE, "pooling": "latent",
                "about": "LAMAE's architecture trained supervised from random initialisation"},
    "Random": {"kind": "random", "model": _LAMAE, "pooling": "latent",
               "about": "LAMAE's architecture frozen at random initialisation"},
}
REFERENCE = "LAMAE"
PRETRAINABLE = [name for name, spec in FAMILY.items() if spec["kind"] == "mae" and "reuse" not in spec]


def count_parameters(cfg: LamaeConfig) -> int:
    """Parameter count without allocating weights (built on the meta device)."""
    with torch.device("meta"):
        return sum(p.numel() for p in make_model(cfg).parameters())


def model_config(name: str, size: str, shared: dict | None = None, **fixed) -> LamaeConfig:
    if name not in FAMILY:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(FAMILY)}")
    return LamaeConfig(**{**SIZES[size], **(shared or {}), **FAMILY[name]["model"], **fixed})


def match_parameters(cfg: LamaeConfig, target: int, tolerance: float = 0.10) -> tuple[LamaeConfig, bool]:
    """Adjust the encoder width and MLP ratio so the parameter count is within ``tolerance``.

    Only where the design needs it (IndP's twelve encoders, or models without the latent
    module): the returned flag says whether the match was reached. The closest candidate
    keeps the width nearest to the original.
    """
    n = count_parameters(cfg)
    if abs(n - target) <= tolerance * target:
        return cfg, True
    step = 2 * cfg.heads
    widths = sorted(range(step, 2 * cfg.dim + 1, step), key=lambda w: (abs(w - cfg.dim), w))
    best = None

    def with_(dim, ratio):
        return dataclasses.replace(cfg, dim=dim, mlp_ratio=ratio)

    for dim in widths:  # nearest width first: the first one that can match wins
        # Parameters grow linearly with the MLP ratio at a fixed width: solve for it, then round.
        p1, p2 = count_parameters(with_(dim, 1.0)), count_parameters(with_(dim, 2.0))
        ratio = 1.0 + (target - p1) / max(p2 - p1, 1)
        ratio = min(8.0, max(1.0, round(ratio * 4) / 4))
        cand = with_(dim, ratio)
        err = abs(count_parameters(cand) - target) / target
        if best is None or err < best[0]:
            best = (err, cand)
        if err <= tolerance:
            break
    return best[1], best[0] <= tolerance
