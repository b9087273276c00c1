"""Masked-autoencoder pretraining on a packed store, resumable at any checkpoint.

The whole loop is ``pretrain()``. Data order and masks are functions of (seed, step), so a
run resumed from a checkpoint sees exactly the batches and masks the uninterrupted run
would have seen.

Started with ``torchrun --nproc_per_node N -m lamae.cli pretrain ...`` it trains with
DistributedDataParallel (NCCL on GPU, gloo on CPU and where processes share a GPU): each step's global batch of
``batch_size`` records is split across the N processes (a distributed sampler over the
store), the masks are drawn for the whole global batch and sliced the same way, so N
processes take the same step as one process with the combined batch. Rank 0 writes the
checkpoints and the log; every rank resumes from the same checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoint import load_checkpoint, load_trainer_state, read_latest, save_checkpoint, steps_done
from ..config import first_difference
from ..data.preprocess import Preprocessing
from ..data.store import EcgStore
from ..files import atomic_write_text, check_claim, claim_output, shown
from ..errors import LamaeError
from ..leads import LIMB_LEADS
from ..models.family import FAMILY, PRETRAINABLE, make_model
from ..models.config import FORMAT_2_ROUTERS, MODEL_FORMAT, SIZES, LamaeConfig
from ..models.lamae import Lamae
from ..plots import save_figure
from ..tracking import TRACKERS, open_tracker
from ..utils.memory import keep_freed_memory
from .common import StoreBatches, distributed_context, lr_at, make_optimizer, param_groups, pick_device


@dataclass
class PretrainConfig:
    store: str = ""
    out: str = "runs/pretrain"
    size: str = "tiny"
    architecture: str = "LAMAE"                # a pretrainable member of the model family (models/family.py)
    model: dict = field(default_factory=dict)  # overrides of the size's and the member's LamaeConfig
    steps: int = 1000
    batch_size: int = 64
    base_lr: float = 1.5e-4        # lr = base_lr * batch_size / 256
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 3
    num_workers: int = 0
    device: str = "auto"
    grad_accum: int = 1            # micro-batches per step (same step, less memory)
    compile: bool = False          # torch.compile the model (GPU runs; slow to start)
    split: str | None = "train"    # pretrain on the training patients only (None: every record)
    folds: list | None = None      # and, if given, only on records of these folds (e.g. MIMIC-ICD's 0-17)
    # chance that a lead is hidden from the encoder (and fully reconstructed); None: the family
    # member's recommendation (LAMAE: 0.25, the others: 0)
    lead_dropout: float | None = None
    limb_dropout: float = 0.0      # chance that all six limb leads of an ECG are hidden together
    tracker: str = "csv"           # csv (metrics.csv) | tensorboard | wandb: see lamae/tracking.py

    def __post_init__(self):
        def number(name, value, *, integer=False, low=None, high=None, low_open=False):
            ok_type = (isinstance(value, int) if integer else isinstance(value, (int, float))) \
                and not isinstance(value, bool) and math.isfinite(value)
            if not ok_type or (low is not None and (value <= low if low_open else value < low)) \
                    or (high is not None and value > high):
                kind = "an integer" if integer else "a number"
                bounds = "" if low is None else f" {'>' if low_open else '>='} {low}"
                if high is not None:
                    bounds += (" and" if bounds else "") + (" below 1" if high == 0.999 else f" <= {high}")
                raise ValueError(f"{name} must be {kind}{bounds}, got {value!r}")

        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints", "grad_accum"):
            number(name, getattr(self, name), integer=True, low=1)
        for name in ("warmup_steps", "num_workers", "seed"):
            number(name, getattr(self, name), integer=True, low=0)
        number("base_lr", self.base_lr, low=0, low_open=True)
        number("weight_decay", self.weight_decay, low=0)
        number("min_lr_ratio", self.min_lr_ratio, low=0, high=1)
        number("grad_clip", self.grad_clip, low=0, low_open=True)
        if self.lead_dropout is not None:
            number("lead_dropout", self.lead_dropout, low=0, high=0.999)
        number("limb_dropout", self.limb_dropout, low=0, high=0.999)
        if not isinstance(self.model, dict):
            raise ValueError(f"model must be a mapping of model settings, got {self.model!r}")
        if self.tracker not in TRACKERS:
            raise ValueError(f"tracker must be one of {', '.join(TRACKERS)}, got {self.tracker!r}")

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size / 256


def align_scale_at(step: int, cfg: PretrainConfig) -> float:
    """Sigmoid annealing of the alignment weight: 0 at the first step, near 1 by a third of training."""
    return 2.0 / (1.0 + math.exp(-10.0 * step / max(1, cfg.steps))) - 1.0


def lead_dropout_mask(gen: torch.Generator, present: torch.Tensor, cfg: PretrainConfig, rank: int = 0,
                      world: int = 1) -> torch.Tensor | None:
    """Leads to hide from the encoder this step (B, L) bool, drawn for the global batch.

    Each present lead is hidden with probability ``cfg.lead_dropout``, and all six limb leads
    of an ECG together with probability ``cfg.limb_dropout`` (the limb leads are linear
    combinations of any two of them, so hiding some of them teaches little); an ECG always
    keeps at least one input lead (its highest-drawn present lead). ``present`` holds the
    store's twelve lead slots in the standard order.
    """
    if not cfg.lead_dropout and cfg.limb_dropout <= 0:
        return None
    u = torch.rand(cfg.batch_size, present.shape[1], device=present.device, generator=gen)[rank::world]
    drop = (u < (cfg.lead_dropout or 0.0)) & present
    if cfg.limb_dropout > 0:
        # drawn after u and always, so adding limb dropout leaves the lead-dropout draws as they were
        limb = torch.rand(cfg.batch_size, device=present.device, generator=gen)[rank::world] < cfg.limb_dropout
        drop[:, :len(LIMB_LEADS)] |= limb[:, None]
        drop &= present
    empty = ~(present & ~drop).any(dim=1)
    if bool(empty.any()):
        keep = torch.where(present, u, torch.full_like(u, -1.0)).argmax(dim=1)
        drop[empty, keep[empty]] = False
    return drop


# what a run folder holds: named when a folder of the user's own would be written over
RUN_FILES = ("latest.json", "checkpoints", "loss.csv", "loss.png", "metrics.csv", "pretrain_config.json",
             "tensorboard", "wandb")


def _latest_step(out: Path) -> tuple[int, Path] | None:
    info = read_latest(out)
    return None if info is None else (info["step"], out / info["path"])


def _trim_log(path: Path, upto: int) -> None:
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.reader(f))
    if not rows:
        path.unlink()
        return
    # a line cut short by a kill is dropped with the rest past the checkpoint
    keep = [rows[0]] + [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit() and int(r[0]) <= upto]
    atomic_write_text(path, "".join(",".join(r) + "\n" for r in keep))


def model_config_for(cfg: PretrainConfig, prep) -> LamaeConfig:
    """The size's settings, then the family member's, then ``cfg.model``; the rate, window and
    input scale follow the store (an ECG-normalised store is read with ``input_scale: rms``)."""
    return LamaeConfig(**{**SIZES[cfg.size], **FAMILY[cfg.architecture]["model"], **cfg.model,
                          "fs": prep.fs, "window_s": prep.window_s,
                          "input_scale": "rms" if prep.normalize == "ecg_zscore" else "none"})


def with_member_defaults(cfg: PretrainConfig) -> PretrainConfig:
    """Fill the settings the run leaves open (None) from the family member's recommendations."""
    rec = FAMILY.get(cfg.architecture, {}).get("pretrain", {})
    return dataclasses.replace(cfg, lead_dropout=cfg.lead_dropout if cfg.lead_dropout is not None
                               else rec.get("lead_dropout", 0.0))


def _checked(cfg: PretrainConfig) -> PretrainConfig:
    """The run's settings with the family member's defaults filled in, or a named error."""
    if cfg.size not in SIZES:
        raise ValueError(f"unknown size {cfg.size!r}; choose from {sorted(SIZES)}")
    if cfg.architecture not in PRETRAINABLE:
        hint = f" (it reads {FAMILY[cfg.architecture]['reuse']}'s weights)" if FAMILY.get(cfg.architecture, {}).get("reuse") else ""
        raise ValueError(f"cannot pretrain {cfg.architecture!r}{hint}; choose from {PRETRAINABLE}")
    cfg = with_member_defaults(cfg)
    store_set = {"fs", "window_s", "input_scale"}
    unknown = set(cfg.model) - set(LamaeConfig.__dataclass_fields__) | store_set & set(cfg.model)
    if unknown:
        raise ValueError(f"unknown or store-determined model settings: {sorted(unknown)}")
    return cfg


# What earlier processes of a run did: a resumed run's bookkeeping covers the whole run.
FRESH = {"first_loss": None, "last_loss": float("nan"), "seconds": 0.0, "ecgs": 0}


def _resume(out: Path, resume: bool, model: Lamae, opt, prep) -> tuple[int, dict]:
    """(first step, what earlier processes did), after loading the latest checkpoint into
    ``model`` and ``opt`` when resuming; refuses a run that is not this one."""
    found = _latest_step(out)
    if found is None:
        return 0, dict(FRESH)
    if not resume:
        raise LamaeError(f"{out}: a run is already here (step {found[0]}); pass --resume to continue it "
                         "or choose another --out")
    start, folder = found
    loaded, saved = load_checkpoint(folder)
    if saved.get("model_format_written", MODEL_FORMAT) != MODEL_FORMAT:
        raise LamaeError(f"{folder}: written by lamae {saved.get('lamae_version', '0.1')} (model format "
                         f"{saved['model_format_written']}); it loads for evaluation, but its run cannot be "
                         "resumed by this version: start a new run")
    if saved["model"] != model.cfg.to_dict() or saved["preprocessing"] != prep.to_dict():
        raise LamaeError(f"{folder}: checkpoint configuration differs from this run's; cannot resume")
    model.load_state_dict(loaded.state_dict())
    try:
        opt.load_state_dict(load_trainer_state(folder)["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # torch's checks of a foreign state
        raise LamaeError(f"{folder / 'trainer.pt'}: its optimizer state does not fit this model ({exc}); resume "
                         "from an earlier checkpoint or start a new run") from None
    t = saved.get("training", {})
    return start, {"first_loss": t.get("first_loss"), "last_loss": t.get("last_loss", float("nan")),
                   "seconds": float(t.get("seconds", 0.0)),
                   "ecgs": int(t.get("ecgs", round(t.get("ecgs_per_s", 0.0) * t.get("seconds", 0.0))))}


def _training_rows(store: EcgStore, cfg: PretrainConfig) -> np.ndarray:
    rows = store.rows(cfg.split)
    if cfg.folds is not None:
        fold_of = store.index["fold"].to_numpy()
        rows = rows[np.isin(fold_of[rows], list(cfg.folds))]
    return rows


class RunRecord:
    """The run folder's bookkeeping on the main process: loss.csv, checkpoints, latest.json,
    and the whole run's first loss, seconds and ECGs (earlier processes included)."""

    def __init__(self, out: Path, cfg: PretrainConfig, before: dict, model: Lamae, opt, prep, extra: dict,
                 device, world: int, main: bool):
        self.out, self.cfg, self.before, self.model, self.opt, self.prep = out, cfg, before, model, opt, prep
        self.extra, self.device, self.world, self.main = extra, device, world, main
        self.first_loss, self.last_loss, self.seen, self.t0 = before["first_loss"], float("nan"), 0, time.time()
        self.log = self.writer = None
        self.tracker = open_tracker(cfg.tracker if main else None, out, asdict(cfg))
        if main:
            new_log = not (out / "loss.csv").exists()
            self.log = (out / "loss.csv").open("a", newline="")
            self.writer = csv.writer(self.log)
            if new_log:
                self.writer.writerow(["step", "loss", "lr", "grad_norm", "seconds", "ecgs_per_s"])

    def elapsed(self) -> float:
        return self.before["seconds"] + time.time() - self.t0

    def ecgs(self) -> int:
        return self.before["ecgs"] + self.seen

    def ecgs_per_s(self, elapsed: float | None = None) -> float:
        """The whole run's ECGs per second (earlier processes included, start-up too)."""
        return self.ecgs() / max(self.elapsed() if elapsed is None else elapsed, 1e-9)

    def step_done(self, loss: float, ecgs: int) -> None:
        self.seen += ecgs
        self.last_loss = loss
        if self.first_loss is None:
            self.first_loss = loss

    def log_row(self, done: int, lr: float, gnorm: float, terms: dict | None = None) -> None:
        """loss.csv's row, and the tracker's metrics: those and the loss's terms (``train/reconstruction``,
        ``train/nce``, ...) of the step logged."""
        el = self.elapsed()
        self.writer.writerow([done, f"{self.last_loss:.6f}", f"{lr:.3e}", f"{gnorm:.4f}", f"{el:.2f}",
                              f"{self.ecgs_per_s(el):.1f}"])
        self.log.flush()
        self.tracker.log(done, {"train/loss": self.last_loss, "train/lr": lr, "train/grad_norm": gnorm,
                                "train/ecgs_per_s": self.ecgs_per_s(el),
                                **{f"train/{k}": v for k, v in (terms or {}).items()}})

    def checkpoint(self, step: int) -> None:
        if self.world > 1:
            torch.distributed.barrier()
        if not self.main:
            return
        name = f"checkpoints/step-{step:07d}"
        el = self.elapsed()
        training = {"first_loss": self.first_loss, "last_loss": self.last_loss, "seconds": el, "ecgs": self.ecgs(),
                    "ecgs_per_s": self.ecgs_per_s(el), "device": str(self.device), "world": self.world}
        save_checkpoint(self.out / name, self.model, self.prep, extra={**self.extra, "step": step, "training": training},
                        trainer_state={"optimizer": self.opt.state_dict(), "step": step})
        atomic_write_text(self.out / "latest.json", json.dumps({"step": step, "path": name}))
        # only this run's checkpoints, up to the one just saved, are ever pruned
        saved = sorted(p for p in (self.out / "checkpoints").glob("step-*[0-9]")
                       if p.name[5:].isdigit() and int(p.name[5:]) <= step)
        for old in saved[: max(0, len(saved) - self.cfg.keep_checkpoints)]:
            shutil.rmtree(old)

    def close(self, finished: bool = False) -> None:
        if finished:
            self.tracker.summary({"train/final_loss": self.last_loss, "train/seconds": self.elapsed(),
                                  "train/ecgs": self.ecgs()})
        self.tracker.close()
        if self.log is not None:
            self.log.close()


def _step_loss(model: Lamae, net, forward, x, present, step: int, cfg: PretrainConfig, rank: int, world: int,
               device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward and backward of one step's batch (this process's rows); returns the step's mean
    loss over every process (gradients are left in the parameters) and its terms: the
    reconstruction and each scalar a model adds beside it (MVMAE's ``align``, the contrastive
    term's ``nce``), unweighted, each a mean over every process's part of the batch."""
    # The masks of the whole global batch, sliced like the rows: one process or many take the same step.
    gen = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + step)
    noise = torch.rand(cfg.batch_size, x.shape[1], model.cfg.n_patches, device=device, generator=gen)[rank::world]
    drop = lead_dropout_mask(gen, present, cfg, rank, world)
    # The step's loss is the mean over all its target patches, whichever process or micro-batch
    # holds them (lead dropout makes the counts differ), so each part is weighted by its share of
    # the step's targets. Gradient accumulation splits the batch into micro-batches this way: the
    # step is the same (up to rounding) with less memory.
    total = model.n_targets(present, drop).float()
    if world > 1:
        torch.distributed.all_reduce(total)
    mean_loss = torch.zeros((), device=device)
    terms: dict[str, torch.Tensor] = {}
    chunks = list(zip(x.tensor_split(cfg.grad_accum), present.tensor_split(cfg.grad_accum),
                      noise.tensor_split(cfg.grad_accum),
                      drop.tensor_split(cfg.grad_accum) if drop is not None else [None] * cfg.grad_accum))
    for i, (xc, pc, nc, dc) in enumerate(chunks):
        sync = world == 1 or i == len(chunks) - 1
        ctx = contextlib.nullcontext() if sync else net.no_sync()
        with ctx, torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            res = forward(xc, torch.arange(x.shape[1], device=device), pc, noise=nc, drop=dc,
                          align_scale=align_scale_at(step, cfg))
            # DDP averages gradients over processes: scale by world to sum them instead
            loss = res["reconstruction"] * (model.n_targets(pc, dc) / total * world)
            # whatever a model adds to its reconstruction (MVMAE's alignment, the contrastive term;
            # zero for the others), a mean over ECGs: weighed by the part's share of the batch
            loss = loss + (res["loss"] - res["reconstruction"]) * (len(xc) / len(x))
        with ctx:
            loss.backward()
        mean_loss += loss.detach()
        for name, value in _loss_terms(res).items():
            share = model.n_targets(pc, dc) / total * world if name == "reconstruction" else len(xc) / len(x)
            terms[name] = terms.get(name, 0) + value.detach().float() * share
    if world > 1:
        torch.distributed.all_reduce(mean_loss)
        for value in terms.values():
            torch.distributed.all_reduce(value)
    return mean_loss / world, {name: value / world for name, value in terms.items()}


def _loss_terms(res: dict) -> dict[str, torch.Tensor]:
    """The terms of a forward's loss to log: the reconstruction, and every other scalar it returns
    beside its total (none for most members). CPC's reconstruction is its InfoNCE."""
    return {name: value for name, value in res.items()
            if name != "loss" and isinstance(value, torch.Tensor) and value.dim() == 0}


def pretrain(cfg: PretrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Pretrain ``cfg``'s model on its store into ``cfg.out``; with ``resume``, continue the run
    there from its latest checkpoint (a finished run returns at once, ``already_finished``)."""
    cfg, out = _checked(cfg), Path(cfg.out)
    store = EcgStore(cfg.store)
    prep = store.preprocessing
    model_cfg = model_config_for(cfg, prep)
    rank, world, device = distributed_context(cfg, pick_device(cfg.device))
    main, progress = rank == 0, progress and rank == 0
    keep_freed_memory(device)
    torch.manual_seed(cfg.seed)
    model = make_model(model_cfg).to(device)
    opt = make_optimizer(param_groups(model, cfg.weight_decay), cfg.lr, device)
    # a new or empty folder, or a run lamae made here: never a folder of the user's own files
    check_claim(out, "run", writes=RUN_FILES)
    start, before = _resume(out, resume, model, opt, prep)
    strays = sorted(f"checkpoints/{p.name}" for p in (out / "checkpoints").glob("step-*")) if start == 0 else []
    if strays:
        raise LamaeError(f"{out}: holds checkpoints ({shown(strays, 3)}) but no latest.json naming one, so they "
                         "belong to no run lamae can resume; choose another --out")
    if start >= cfg.steps:
        return {"out": str(out), "steps": start, "asked_steps": cfg.steps, "final_loss": before["last_loss"],
                "seconds": before["seconds"], "parameters": model.num_parameters(), "already_finished": True,
                "rank": rank}
    if cfg.batch_size % (world * cfg.grad_accum):
        raise LamaeError(f"batch_size {cfg.batch_size} must divide into {world} processes x "
                         f"{cfg.grad_accum} micro-batches")
    if main:
        # rows logged after the checkpoint resumed from (all of them when there is none) are redone
        _trim_log(out / "loss.csv", start)
        _trim_log(out / "metrics.csv", start)
        claim_output(out, "run", writes=RUN_FILES)
        atomic_write_text(out / "pretrain_config.json", json.dumps(asdict(cfg), indent=2))
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # every parameter takes part in every step (IndP's grouped weights included)
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    forward = torch.compile(net) if cfg.compile else net
    # On GPU the batch travels as float16 and is converted there.
    batches = StoreBatches(store, _training_rows(store, cfg), cfg.batch_size, cfg.seed, rank, world,
                           half=device.type == "cuda")
    loader = DataLoader(batches, batch_size=None, sampler=range(start, cfg.steps), num_workers=cfg.num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0)
    extra = {"train": asdict(cfg), "store": {"path": str(store.path), "n_rows": len(store), "digest": store.digest,
                                             "format": store.meta.get("format"), "source": store.meta.get("source")}}
    record = RunRecord(out, cfg, before, model, opt, prep, extra, device, world, main)
    finished = False
    model.train()
    bar = tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step", disable=not progress)
    try:
        for step, (x, present) in zip(range(start, cfg.steps), loader):
            x, present = x.to(device, non_blocking=True).float(), present.to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            opt.zero_grad(set_to_none=True)
            try:
                mean_loss, terms = _step_loss(model, net, forward, x, present, step, cfg, rank, world, device)
            except torch.linalg.LinAlgError:  # weights gone to inf/nan: the lead field's solve fails first
                mean_loss, terms = torch.tensor(float("nan")), {}
            if not torch.isfinite(mean_loss):
                saved = (f"The last good checkpoint is named in {out / 'latest.json'}" if (out / "latest.json").exists()
                         else "No checkpoint had been saved yet")
                raise LamaeError(f"loss became {mean_loss.item()} at step {step}; stopping. {saved}; try a lower "
                                 "--base-lr or check the data")
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            record.step_done(mean_loss.item(), x.shape[0] * world)
            done = step + 1
            if main and (done % cfg.log_every == 0 or done == cfg.steps):
                record.log_row(done, lr_at(step, cfg), float(gnorm), {k: v.item() for k, v in terms.items()})
                bar.set_postfix(loss=f"{record.last_loss:.4f}")
            bar.update()
            if done % cfg.checkpoint_every == 0 and done != cfg.steps:
                record.checkpoint(done)
        record.checkpoint(cfg.steps)
        finished = True
    finally:
        bar.close()
        record.close(finished)
    if main:
        plot_loss(out / "loss.csv", out / "loss.png")
    return {"out": str(out), "steps": cfg.steps, "final_loss": record.last_loss,
            "seconds": record.elapsed(), "parameters": model.num_parameters(), "rank": rank,
            "ecgs_per_s": record.ecgs_per_s()}


def ensure_pretrained(cfg: PretrainConfig, *, progress: bool = True) -> bool:
    """Pretrain (resuming) unless the run in ``cfg.out`` has reached ``cfg.steps`` already.
    Returns whether any training was done. Used wherever a command needs a pretrained run."""
    if steps_done(cfg.out) >= cfg.steps:
        check_finished_run(cfg)
        return False
    pretrain(cfg, resume=True, progress=progress)
    return True


def check_finished_run(cfg: PretrainConfig) -> None:
    """Refuse to reuse the finished run in ``cfg.out`` if its model is not the one ``cfg`` builds
    today. A resumed run is checked when it loads; a finished one was reused unchecked, so a
    member's changed default (LAMAE's ``decode_ratio`` on 2026-12-04) would have been reported
    under the new setting. Reads the latest checkpoint's config.json only, not its weights."""
    found = _latest_step(Path(cfg.out))
    if found is None:
        return
    path = found[1] / "config.json"
    try:
        saved = json.loads(path.read_text())
        stored = LamaeConfig.from_dict(saved["model"], saved.get("model_format", 1))
        now = model_config_for(cfg, Preprocessing.from_dict(saved["preprocessing"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise LamaeError(f"{path}: cannot be read as a lamae checkpoint config ({exc})") from None
    a, b = stored.to_dict(), now.to_dict()
    if now.encoder != "router":  # the routers' settings change no other model
        for key in FORMAT_2_ROUTERS:
            a.pop(key), b.pop(key)
    trained_on = saved.get("store", {}).get("digest") if isinstance(saved.get("store"), dict) else None
    # the digest is meta.json's checksum: no need to verify every row each time a run is reused
    if cfg.store and trained_on is not None and trained_on != EcgStore(cfg.store, verify=False).digest:
        raise LamaeError(f"{cfg.out}: this finished run was pretrained on other data than the store {cfg.store} "
                         "holds now (the store's content digest differs); delete the run to retrain it, or choose "
                         "another out folder")
    if a != b:
        raise LamaeError(f"{cfg.out}: this finished run was trained with other model settings than "
                         f"{cfg.architecture} with these settings builds now ({first_difference(a, b)}); "
                         "name the setting to reuse it, delete the run to retrain it, or choose another out folder")


def plot_loss(csv_path: Path, png_path: Path) -> None:
    import pandas as pd

    from ..plots import _plt

    plt = _plt()

    df = pd.read_csv(csv_path)
    if df.empty:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(df["step"], df["loss"], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("masked-patch MSE")
    ax.set_title("LAMAE pretraining loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, png_path, dpi=120)
    plt.close(fig)
