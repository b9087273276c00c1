"""How well hidden leads are reconstructed from the others, over a split of a store."""

from __future__ import annotations

import numpy as np
import torch

from ..api import lead_error
from ..data.store import EcgStore
from ..errors import LamaeError
from ..leads import STANDARD_LEADS, lead_indices


@torch.no_grad()
def reconstruction_errors(model, store: EcgStore, hide, *, split: str | None = "test",
                          batch_size: int = 64) -> dict:
    """Per hidden lead: mean MSE of the reconstruction, of predicting zeros (the lead's mean),
    and mean correlation, over the records of ``split`` that have that lead.

    ``model`` is a :class:`lamae.api.Pretrained` whose preprocessing matches the store's.
    The hidden leads are withheld together; every other present lead is an input.
    """
    if store.preprocessing != model.preprocessing:
        raise LamaeError(f"{store.path}: store preprocessing differs from the checkpoint's")
    idx = lead_indices(hide)
    rows = store.rows(split)
    if len(rows) == 0:
        raise LamaeError(f"{store.path}: no records in split {split!r}")
    net = model.model.eval()
    device = next(net.parameters()).device
    stats = {lead: {"mse": [], "mse_zeros": [], "corr": []} for lead in hide}
    for s in range(0, len(rows), batch_size):
        x, present = store.batch(rows[s:s + batch_size], device)
        drop = torch.zeros_like(present)
        drop[:, idx] = True
        drop &= present
        ok = (present & ~drop).any(dim=1)
        if not bool(ok.any()):
            continue
        x, present, drop = x[ok], present[ok], drop[ok]
        out = net(x, torch.arange(len(STANDARD_LEADS), device=device), present, mask_ratio=0.0, drop=drop)
        pred = out["pred"].reshape(x.shape).float().cpu().numpy()
        xs, d = x.cpu().numpy(), drop.cpu().numpy()
        for lead, j in zip(hide, idx):
            for o, r in zip(xs[d[:, j], j], pred[d[:, j], j]):
                for k, v in lead_error(o, r).items():
                    stats[lead][k].append(v)
    return {lead: {"n": len(v["mse"]), **{k: float(np.mean(a)) if a else float("nan") for k, a in v.items()}}
            for lead, v in stats.items()}
