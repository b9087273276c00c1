"""--tracker csv | tensorboard | wandb: the same metrics reach each tracker, and can be read back."""

import csv

import pytest

from lamae.errors import LamaeError
from lamae.tracking import open_tracker
from lamae.train.pretrain import PretrainConfig, pretrain


def _pretrain(store, out, tracker):
    return pretrain(PretrainConfig(store=str(store.path), out=str(out), steps=4, batch_size=8, base_lr=0.05,
                                   warmup_steps=1, log_every=2, checkpoint_every=100, tracker=tracker,
                                   model={"n_latents": 4}), progress=False)


def test_csv_tracker_logs_training_and_the_run_summary(store, tmp_path):
    _pretrain(store, tmp_path / "run", "csv")
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    names = {(r["step"], r["name"]) for r in rows}
    for name in ("train/loss", "train/lr", "train/grad_norm", "train/ecgs_per_s"):
        assert ("2", name) in names and ("4", name) in names
    assert ("-1", "train/final_loss") in names
    assert all(float(r["value"]) == float(r["value"]) for r in rows)  # no NaN written


def test_tensorboard_event_files_read_back(store, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'lamae[tracking]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _pretrain(store, tmp_path / "run", "tensorboard")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/grad_norm", "train/ecgs_per_s", "train/final_loss"} <= set(
        events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4]


def test_wandb_offline_run_is_written(store, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install 'lamae[tracking]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    _pretrain(store, tmp_path / "run", "wandb")
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*/*.wandb"))
    assert len(runs) == 1
    data = runs[0].read_bytes()
    for name in (b"train/loss", b"train/grad_norm", b"train/final_loss"):
        assert name in data


def test_unknown_tracker_is_refused(tmp_path):
    with pytest.raises(LamaeError, match="unknown tracker"):
        open_tracker("mlflow", tmp_path)
    with pytest.raises(ValueError, match="tracker"):
        PretrainConfig(tracker="mlflow")
