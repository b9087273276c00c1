"""Supervised training (Scratch and fine-tuning): its own settings, and the model it returns."""

import numpy as np
import pytest
import torch

from lamae.models.config import LamaeConfig
from lamae.models.family import build_model
from lamae.train.pretrain import PretrainConfig
from lamae.train.supervised import SupervisedConfig, predict_supervised, train_supervised


def test_scratch_gets_the_pretraining_budget_and_nothing_else():
    pre = PretrainConfig(steps=123, batch_size=8, base_lr=0.01, warmup_steps=7, seed=4)
    cfg = SupervisedConfig.like(pre, device="cpu")
    assert (cfg.steps, cfg.batch_size, cfg.base_lr, cfg.warmup_steps, cfg.seed) == (123, 8, 0.01, 7, 4)
    assert not hasattr(cfg, "store") and not hasattr(cfg, "lead_dropout")
    assert cfg.lr == pytest.approx(0.01 * 8 / 256)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(batch_size=True), dict(base_lr=-1.0)])
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(ValueError):
        SupervisedConfig(**bad)


def test_fine_tuning_starts_from_the_weights_given_and_leaves_them_alone(store):
    torch.manual_seed(0)
    mcfg = LamaeConfig(fs=100.0, window_s=2.0, n_latents=4)
    init = build_model("tiny", fs=100.0, window_s=2.0, n_latents=4)
    before = {k: v.clone() for k, v in init.state_dict().items()}
    rows = store.rows("train")[:24]
    y = np.eye(2, dtype=np.float32)[np.arange(len(rows)) % 2]
    cfg = SupervisedConfig(steps=3, batch_size=8, base_lr=0.1, warmup_steps=1)
    model, head, seconds = train_supervised(mcfg, store, rows, y, cfg, progress=False, init=init)
    assert all(torch.equal(before[k], v) for k, v in init.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    p = predict_supervised(model, head, store, rows, batch_size=10)
    assert p.shape == (len(rows), 2) and ((p >= 0) & (p <= 1)).all() and seconds >= 0


def test_scratch_training_is_seeded(store):
    mcfg = LamaeConfig(fs=100.0, window_s=2.0, n_latents=4)
    rows = store.rows("train")[:16]
    y = np.eye(2, dtype=np.float32)[np.arange(len(rows)) % 2]
    cfg = SupervisedConfig(steps=2, batch_size=8, warmup_steps=1, seed=5)
    a = predict_supervised(*train_supervised(mcfg, store, rows, y, cfg, progress=False)[:2], store, rows)
    b = predict_supervised(*train_supervised(mcfg, store, rows, y, cfg, progress=False)[:2], store, rows)
    np.testing.assert_array_equal(a, b)
