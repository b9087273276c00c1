"""Experiment tracking: ``--tracker csv | tensorboard | wandb`` for pretrain, finetune and compare.

Every tracker takes the same calls: ``log(step, {name: value})`` for what changes during
training (loss, learning rate, gradient norm, ECGs/s) and ``summary({name: value})`` for
evaluation results. ``csv`` (the default, no dependency) writes ``metrics.csv`` (step, name,
value) in the run folder; ``tensorboard`` writes event files under ``tensorboard/`` (``pip
install lamae[tracking]``; view with ``tensorboard --logdir RUN``); ``wandb`` logs to Weights &
Biases (the same extra; ``WANDB_MODE=offline`` keeps everything in ``RUN/wandb`` to upload later
with ``wandb sync``). The run folder's own ``loss.csv`` is written whatever the tracker.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from .errors import LamaeError
from .optional import require

TRACKERS = ("csv", "tensorboard", "wandb")


def _numbers(metrics: dict) -> dict[str, float]:
    """The entries that are finite numbers (a tracker cannot plot the rest)."""
    out = {}
    for k, v in metrics.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out[str(k)] = f
    return out


class CsvTracker:
    def __init__(self, folder: Path, config: dict, name: str):
        self.path = folder / "metrics.csv"
        new = not self.path.exists()
        self.file = self.path.open("a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(["step", "name", "value"])

    def log(self, step: int, metrics: dict) -> None:
        for k, v in _numbers(metrics).items():
            self.writer.writerow([step, k, f"{v:.6g}"])
        self.file.flush()

    def summary(self, metrics: dict) -> None:
        self.log(-1, metrics)  # step -1: a result of the whole run

    def close(self) -> None:
        self.file.close()


class TensorBoardTracker:
    def __init__(self, folder: Path, config: dict, name: str):
        tb = require("torch.utils.tensorboard", "tracking", "--tracker tensorboard", package="tensorboard")
        self.writer = tb.SummaryWriter(log_dir=str(folder / "tensorboard"))
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(config.items())))
        self.step = 0

    def log(self, step: int, metrics: dict) -> None:
        self.step = max(self.step, step)
        for k, v in _numbers(metrics).items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def summary(self, metrics: dict) -> None:
        self.log(self.step, metrics)

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, folder: Path, config: dict, name: str):
        wandb = require("wandb", "tracking", "--tracker wandb")
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "lamae"), name=name, dir=str(folder),
                                  config=config, reinit="finish_previous")
        except Exception as exc:  # no login, no network: say what to do instead of a wandb traceback
            raise LamaeError(f"--tracker wandb could not start a run ({type(exc).__name__}: {exc}); log in with "
                             "`wandb login`, or set WANDB_MODE=offline to keep the run on disk") from None

    def log(self, step: int, metrics: dict) -> None:
        self.run.log(_numbers(metrics), step=step)

    def summary(self, metrics: dict) -> None:
        for k, v in _numbers(metrics).items():
            self.run.summary[k] = v

    def close(self) -> None:
        self.run.finish()


class NoTracker:
    def log(self, step: int, metrics: dict) -> None:
        pass

    def summary(self, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


def open_tracker(kind: str | None, folder: str | os.PathLike, config: dict | None = None, name: str | None = None):
    """A tracker writing into ``folder`` (created); ``None`` gives one that records nothing
    (processes other than the main one of a multi-process run)."""
    if kind is None:
        return NoTracker()
    if kind not in TRACKERS:
        raise LamaeError(f"unknown tracker {kind!r}; choose from {', '.join(TRACKERS)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    flat = {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for k, v in (config or {}).items()}
    cls = {"csv": CsvTracker, "tensorboard": TensorBoardTracker, "wandb": WandbTracker}[kind]
    return cls(folder, flat, name or folder.name)
