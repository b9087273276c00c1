"""Checkpoints: safetensors weights + a JSON config that includes the preprocessing.

A checkpoint folder holds ``model.safetensors``, ``config.json``, ``MODEL_CARD.md`` and (for
resuming) a ``trainer.pt`` with the optimizer state, read back with ``weights_only=True``. A run
folder holds ``checkpoints/step-NNNNNNN/`` and ``latest.json`` naming the newest one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import __version__
from .data.preprocess import Preprocessing
from .errors import LamaeError
from .modelcard import write_model_card
from .models.lamae import MODEL_FORMAT, Lamae, LamaeConfig, migrate_v1_state


def save_checkpoint(folder: Path, model: Lamae, prep: Preprocessing, *, extra: dict | None = None,
                    trainer_state: dict | None = None) -> Path:
    """Write a checkpoint atomically (into a temporary folder, then rename)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    config = {"lamae_version": __version__, "model_format": MODEL_FORMAT, "model": model.cfg.to_dict(),
              "preprocessing": prep.to_dict(), **(extra or {})}
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    write_model_card(tmp)
    if trainer_state is not None:
        torch.save(trainer_state, tmp / "trainer.pt")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a run folder (its latest checkpoint)."""
    p = Path(path)
    if (p / "model.safetensors").exists():
        return p
    latest = p / "latest.json"
    if latest.exists():
        return p / json.loads(latest.read_text())["path"]
    raise LamaeError(f"{p}: neither a checkpoint (model.safetensors) nor a run folder (latest.json)")


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[Lamae, dict]:
    """Load a model and its config (with preprocessing) from a checkpoint or run folder."""
    folder = resolve_checkpoint(path)
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise LamaeError(f"{folder}: config.json is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise LamaeError(f"{cfg_path}: not valid JSON ({exc})") from None
    if not (folder / "model.safetensors").exists():
        raise LamaeError(f"{folder}: model.safetensors is missing")
    if "model" not in config or "preprocessing" not in config:
        raise LamaeError(f"{cfg_path}: not a lamae checkpoint config (needs 'model' and 'preprocessing')")
    version = config.get("model_format", 1)  # lamae 0.1 wrote no format number
    try:
        model_cfg = LamaeConfig.from_dict(config["model"], version)
        model = Lamae(model_cfg)
    except (TypeError, ValueError) as exc:
        raise LamaeError(f"{cfg_path}: invalid model configuration ({exc}; written by lamae "
                         f"{config.get('lamae_version', '?')})") from None
    try:
        state = load_file(str(folder / "model.safetensors"), device=str(map_location))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise LamaeError(f"{folder / 'model.safetensors'}: cannot be read ({exc})") from None
    if version == 1:
        state = migrate_v1_state(model_cfg, state)
        # from here on the checkpoint reads like one written today
        config = {**config, "model": model_cfg.to_dict(), "model_format": MODEL_FORMAT,
                  "model_format_written": version}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise LamaeError(f"{folder}: weights do not match config.json ({str(exc).splitlines()[1:2]})") from None
    if missing or unexpected:
        raise LamaeError(f"{folder}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    config["path"] = str(folder)
    return model, config


def load_trainer_state(folder: Path) -> dict:
    return torch.load(Path(folder) / "trainer.pt", map_location="cpu", weights_only=True)
