"""The paper's comparison as configurations of one model family (see ``LamaeConfig``).

Each entry says how to build and how to read out a model: ``model`` overrides the shared
configuration, ``pooling`` picks the representation, ``reuse`` shares another entry's
pretrained weights (LAMAE_E is LAMAE's encoder read without its aggregator), ``kind`` says
whether it is pretrained (``mae``), trained supervised from scratch (``scratch``) or frozen
at random initialisation (``random``).
"""

from __future__ import annotations


import torch

from .lamae import SIZES, Lamae, LamaeConfig

BASELINES: dict[str, dict] = {
    "LAMAE": {"kind": "mae", "model": {}, "pooling": "latent"},
    "LAMAE_E": {"kind": "mae", "model": {}, "pooling": "leads", "reuse": "LAMAE"},
    "LAMAE-mean": {"kind": "mae", "model": {"aggregator": "mean"}, "pooling": "latent"},
    "IndS": {"kind": "mae", "model": {"aggregator": "none"}, "pooling": "latent"},
    "IndP": {"kind": "mae", "model": {"aggregator": "none", "private_leads": True}, "pooling": "latent"},
    "MVMAE": {"kind": "mae", "model": {"aggregator": "none", "align": "cosine"}, "pooling": "latent"},
    "Joint": {"kind": "mae", "model": {"aggregator": "none", "token_mixing": "joint"}, "pooling": "latent"},
    "Scratch": {"kind": "scratch", "model": {}, "pooling": "latent"},
    "Random": {"kind": "random", "model": {}, "pooling": "latent"},
}
REFERENCE = "LAMAE"


def count_parameters(cfg: LamaeConfig) -> int:
    """Parameter count without allocating weights (built on the meta device)."""
    with torch.device("meta"):
        return sum(p.numel() for p in Lamae(cfg).parameters())


def model_config(name: str, size: str, shared: dict | None = None, **fixed) -> LamaeConfig:
    if name not in BASELINES:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(BASELINES)}")
    return LamaeConfig(**{**SIZES[size], **(shared or {}), **BASELINES[name]["model"], **fixed})


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
        return LamaeConfig(**{**cfg.to_dict(), "dim": dim, "mlp_ratio": ratio})

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
