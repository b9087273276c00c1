import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from lamae.checkpoint import load_checkpoint
from lamae.errors import LamaeError
from lamae.train import pretrain as pretrain_mod
from lamae.train.common import lr_at
from lamae.train.pretrain import PretrainConfig, pretrain


def cfg(store, out, **kw):
    base = dict(store=str(store.path), out=str(out), size="tiny", steps=24, batch_size=16, base_lr=0.05,
                warmup_steps=3, checkpoint_every=8, log_every=4, model={"n_latents": 4})
    base.update(kw)
    return PretrainConfig(**base)


def test_schedule_warms_up_then_decays():
    c = PretrainConfig(steps=100, warmup_steps=10, base_lr=2.56e-2, batch_size=10)
    lrs = [lr_at(s, c) for s in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(c.lr)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] < 0.05 * c.lr


@pytest.mark.parametrize("model", [{"decode_ratio": 1.0}, {"decode_ratio": 0.5}], ids=["all-patches", "partial-decoding"])
def test_pretraining_lowers_the_loss(synth_dir, tmp_path, model):
    # 5-s windows (4 visible patches per lead at 75% masking) are the shortest from which the
    # masked patches can be learned quickly; the loss must fall well below the mean-predictor's 1.0.
    # With partial decoding (LAMAE's default, half the masked patches) the loss is scored on
    # half the masked patches, the same mean.
    from lamae.data.preprocess import Preprocessing
    from lamae.data.sources import MimicEcgReader
    from lamae.data.store import prepare

    store5 = prepare(MimicEcgReader(synth_dir), tmp_path / "store5", Preprocessing(fs=100, window_s=5.0),
                     progress=False)
    pretrain(cfg(store5, tmp_path / "run", steps=400, batch_size=32, base_lr=0.024, warmup_steps=20,
                 checkpoint_every=1000, log_every=20, model={"n_latents": 4, **model}), progress=False)
    loss = pd.read_csv(tmp_path / "run" / "loss.csv")["loss"].to_numpy()
    assert loss[-3:].mean() < 0.93 * loss[:2].mean(), loss


def test_checkpoints_and_outputs(store, tmp_path):
    out = tmp_path / "run"
    pretrain(cfg(store, out), progress=False)
    latest = json.loads((out / "latest.json").read_text())
    assert latest["step"] == 24
    ck = out / latest["path"]
    assert {p.name for p in ck.iterdir()} == {"model.safetensors", "config.json", "trainer.pt", "MODEL_CARD.md"}
    config = json.loads((ck / "config.json").read_text())
    assert config["preprocessing"] == store.meta["preprocessing"]
    assert config["model"]["fs"] == 100.0 and config["model"]["window_s"] == 2.0
    assert len(list((out / "checkpoints").iterdir())) == 3  # steps 8, 16, 24
    assert (out / "loss.png").stat().st_size > 1000
    assert list(pd.read_csv(out / "loss.csv")["step"]) == [4, 8, 12, 16, 20, 24]
    model, _ = load_checkpoint(out)
    assert load_file(str(ck / "model.safetensors")).keys() == model.state_dict().keys()


def test_resume_after_a_crash_matches_an_uninterrupted_run(store, tmp_path, monkeypatch):
    pretrain(cfg(store, tmp_path / "full"), progress=False)

    real = pretrain_mod.lr_at

    def crash_at_step_13(step, c):
        if step == 13:
            raise KeyboardInterrupt
        return real(step, c)

    monkeypatch.setattr(pretrain_mod, "lr_at", crash_at_step_13)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg(store, tmp_path / "crashed"), progress=False)
    monkeypatch.setattr(pretrain_mod, "lr_at", real)
    assert json.loads((tmp_path / "crashed" / "latest.json").read_text())["step"] == 8
    with pytest.raises(LamaeError, match="--resume"):
        pretrain(cfg(store, tmp_path / "crashed"), progress=False)
    pretrain(cfg(store, tmp_path / "crashed"), resume=True, progress=False)

    a, _ = load_checkpoint(tmp_path / "full")
    b, _ = load_checkpoint(tmp_path / "crashed")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name  # bitwise on CPU
    la = pd.read_csv(tmp_path / "full" / "loss.csv")
    lb = pd.read_csv(tmp_path / "crashed" / "loss.csv")
    np.testing.assert_array_equal(la["loss"].to_numpy(), lb["loss"].to_numpy())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(store, tmp_path, monkeypatch):
    real = pretrain_mod.StoreBatches.__getitem__

    def corrupt_from_step_10(self, step):
        x, present = real(self, step)
        return (x * float("nan") if step >= 10 else x), present

    monkeypatch.setattr(pretrain_mod.StoreBatches, "__getitem__", corrupt_from_step_10)
    with pytest.raises(LamaeError, match="loss became nan at step 10"):
        pretrain(cfg(store, tmp_path / "run"), progress=False)
    assert json.loads((tmp_path / "run" / "latest.json").read_text())["step"] == 8
    model, _ = load_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(p).all() for p in model.state_dict().values())


def test_weight_decay_applies_to_linear_weights_only():
    from lamae.models import build_model
    from lamae.train.common import param_groups

    m = build_model("tiny", window_s=2.0)
    decay, no_decay = param_groups(m, 0.05)
    names = {id(p): n for n, p in m.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert {"patch_embed.weight", "encoder.blocks.0.attn.qkv.weight", "encoder.routers.0.q_lat.weight",
            "decoder.reads.0.kv.weight"} <= decayed
    assert not decayed & {"lead_embed.weight", "encoder.latents", "encoder.cls_position", "cls_token",
                          "patch_embed.bias", "encoder.blocks.0.norm1.weight", "decoder.mask_token"}
    # IndP's grouped encoder: its matrices are decayed as the Linear weights they replace, its
    # norms and biases are not
    m = build_model("tiny", window_s=2.0, encoder="private", aggregator="none")
    decay, no_decay = param_groups(m, 0.05)
    names = {id(p): n for n, p in m.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert {"encoder.layers.0.qkv.weight", "encoder.layers.0.fc2.weight"} <= decayed
    assert not decayed & {"encoder.layers.0.qkv.bias", "encoder.layers.0.norm1.weight"}


def test_gradient_accumulation_takes_the_same_step(store, tmp_path):
    pretrain(cfg(store, tmp_path / "a", steps=4, checkpoint_every=100), progress=False)
    pretrain(cfg(store, tmp_path / "b", steps=4, checkpoint_every=100, grad_accum=4), progress=False)
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    worst = max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert worst < 1e-4, worst


def test_limb_dropout_hides_the_six_limb_leads_together():
    from lamae.train.pretrain import lead_dropout_mask

    present = torch.ones(400, 12, dtype=torch.bool)
    present[:5, 2] = False
    c = PretrainConfig(batch_size=400, limb_dropout=0.3)
    drop = lead_dropout_mask(torch.Generator().manual_seed(0), present, c)
    limb = drop[:, :6]
    assert ((limb | ~present[:, :6]).all(1) | ~limb.any(1)).all()  # all six or none
    assert not drop[:, 6:].any() and 0.2 < limb.any(1).float().mean() < 0.4
    assert not (drop & ~present).any()
    # adding limb dropout leaves the lead-dropout draws as they were
    only = lead_dropout_mask(torch.Generator().manual_seed(0), present, PretrainConfig(batch_size=400, lead_dropout=0.2))
    both = lead_dropout_mask(torch.Generator().manual_seed(0), present,
                             PretrainConfig(batch_size=400, lead_dropout=0.2, limb_dropout=0.3))
    assert (both[:, 6:] == only[:, 6:]).all()
    # an ECG whose only leads are limb leads keeps one
    limb_only = torch.zeros(50, 12, dtype=torch.bool)
    limb_only[:, :6] = True
    d = lead_dropout_mask(torch.Generator().manual_seed(1), limb_only, PretrainConfig(batch_size=50, limb_dropout=0.9))
    assert (limb_only & ~d).any(1).all()


def test_a_finished_run_is_reused_only_for_the_model_it_trained(store, tiny_run):
    # tiny_run: LAMAE, 20 steps, at LAMAE's defaults (decode_ratio 0.5). Asked again as it was
    # made, nothing trains; asked with a setting it did not train with (as after a member's
    # default changed), the run is refused with the setting named instead of reused.
    from lamae.train.pretrain import ensure_pretrained

    same = PretrainConfig(store=str(store.path), out=str(tiny_run), steps=20, model={"n_latents": 4})
    before = sorted(p.name for p in (tiny_run / "checkpoints").iterdir())
    assert ensure_pretrained(same, progress=False) is False
    other = PretrainConfig(store=str(store.path), out=str(tiny_run), steps=20,
                           model={"n_latents": 4, "decode_ratio": 1.0})
    with pytest.raises(LamaeError, match="decode_ratio was 0.5, now 1.0"):
        ensure_pretrained(other, progress=False)
    joint = PretrainConfig(store=str(store.path), out=str(tiny_run), steps=20, architecture="Joint",
                           model={"n_latents": 4})
    with pytest.raises(LamaeError, match="finished run was trained with other model settings"):
        ensure_pretrained(joint, progress=False)
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == before
