"""Supervised training end to end: a linear head on the pooled representation, BCE over all
label nodes, the same optimizer and schedule as pretraining. From random initialisation it
is the Scratch baseline; from a pretrained checkpoint it is fine-tuning (FT). The "Frozen"
mode's MLP head on fixed features is here too."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import numpy as np
import torch
from tqdm import tqdm

from ..data.store import EcgStore
from ..models.config import LamaeConfig
from ..models.lamae import Lamae
from ..models.family import make_model
from ..utils.memory import keep_freed_memory
from .common import StoreBatches, lr_at, make_optimizer, param_groups, pick_device


@dataclass
class SupervisedConfig:
    """Settings of supervised training; the fields and defaults mean what they mean in pretraining."""

    steps: int = 1000
    batch_size: int = 64
    base_lr: float = 1.5e-4        # lr = base_lr * batch_size / 256
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.base_lr, (int, float)) and self.base_lr > 0):
            raise ValueError(f"base_lr must be a number > 0, got {self.base_lr!r}")

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size / 256

    @classmethod
    def like(cls, pretrain_cfg, **over) -> "SupervisedConfig":
        """The same budget as a pretraining run (Scratch is trained with the MAE's budget)."""
        keys = {f.name for f in fields(cls)}
        return cls(**{**{k: getattr(pretrain_cfg, k) for k in keys}, **over})


def train_supervised(model_cfg: LamaeConfig, store: EcgStore, rows: np.ndarray, y: np.ndarray,
                     cfg: SupervisedConfig, *, pooling: str = "latent", progress: bool = True,
                     init: Lamae | None = None, log=None, log_every: int = 10):
    """Train on ``rows`` with multi-hot targets ``y``; returns (model, head, seconds).

    ``init``: start from these weights (fine-tuning) instead of a random initialisation.
    ``log(step, metrics)``: called every ``log_every`` steps with the loss and learning rate (a tracker).
    """
    import copy

    device = pick_device(cfg.device)
    keep_freed_memory(device)
    torch.manual_seed(cfg.seed)
    model = (copy.deepcopy(init) if init is not None else make_model(model_cfg)).to(device)
    head = torch.nn.Linear(model_cfg.dim, y.shape[1]).to(device)
    params = param_groups(model, cfg.weight_decay)
    params[0]["params"].append(head.weight)
    params[1]["params"].append(head.bias)
    opt = make_optimizer(params, cfg.lr, device)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rows, y = np.asarray(rows), torch.from_numpy(np.asarray(y, np.float32))
    # The same seeded per-epoch order as pretraining, over positions in ``rows``.
    order = StoreBatches(store, np.arange(len(rows)), cfg.batch_size, cfg.seed)
    leads = torch.arange(store.signals.shape[1], device=device)
    t0 = time.time()
    model.train()
    desc = "fine-tune" if init is not None else "scratch"
    tag = "finetune" if init is not None else "scratch"  # the tracker's metric prefix
    for step in tqdm(range(cfg.steps), desc=desc, unit="step", disable=not progress):
        idx = order.rows_for(step)
        x, present = store.batch(rows[idx], device)
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        feats, _ = model.features(x, leads, present, pooling)
        loss = loss_fn(head(feats), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(head.parameters()), cfg.grad_clip)
        opt.step()
        if log is not None and ((step + 1) % log_every == 0 or step + 1 == cfg.steps):
            log(step + 1, {f"{tag}/loss": loss.item(), f"{tag}/lr": lr, f"{tag}/grad_norm": float(gnorm)})
    model.eval()
    return model, head, time.time() - t0


@torch.no_grad()
def predict_supervised(model: Lamae, head, store: EcgStore, rows, *, pooling: str = "latent",
                       batch_size: int = 256) -> np.ndarray:
    """Probabilities (n, labels) for ``rows`` of ``store``: the model's embedding, then ``head``."""
    from ..embedding import embed_store

    device = next(model.parameters()).device
    feats, _ = embed_store(model, store, np.asarray(rows), batch_size=batch_size, pooling=pooling, device=device,
                           progress=False)
    return torch.sigmoid(head(torch.from_numpy(feats).to(device))).cpu().numpy()


def train_mlp_head(x_train, y_train, x_val, y_val, *, hidden: int = 256, epochs: int = 300, lr: float = 1e-3,
                   weight_decay: float = 1e-4, dropout: float = 0.2, seed: int = 0):
    """The "Frozen" mode: a one-hidden-layer MLP on frozen, standardised features, full-batch
    Adam, keeping the epoch with the best validation macro AUROC. Returns ``predict(x)``."""
    from ..eval.metrics import macro_auroc

    torch.manual_seed(seed)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.from_numpy((x_train - mean) / std).float()
    yt = torch.from_numpy(np.asarray(y_train, np.float32))
    xv = torch.from_numpy((x_val - mean) / std).float()
    net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                              torch.nn.Linear(hidden, yt.shape[1]))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best = (-1.0, None)
    for epoch in range(epochs):
        net.train()
        loss = loss_fn(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if epoch % 10 == 9 or epoch == epochs - 1:
            net.eval()
            with torch.no_grad():
                score = macro_auroc(np.asarray(y_val), torch.sigmoid(net(xv)).numpy()) if len(x_val) else epoch
            if np.isfinite(score) and score > best[0]:
                best = (score, {k: v.clone() for k, v in net.state_dict().items()})
    if best[1] is not None:
        net.load_state_dict(best[1])
    net.eval()

    def predict(x):
        with torch.no_grad():
            return torch.sigmoid(net(torch.from_numpy((x - mean) / std).float())).numpy()

    return predict
