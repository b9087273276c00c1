"""The Scratch baseline: the same encoder from random initialisation, trained supervised
end to end (linear head on the pooled representation, BCE over all label nodes) with the
same optimizer, schedule, steps and batch size as pretraining."""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from ..data.store import EcgStore
from ..models.lamae import Lamae, LamaeConfig
from ..train.pretrain import PretrainConfig, lr_at, param_groups, pick_device


def train_scratch(model_cfg: LamaeConfig, store: EcgStore, rows: np.ndarray, y: np.ndarray,
                  cfg: PretrainConfig, *, pooling: str = "latent", progress: bool = True):
    """Train on ``rows`` with multi-hot targets ``y``; returns (model, head, seconds)."""
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = Lamae(model_cfg).to(device)
    head = torch.nn.Linear(model_cfg.dim, y.shape[1]).to(device)
    params = param_groups(model, cfg.weight_decay)
    params[0]["params"].append(head.weight)
    params[1]["params"].append(head.bias)
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rows, y = np.asarray(rows), torch.from_numpy(np.asarray(y, np.float32))
    per_epoch = max(1, len(rows) // cfg.batch_size)
    leads = torch.arange(store.signals.shape[1], device=device)
    t0 = time.time()
    model.train()
    for step in tqdm(range(cfg.steps), desc="scratch", unit="step", disable=not progress):
        epoch, k = divmod(step, per_epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(rows))
        idx = np.sort(order[k * cfg.batch_size:(k + 1) * cfg.batch_size])
        r = rows[idx]
        x = torch.from_numpy(np.asarray(store.signals[r], dtype=np.float32)).to(device)
        present = torch.from_numpy(store.lead_mask(r)).to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        feats, _ = model.features(x, leads, present, pooling)
        loss = loss_fn(head(feats), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(head.parameters()), cfg.grad_clip)
        opt.step()
    model.eval()
    return model, head, time.time() - t0


@torch.no_grad()
def predict_scratch(model: Lamae, head, store: EcgStore, rows, *, pooling: str = "latent",
                    batch_size: int = 256) -> np.ndarray:
    device = next(model.parameters()).device
    leads = torch.arange(store.signals.shape[1], device=device)
    out = []
    for i in range(0, len(rows), batch_size):
        r = np.asarray(rows[i:i + batch_size])
        x = torch.from_numpy(np.asarray(store.signals[r], dtype=np.float32)).to(device)
        present = torch.from_numpy(store.lead_mask(r)).to(device)
        feats, _ = model.features(x, leads, present, pooling)
        out.append(torch.sigmoid(head(feats)).cpu().numpy())
    return np.concatenate(out)
