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

from .version import __version__
from .data.preprocess import Preprocessing
from .errors import LamaeError
from .files import file_sha256, write_error
from .modelcard import write_model_card
from .models.config import MODEL_FORMAT, LamaeConfig
from .models.lamae import Lamae, migrate_v1_state
from .models.family import make_model


def save_checkpoint(folder: Path, model: Lamae, prep: Preprocessing, *, extra: dict | None = None,
                    trainer_state: dict | None = None) -> Path:
    """Write a checkpoint atomically (into a temporary folder, then rename). A failed write (a
    full disk, a read-only file system) raises a one-line LamaeError naming the folder and the
    cause, and leaves the previous checkpoint and no temporary folder behind."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        config = {"lamae_version": __version__, "model_format": MODEL_FORMAT, "model": model.cfg.to_dict(),
                  "preprocessing": prep.to_dict(), "weights_sha256": file_sha256(tmp / "model.safetensors"),
                  **(extra or {})}
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        write_model_card(tmp)
        if trainer_state is not None:
            torch.save(trainer_state, tmp / "trainer.pt")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except Exception as exc:  # OSError; torch's zip writer (RuntimeError) and safetensors have their own types
        # the cause is read while the partial files still take their space: removing them first
        # would free the disk and hide that it was full
        error = write_error(folder, exc, "write the checkpoint")
        shutil.rmtree(tmp, ignore_errors=True)
        raise error from None
    return folder


def read_latest(run: str | os.PathLike) -> dict | None:
    """A run folder's ``latest.json`` (``{"step": N, "path": "checkpoints/step-N"}``), checked;
    None when the run has none yet."""
    latest = Path(run) / "latest.json"
    if not latest.exists():
        return None
    try:
        data = json.loads(latest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LamaeError(f"{latest}: not valid JSON ({exc}); {_mend_hint(run)}") from None
    if (not isinstance(data, dict) or isinstance(data.get("step"), bool) or not isinstance(data.get("step"), int)
            or not isinstance(data.get("path"), str)):
        raise LamaeError(f"{latest}: expected {{\"step\": N, \"path\": \"checkpoints/step-N\"}}, got {str(data)[:80]}")
    # the step must be the one the checkpoint it names was saved at: a latest.json claiming more
    # would make a resumed run report itself finished without training
    config = Path(run) / data["path"] / "config.json"
    if config.is_file():
        try:
            saved = json.loads(config.read_text()).get("step")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
            saved = None  # load_checkpoint names a damaged config.json
        if isinstance(saved, int) and not isinstance(saved, bool) and saved != data["step"]:
            raise LamaeError(f"{latest}: says step {data['step']}, but {data['path']} was saved at step {saved}; "
                             f"latest.json was edited or damaged: {_mend_hint(run)}")
    return data


def _mend_hint(run) -> str:
    """How to repair a run's latest.json: point it at the newest checkpoint folder there is."""
    saved = sorted((Path(run) / "checkpoints").glob("step-*[0-9]"))
    if not saved:
        return "point to a checkpoint folder directly"
    newest = saved[-1]
    step = newest.name.split("-")[-1].lstrip("0") or "0"
    return (f"the newest checkpoint is {newest.relative_to(run)}: write "
            f"{{\"step\": {step}, \"path\": \"{newest.relative_to(run)}\"}} into it, or point to a checkpoint "
            "folder directly")


def steps_done(run: str | os.PathLike) -> int:
    """Steps a run folder has finished (its latest checkpoint), 0 when it has none."""
    info = read_latest(run)
    return 0 if info is None else info["step"]


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a run folder (its latest checkpoint)."""
    p = Path(path)
    if (p / "model.safetensors").exists():
        return p
    if not p.exists():
        raise LamaeError(f"{p}: no such checkpoint or run folder")
    latest = read_latest(p)
    if latest is not None:
        folder = p / latest["path"]
        if not (folder / "model.safetensors").exists():
            raise LamaeError(f"{p / 'latest.json'}: names {latest['path']}, which holds no model.safetensors")
        return folder
    raise LamaeError(f"{p}: neither a checkpoint (model.safetensors) nor a run folder (latest.json)")


def _check_weights(path: Path, state: dict) -> None:
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            raise LamaeError(f"{path}: weight {name} has dtype {tensor.dtype}; lamae weights are floating point")
        if not torch.isfinite(tensor).all():
            raise LamaeError(f"{path}: weight {name} holds NaN or inf; the checkpoint is damaged "
                             "(or was saved after the loss diverged)")


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[Lamae, dict]:
    """Load a model and its config (with preprocessing) from a checkpoint or run folder.

    config.json is checked field by field before anything is built (sizes are bounded, so a
    damaged or hostile file cannot ask for terabytes); model.safetensors is checked against the
    sha256 config.json records (checkpoints from before lamae 0.3 have none) and every weight
    must be finite floating point."""
    folder = resolve_checkpoint(path)
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise LamaeError(f"{folder}: config.json is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LamaeError(f"{cfg_path}: not valid JSON ({exc})") from None
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise LamaeError(f"{folder}: model.safetensors is missing")
    if not weights.is_file():
        raise LamaeError(f"{weights}: is not a file (a folder?); the checkpoint is damaged")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "preprocessing" not in config:
        raise LamaeError(f"{cfg_path}: not a lamae checkpoint config (needs a 'model' mapping and 'preprocessing')")
    version = config.get("model_format", 1)  # lamae 0.1 wrote no format number
    try:
        prep = Preprocessing.from_dict(config["preprocessing"])
    except (TypeError, ValueError) as exc:
        raise LamaeError(f"{cfg_path}: invalid preprocessing ({exc})") from None
    try:
        model_cfg = LamaeConfig.from_dict(config["model"], version)
    except (TypeError, ValueError) as exc:
        raise LamaeError(f"{cfg_path}: invalid model configuration ({exc}; written by lamae "
                         f"{config.get('lamae_version', '?')})") from None
    if abs(prep.fs - model_cfg.fs) > 1e-9 or prep.n_samples != model_cfg.n_samples:
        raise LamaeError(f"{cfg_path}: the checkpoint contradicts itself: its preprocessing makes "
                         f"{prep.n_samples} samples at {prep.fs:g} Hz, its model reads {model_cfg.n_samples} "
                         f"at {model_cfg.fs:g} Hz; the checkpoint was edited or damaged")
    expected = config.get("weights_sha256")
    if expected is not None and file_sha256(weights) != expected:
        raise LamaeError(f"{weights}: sha256 does not match config.json's weights_sha256; the file was "
                         "changed or damaged after it was written")
    try:
        state = load_file(str(weights), device=str(map_location))
    except Exception as exc:  # safetensors raises its own error types on damaged files
        raise LamaeError(f"{weights}: cannot be read ({exc})") from None
    _check_weights(weights, state)
    model = make_model(model_cfg)
    if version == 1:
        state = migrate_v1_state(model_cfg, state)
    # from here on the checkpoint reads like one written today: its settings in full (a setting
    # added since it was written, at the value the checkpoint ran), and the format it was written in
    config = {**config, "model": model_cfg.to_dict(), "model_format": MODEL_FORMAT}
    if version != MODEL_FORMAT:
        config["model_format_written"] = version
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise LamaeError(f"{folder}: weights do not match config.json ({str(exc).splitlines()[1:2]})") from None
    if missing or unexpected:
        raise LamaeError(f"{folder}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    config["path"] = str(folder)
    return model, config


def load_trainer_state(folder: Path) -> dict:
    """A checkpoint's optimizer state for resuming, read with ``weights_only=True`` (a pickle that
    would run code is refused); a missing, damaged or foreign file is named, not a traceback."""
    path = Path(folder) / "trainer.pt"
    if not path.is_file():
        raise LamaeError(f"{path}: missing; this checkpoint has no optimizer state to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, plain text, a pickle with code: torch's own error types
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            cause = "it holds Python objects that could run code when loaded, so it was not loaded"
        else:
            cause = f"cannot be read ({type(exc).__name__}: {text[:160]})"
        raise LamaeError(f"{path}: {cause}; a damaged or foreign file: resume from an earlier checkpoint "
                         "or start a new run") from None
    if not isinstance(state, dict) or not isinstance(state.get("optimizer"), dict):
        raise LamaeError(f"{path}: holds no optimizer state (expected a mapping with 'optimizer'); a damaged or "
                         "foreign file: resume from an earlier checkpoint or start a new run")
    return state
