"""Reconstruction over a split of a store: hidden leads from the others, and masked time spans.

Errors are in the store's normalised units, with the error of predicting zeros (the lead's
mean) beside them and ``nmse`` = MSE / MSE of zeros (the fraction of the signal's variance
left unexplained), which does not depend on the normalisation and so compares models trained
on stores normalised differently.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.store import EcgStore
from ..errors import LamaeError
from ..files import atomic_write_text, output_dir
from ..leads import STANDARD_LEADS, canonical_leads, lead_indices
from .metrics import lead_error


def _summary(v: dict) -> dict:
    mse, zeros = np.mean(v["mse"]) if v["mse"] else np.nan, np.mean(v["mse_zeros"]) if v["mse"] else np.nan
    return {"n": len(v["mse"]), "mse": float(mse), "mse_zeros": float(zeros),
            "nmse": float(mse / zeros) if v["mse"] and zeros > 0 else float("nan"),
            "corr": float(np.mean(v["corr"])) if v["corr"] else float("nan")}


def require_decoder(model, what: str = "reconstruction") -> None:
    """Refuse, naming the model, a model that rebuilds no signal (CPC learns by contrast)."""
    if model.model.cfg.objective != "mae":
        raise LamaeError(f"{model.config.get('path', 'this model')}: a {model.model.cfg.objective.upper()} model has "
                         f"no decoder, so {what} does not apply to it (it needs a masked autoencoder)")


def _rows(model, store: EcgStore, split):
    require_decoder(model)
    store.require_preprocessing(model.preprocessing, str(model.config.get("path", "the model")))
    rows = store.rows(split)
    if len(rows) == 0:
        raise LamaeError(f"{store.path}: no records in split {split!r}")
    return rows


@torch.no_grad()
def reconstruction_errors(model, store: EcgStore, hide, *, split: str | None = "test",
                          batch_size: int = 64, intervene: str | None = None) -> dict:
    """Per hidden lead: mean MSE of the reconstruction, of predicting zeros (the lead's mean),
    their ratio and the mean correlation, over the records of ``split`` that have that lead.

    ``model`` is a :class:`lamae.api.Pretrained` whose preprocessing matches the store's.
    The hidden leads are withheld together; every other present lead is an input.
    ``intervene`` ("zero" / "shuffle") ablates the model's latents (see ``Lamae.forward``).
    """
    hide = list(canonical_leads(hide, source="--hide"))
    if len(hide) >= len(STANDARD_LEADS):
        raise LamaeError(f"cannot hide all {len(STANDARD_LEADS)} leads: none would be left for the model to "
                         "rebuild them from; hide fewer")
    rows = _rows(model, store, split)
    idx = lead_indices(hide)
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
        out = net(x, torch.arange(len(STANDARD_LEADS), device=device), present, mask_ratio=0.0, drop=drop,
                  intervene=intervene)
        pred = out["pred"].reshape(x.shape).float().cpu().numpy()
        xs, d = x.cpu().numpy(), drop.cpu().numpy()
        for lead, j in zip(hide, idx):
            for o, r in zip(xs[d[:, j], j], pred[d[:, j], j]):
                for k, v in lead_error(o, r).items():
                    stats[lead][k].append(v)
    if not any(v["mse"] for v in stats.values()):
        raise LamaeError(f"{store.path}: no record of split {split!r} has {', '.join(hide)} and another lead "
                         "left as input; nothing to measure")
    return {lead: _summary(v) for lead, v in stats.items()}


@torch.no_grad()
def masked_span_errors(model, store: EcgStore, *, split: str | None = "test", mask_ratio: float | None = None,
                       batch_size: int = 64, intervene: str | None = None, seed: int = 0) -> dict:
    """Same-lead reconstruction: patches masked at the same times in every lead, so at those
    times no other lead is visible and each lead is rebuilt from its own visible patches.

    Returns the errors over all masked patches of present leads (``mse``, ``mse_zeros``,
    ``nmse``, ``corr`` averaged over leads and ECGs). The masks are seeded, so conditions
    (``intervene``) are compared on the same patches.
    """
    rows = _rows(model, store, split)
    net = model.model.eval()
    device = next(net.parameters()).device
    n = net.cfg.n_patches
    gen = torch.Generator().manual_seed(seed)
    stats = {"mse": [], "mse_zeros": [], "corr": []}
    for s in range(0, len(rows), batch_size):
        x, present = store.batch(rows[s:s + batch_size], device)
        noise = torch.rand(len(x), 1, n, generator=gen).expand(-1, x.shape[1], -1).to(device)
        out = net(x, torch.arange(len(STANDARD_LEADS), device=device), present, mask_ratio=mask_ratio,
                  noise=noise, intervene=intervene)
        pred = out["pred"].float().cpu().numpy()
        target = net.patchify(x).cpu().numpy()
        pres, m = present.cpu().numpy(), out["mask"].bool().cpu().numpy()
        for b in range(len(x)):
            for j in np.flatnonzero(pres[b]):
                sel = m[b, j]
                if not sel.any():
                    continue
                for k, v in lead_error(target[b, j][sel].ravel(), pred[b, j][sel].ravel()).items():
                    stats[k].append(v)
    return _summary(stats)


def save_store_errors(model, store_path, hide, out, *, split: str = "test") -> dict:
    """``reconstruction_errors`` over a store's ``split``, written to ``out/errors.json``."""
    import json

    if not hide:
        raise LamaeError("reconstruction over a store needs the leads to withhold (--hide LEAD ...)")
    errs = reconstruction_errors(model, EcgStore(store_path), hide, split=split)
    out = output_dir(out, "reconstruct", writes=("errors.json",))
    atomic_write_text(out / "errors.json", json.dumps({"store": str(store_path), "split": split, "errors": errs},
                                                      indent=2))
    return errs
