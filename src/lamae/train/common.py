"""What pretraining and supervised training share: the learning-rate schedule, the optimizer
and its parameter groups, seeded store batches, the device and the distributed context."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.store import EcgStore
from ..errors import LamaeError
from ..models.layers import GroupedLinear


def lr_at(step: int, cfg) -> float:
    """Linear warmup then cosine decay to ``min_lr_ratio * lr`` (``cfg``: a PretrainConfig or a
    SupervisedConfig: ``lr``, ``steps``, ``warmup_steps``, ``min_lr_ratio``)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


class StoreBatches(Dataset):
    """Item ``step`` is that step's batch: rows from a per-epoch permutation seeded by (seed, epoch).

    Under distributed training, rank ``r`` of ``w`` gets rows ``r::w`` of the global batch.
    """

    def __init__(self, store: EcgStore, rows: np.ndarray, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1, half: bool = False):
        if len(rows) < batch_size:
            raise LamaeError(f"{store.path}: {len(rows)} training records, fewer than batch size {batch_size}")
        self.store, self.rows, self.batch_size, self.seed = store, np.asarray(rows), batch_size, seed
        self.rank, self.world, self.half = rank, world, half
        self.per_epoch = len(self.rows) // batch_size
        self._epoch, self._perm = -1, None

    def __len__(self):
        return 2**62

    def rows_for(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
            self._epoch = epoch
        return np.sort(self._perm[k * self.batch_size:(k + 1) * self.batch_size])

    def __getitem__(self, step: int):
        rows = self.rows_for(step)[self.rank::self.world]
        return self.store.batch(rows, half=self.half)


def param_groups(model: torch.nn.Module, weight_decay: float):
    """Decay weight matrices of linear layers only; norms, biases, embedding tables, tokens and
    latent vectors are not decayed."""
    linear = {id(m.weight) for m in model.modules() if isinstance(m, (torch.nn.Linear, GroupedLinear))}
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if id(p) in linear else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW (betas 0.9, 0.95), fused into one kernel per step on CPU and GPU: the for-loop
    implementation torch picks on CPU spends ~10% of a ViT-S step in ~200 tiny per-tensor ops."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), fused=fused or None)


def pick_device(name: str) -> torch.device:
    """``auto`` (a CUDA GPU when there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``;
    a device this machine lacks is named, not left to fail inside torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise LamaeError(f"device {name!r} is not a device name (auto, cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise LamaeError(f"device {name!r}: no CUDA GPU is available here (torch {torch.__version__}); "
                             "use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise LamaeError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise LamaeError(f"device {name!r}: MPS is not available here; use --device cpu or auto")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise LamaeError(f"device {name!r}: lamae runs on cpu, cuda or mps")
    return device


def distributed_context(cfg, device: torch.device):
    """(rank, world, device) from torchrun's environment; starts the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if device.type == "cuda":
        # One process per GPU (NCCL). More processes than GPUs share them round-robin, and
        # NCCL refuses two processes on one GPU, so their gradients reduce through gloo: slow,
        # but it runs a multi-process job on a one-GPU machine (to test a launch script).
        gpus = torch.cuda.device_count()
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        device = torch.device("cuda", local % gpus)
        torch.cuda.set_device(device)
        if per_node <= gpus:
            backend = "nccl"
        elif rank == 0:
            # A launcher that shows each process only its own GPU (CUDA_VISIBLE_DEVICES per
            # process) lands here too: each process sees one GPU and cannot tell that the others
            # see different ones, so the warning names that case and its remedy.
            warnings.warn(f"{per_node} processes on this machine and {gpus} GPU(s) visible to each: they "
                          "share them, and gradients reduce through gloo, which is slow. For real training "
                          "start one process per GPU with every GPU visible to all of them (torchrun "
                          "--nproc_per_node N); if your launcher gives each process its own GPU through "
                          "CUDA_VISIBLE_DEVICES, make them all visible instead so that NCCL is used",
                          stacklevel=2)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    if cfg.batch_size % world:
        raise LamaeError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    return rank, world, device
