"""Checkpoints written by lamae 0.1 (tests/fixtures/v0_1, made by that version's code with its
outputs on a fixed input) load into today's components and give the same outputs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lamae.checkpoint import load_checkpoint, save_checkpoint
from lamae.data.preprocess import Preprocessing
from lamae.errors import LamaeError
from lamae.models.config import MODEL_FORMAT
from lamae.models.family import build_model

FIXTURES = Path(__file__).parent / "fixtures" / "v0_1"
OLD = {"global": ("per_lead", "latent"), "nvembed": ("per_lead", "latent"), "tokens": ("per_lead", "latent"),
       "mean": ("per_lead", "mean"), "inds": ("per_lead", "none"), "indp": ("private", "none"),
       "joint": ("joint", "none")}


@pytest.mark.parametrize("name", sorted(OLD))
def test_v0_1_checkpoints_load_and_reproduce_their_outputs(name):
    ref = np.load(FIXTURES / "reference.npz")
    model, config = load_checkpoint(FIXTURES / name)
    assert (model.cfg.encoder, model.cfg.aggregator) == OLD[name]
    assert config["model_format_written"] == 1 and config["model_format"] == MODEL_FORMAT
    x, noise = torch.from_numpy(ref["x"]), torch.from_numpy(ref["noise"])
    present, drop = torch.from_numpy(ref["present"]), torch.from_numpy(ref["drop"])
    with torch.no_grad():
        out = model.eval()(x, torch.arange(12), present, noise=noise, drop=drop)
        emb, weights = model.embed(x, torch.arange(12), present)
        lead_cls, _ = model.embed(x, torch.arange(12), present, pooling="leads")
    np.testing.assert_allclose(out["pred"].numpy(), ref[f"{name}_pred"], atol=1e-6)
    np.testing.assert_allclose(out["loss"].numpy(), ref[f"{name}_loss"], atol=1e-6)
    np.testing.assert_allclose(emb.numpy(), ref[f"{name}_embed"], atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref[f"{name}_weights"], atol=1e-6)
    np.testing.assert_allclose(lead_cls.numpy(), ref[f"{name}_leads"], atol=1e-5)


def test_a_checkpoint_from_a_newer_format_is_refused_naming_the_version(tmp_path):
    folder = save_checkpoint(tmp_path / "ckpt", build_model("tiny", window_s=2.0), Preprocessing(window_s=2.0))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_format"] == MODEL_FORMAT
    config["model_format"] = MODEL_FORMAT + 1
    config["lamae_version"] = "9.0.0"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LamaeError, match=rf"model format {MODEL_FORMAT + 1} .*upgrade lamae.*written by lamae 9\.0\.0"):
        load_checkpoint(folder)


def test_a_v0_1_run_is_not_resumed(tmp_path, store):
    """Evaluation reads old checkpoints; continuing their training is refused with the version."""
    from lamae.train.pretrain import PretrainConfig, pretrain

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    # the fixture was saved at step 0 (latest.json must name the step its checkpoint was saved at)
    shutil.copytree(FIXTURES / "global", run / "checkpoints" / "step-0000000")
    (run / "latest.json").write_text(json.dumps({"step": 0, "path": "checkpoints/step-0000000"}))
    cfg = PretrainConfig(store=str(store.path), out=str(run), steps=2, batch_size=4, device="cpu")
    with pytest.raises(LamaeError, match="lamae 0.1.0 .*model format 1.*start a new run"):
        pretrain(cfg, resume=True, progress=False)


ROUTER = Path(__file__).parent / "fixtures" / "router_77dcfd5"


@pytest.mark.parametrize("name", ["lamae", "lamae-attn", "gates"])
def test_router_checkpoints_from_before_the_token_level_read_give_the_same_outputs(name):
    """Written at 77dcfd5, where routers and decoder read the latents through the (lead x position)
    grid with fused attention; today's read works on the tokens alone (make_reference.py there).
    The same weights give the same outputs to float32 rounding (stated tolerance: 1e-5)."""
    ref = np.load(ROUTER / "reference.npz")
    model, _ = load_checkpoint(ROUTER / name)
    x, noise = torch.from_numpy(ref["x"]), torch.from_numpy(ref["noise"])
    present, drop = torch.from_numpy(ref["present"]), torch.from_numpy(ref["drop"])
    with torch.no_grad():
        out = model.eval()(x, torch.arange(12), present, noise=noise, drop=drop)
        emb, weights = model.embed(x, torch.arange(12), present)
    assert float(out["loss"]) > 0.1  # a real reconstruction error, not a degenerate model
    # format 2 had full-width routers with the latents' MLP; the settings it never wrote say so
    assert (model.cfg.router_width, model.cfg.latent_mlp, _["model_format_written"]) == (1.0, True, 2)
    np.testing.assert_allclose(out["pred"].numpy(), ref[f"{name}_pred"], atol=1e-5)
    np.testing.assert_allclose(out["loss"].numpy(), ref[f"{name}_loss"], atol=1e-5)
    np.testing.assert_allclose(emb.numpy(), ref[f"{name}_embed"], atol=1e-5)
    np.testing.assert_allclose(weights.numpy(), ref[f"{name}_weights"], atol=1e-5)


def test_a_run_resumes_across_a_setting_added_since_its_checkpoint(store, tmp_path):
    """A setting added to the model after a checkpoint was written (same model format) takes its
    default, which is what the run used: the run resumes instead of 'configuration differs'."""
    from lamae.train.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(store=str(store.path), out=str(tmp_path / "run"), steps=4, batch_size=8,
                         warmup_steps=1, checkpoint_every=2, model={"n_latents": 4})
    pretrain(PretrainConfig(**{**cfg.__dict__, "steps": 2}), progress=False)
    written = tmp_path / "run" / "checkpoints" / "step-0000002" / "config.json"
    config = json.loads(written.read_text())
    del config["model"]["cpc_steps"]  # as written before the setting existed
    written.write_text(json.dumps(config))
    assert pretrain(cfg, resume=True, progress=False)["steps"] == 4


@pytest.mark.parametrize("routers", [{"router_width": 1.0, "latent_mlp": True},     # LAMAE for some hours of 2026-12-07
                                     {"router_width": 0.25, "latent_mlp": False}])  # LAMAE of 2026-12-03 to -07
def test_lamae_checkpoints_of_earlier_routers_load_as_they_were_trained(tmp_path, routers):
    """LAMAE's routers changed on 2026-12-07 (narrow with the latents' MLP): a LAMAE written with
    either earlier design loads with its own routers and gives the outputs it gave, not today's."""
    from dataclasses import replace

    from lamae.models.family import make_model, model_config

    today = model_config("LAMAE", "tiny")
    assert (today.router_width, today.latent_mlp) != (routers["router_width"], routers["latent_mlp"])
    torch.manual_seed(0)
    model = make_model(replace(today, window_s=2.0, **routers)).eval()
    path = save_checkpoint(tmp_path / "ckpt", model, Preprocessing(fs=100.0, window_s=2.0))
    loaded, _ = load_checkpoint(path)
    assert (loaded.cfg.router_width, loaded.cfg.latent_mlp) == (routers["router_width"], routers["latent_mlp"])
    x = torch.randn(3, 12, 200)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.eval().embed(x, torch.arange(12))[0].numpy(),
                                      model.embed(x, torch.arange(12))[0].numpy())
