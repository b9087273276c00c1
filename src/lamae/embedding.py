"""The one embedding path: batches of preprocessed 12-slot windows -> embeddings and lead weights.

Every reader of a frozen encoder goes through ``embed_batches``: the API (``Pretrained.embed``,
arrays in memory), ``lamae embed``, the probe, the comparison, reduced-lead evaluation and
``predict_supervised`` (rows of a store, ``embed_store``). Windows come in the standard lead
order with a mask of the leads present; the model's own readout (``pooling``) makes one vector
per window.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from tqdm import tqdm

from .leads import STANDARD_LEADS, lead_indices
from .models.lamae import Lamae
from .utils.memory import keep_freed_memory


@torch.no_grad()
def embed_batches(model: Lamae, batches: Iterable, *, pooling: str = "latent",
                  device: str | torch.device = "cpu", lead_set=None) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (n, D) and lead weights (n, 12) of ``batches`` of (windows (b, 12, samples),
    present (b, 12)), numpy arrays or tensors, in the standard lead order.

    ``lead_set`` (lead names) hides every other lead from the model (reduced-lead evaluation).
    """
    model = model.to(device).eval()
    keep_freed_memory(device)
    slots = torch.arange(len(STANDARD_LEADS), device=device)
    keep = None
    if lead_set is not None:
        keep = torch.zeros(len(STANDARD_LEADS), dtype=torch.bool, device=device)
        keep[lead_indices(lead_set)] = True
    feats, weights = [], []
    for x, present in batches:
        x, present = torch.as_tensor(x, device=device).float(), torch.as_tensor(present, device=device).bool()
        if keep is not None:
            present = present & keep
            x = x * keep[:, None]
        f, w = model.embed(x, slots, present, pooling=pooling)
        feats.append(f.float().cpu().numpy())
        weights.append(w.float().cpu().numpy())
    if not feats:
        return np.zeros((0, model.cfg.dim), np.float32), np.zeros((0, len(STANDARD_LEADS)), np.float32)
    return np.concatenate(feats), np.concatenate(weights)


def embed_store(model: Lamae, store, rows, *, batch_size: int = 256, pooling: str = "latent",
                device: str | torch.device = "cpu", progress: bool = True, desc: str = "embed",
                lead_set=None) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (n, D) and lead weights (n, 12) for ``rows`` of ``store`` (an ``EcgStore``);
    with ``lead_set`` every row must have at least one of those leads."""
    rows = np.asarray(rows)
    starts = range(0, len(rows), batch_size)
    batches = (store.batch(rows[i:i + batch_size], device)
               for i in tqdm(starts, desc=desc, unit="batch", disable=not progress))
    return embed_batches(model, batches, pooling=pooling, device=device, lead_set=lead_set)


def embed_arrays(model: Lamae, windows: np.ndarray, present: np.ndarray, *, batch_size: int = 64,
                 pooling: str = "latent", device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and lead weights of windows (W, 12, samples) already in memory."""
    batches = ((np.ascontiguousarray(windows[s:s + batch_size]), np.ascontiguousarray(present[s:s + batch_size]))
               for s in range(0, len(windows), batch_size))
    return embed_batches(model, batches, pooling=pooling, device=device)
