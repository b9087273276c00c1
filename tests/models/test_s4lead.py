"""The factorial's state-space cells (issue 40): a state-space stack per lead, with LAMAE's cross-lead
path (S4-LAMAE: routers at every frame and the lead field) or without one (S4-IndS)."""

import pytest
import torch

from lamae.models.config import LamaeConfig
from lamae.models.family import make_model, model_config

from .state_space import (check_a_subset_is_the_twelve_with_the_rest_absent, check_it_pretrains_loads_and_rebuilds_a_lead,
                          idle_weights)

T = 200  # 2 s at 100 Hz: 8 patches of 25 samples, 40 frames of 5


def member(name, **kw):
    torch.manual_seed(0)
    return make_model(model_config(name, "tiny", kw, fs=100.0, window_s=2.0)).eval()


@pytest.mark.parametrize("name", ["S4-LAMAE", "S4-IndS"])
def test_shapes_and_any_lead_order(name):
    m = member(name)
    assert type(m).__name__ == "S4Lamae" and m.n_frames == 40
    x = torch.randn(2, 12, T)
    noise = torch.rand(2, 12, 8)
    full = m(x, torch.arange(12), noise=noise)
    assert full["pred"].shape == (2, 12, 8, 25) and full["mask"].shape == (2, 12, 8)
    perm = torch.randperm(12)
    shuffled = m(x[:, perm], perm, noise=noise[:, perm])
    torch.testing.assert_close(shuffled["pred"], full["pred"][:, perm], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(shuffled["loss"], full["loss"], atol=1e-5, rtol=1e-4)
    z, w = m.embed(x, torch.arange(12))
    zp, wp = m.embed(x[:, perm], perm)
    torch.testing.assert_close(zp, z, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(wp, w[:, perm], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w.sum(1), torch.ones(2), atol=1e-5, rtol=0)


def test_without_the_cross_lead_path_a_subset_is_the_twelve_with_the_rest_absent():
    check_a_subset_is_the_twelve_with_the_rest_absent(member("S4-IndS"), torch.randn(2, 12, T))


def test_with_the_cross_lead_path_a_subset_is_the_twelve_with_the_rest_absent():
    m = member("S4-LAMAE")
    x = torch.randn(2, 12, T)
    some = torch.tensor([7, 0, 1])
    subset, w = m.embed(x[:, some], some)
    present = torch.zeros(2, 12, dtype=torch.bool)
    present[:, some] = True
    masked, w12 = m.embed(x, torch.arange(12), present)
    torch.testing.assert_close(subset, masked, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w, w12[:, some], atol=1e-5, rtol=1e-4)
    assert float(w12[:, [i for i in range(12) if i not in (7, 0, 1)]].abs().max()) == 0


def test_a_hidden_lead_is_rebuilt_from_the_others_only_through_the_cross_lead_path():
    """A lead hidden by lead dropout: with the routers its prediction follows the other leads'
    signal and the latents' ablation changes it; without them it cannot depend on the others."""
    x = torch.randn(2, 12, T)
    drop = torch.zeros(2, 12, dtype=torch.bool)
    drop[:, 2] = True
    x2 = x.clone()
    x2[:, 5] += torch.randn(2, T)          # another lead's signal changes
    for name, depends in (("S4-LAMAE", True), ("S4-IndS", False)):
        m = member(name)
        a = m(x, torch.arange(12), mask_ratio=0.0, drop=drop)["pred"][:, 2]
        b = m(x2, torch.arange(12), mask_ratio=0.0, drop=drop)["pred"][:, 2]
        assert (not torch.allclose(a, b, atol=1e-6)) == depends, name
    m = member("S4-LAMAE")
    base = m(x, torch.arange(12), mask_ratio=0.0, drop=drop)["pred"][:, 2]
    zeroed = m(x, torch.arange(12), mask_ratio=0.0, drop=drop, intervene="zero")["pred"][:, 2]
    assert not torch.allclose(base, zeroed)
    with pytest.raises(ValueError, match="no latents"):
        member("S4-IndS")(x, torch.arange(12), intervene="zero")


def test_masked_samples_are_not_seen_but_are_scored():
    m = member("S4-IndS")
    x = torch.randn(3, 12, T)
    noise = torch.rand(3, 12, 8)
    out = m(x, torch.arange(12), noise=noise)
    hidden = out["mask"].bool().repeat_interleave(25, dim=2)
    x2 = torch.where(hidden, torch.randn_like(x), x)
    out2 = m(x2, torch.arange(12), noise=noise)
    torch.testing.assert_close(out2["pred"], out["pred"])
    assert float(out2["loss"].detach()) != pytest.approx(float(out["loss"].detach()))
    assert float(m.n_targets(torch.ones(3, 12, dtype=torch.bool))) == float(out["mask"].sum())


def test_settings_are_checked_and_grouped():
    with pytest.raises(ValueError, match="aggregator 'latent'"):
        LamaeConfig(window_s=2.0, encoder="s4_lead", aggregator="mean")
    with pytest.raises(ValueError, match="not a multiple of cpc_stride 7"):
        LamaeConfig(window_s=2.0, encoder="s4_lead", aggregator="none", cpc_stride=7)
    with pytest.raises(ValueError, match="lead_field feeds the router latents"):
        LamaeConfig(window_s=2.0, encoder="s4_lead", aggregator="none", lead_field=8)
    with pytest.raises(ValueError, match="every frame"):
        LamaeConfig(window_s=2.0, encoder="s4_lead", aggregator="none", decode_ratio=0.5)
    used = model_config("S4-LAMAE", "tiny").settings_in_use()
    assert "cross-lead path: routers" in used and "encoder: state space" in used and "encoder: attention" not in used
    assert not any(g.startswith("cross-lead") for g in model_config("S4-IndS", "tiny").settings_in_use())


def test_every_weight_learns_and_short_pretraining_lowers_the_loss(store, tmp_path):
    assert not idle_weights(member("S4-LAMAE"), T)
    # it learns more slowly than S4-MAE in 60 steps (1.02 -> 0.78 when written): a tenth is a clear fall
    check_it_pretrains_loads_and_rebuilds_a_lead(store, tmp_path / "run", "S4-LAMAE", "S4Lamae", "s4_lead", fall=0.9)


def test_the_contrastive_term_matches_a_direct_reference():
    """masked_info_nce against its definition: for each scored frame t of sequence n, the
    candidates are n's own frames and frame t of every other valid sequence."""
    from lamae.models.s4lead import masked_info_nce

    torch.manual_seed(0)
    q, z = torch.randn(4, 6, 8), torch.randn(4, 6, 8)
    scored = torch.rand(4, 6) > 0.5
    valid = torch.tensor([True, True, False, True])
    terms = []
    for n in range(4):
        for t in range(6):
            if not scored[n, t]:
                continue
            cands = [z[n, u] for u in range(6)] + [z[m, t] for m in range(4) if m != n and valid[m]]
            logits = torch.stack([q[n, t] @ c for c in cands])
            terms.append(-torch.log_softmax(logits, 0)[t])
    torch.testing.assert_close(masked_info_nce(q, z, scored, valid), torch.stack(terms).mean())
    assert float(masked_info_nce(q, z, torch.zeros(4, 6, dtype=torch.bool), valid)) == 0.0


def test_the_contrastive_term_is_added_learns_and_keeps_lead_order_out():
    m = member("S4-LAMAE", nce_weight=0.5).train()
    assert not idle_weights(m, T)
    assert member("S4-LAMAE").nce_head is None        # off by default: old checkpoints' weights
    with pytest.raises(ValueError, match="encoder 's4_lead'"):
        LamaeConfig(window_s=2.0, nce_weight=0.1)
    m.eval()
    x, noise = torch.randn(3, 12, T), torch.rand(3, 12, 8)
    out = m(x, torch.arange(12), noise=noise)
    torch.testing.assert_close(out["loss"], out["reconstruction"] + 0.5 * out["nce"])
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    shuffled = m(x[:, perm], perm, noise=noise[:, perm])
    torch.testing.assert_close(shuffled["loss"], out["loss"], atol=1e-5, rtol=1e-4)


def test_the_trainer_adds_the_contrastive_term_and_short_pretraining_lowers_the_loss(store, tmp_path):
    """``lamae pretrain`` optimises the term, not only the reconstruction: the logged first-step
    loss with the term exceeds the one without it by about the term (near log of its candidates);
    60 steps with it lower the loss by a tenth."""
    import numpy as np
    import pandas as pd

    from lamae.train.pretrain import PretrainConfig, pretrain

    losses = {}
    for weight, steps in ((0.0, 1), (1.0, 60)):
        out = tmp_path / f"w{weight}"
        pretrain(PretrainConfig(store=str(store.path), out=str(out), architecture="S4-LAMAE",
                                model={"nce_weight": weight, "cpc_stride": 25}, steps=steps, batch_size=16, base_lr=0.024,
                                warmup_steps=5, log_every=5 if steps > 1 else 1, checkpoint_every=1000),
                 progress=False)
        losses[weight] = pd.read_csv(out / "loss.csv")["loss"].to_numpy()
    assert losses[1.0][0] - losses[0.0][0] > 2.0, losses
    assert losses[1.0][-3:].mean() < 0.9 * losses[1.0][:3].mean(), losses[1.0]
    # metrics.csv logs the loss's terms: the total is the reconstruction plus the weighted term
    m = pd.read_csv(tmp_path / "w1.0" / "metrics.csv").pivot(index="step", columns="name", values="value")
    m = m[m.index > 0]
    np.testing.assert_allclose(m["train/loss"], m["train/reconstruction"] + 1.0 * m["train/nce"], rtol=1e-4)
    assert (m["train/nce"] > 0).all() and m["train/nce"].iloc[-1] < m["train/nce"].iloc[0]
    m0 = pd.read_csv(tmp_path / "w0.0" / "metrics.csv")
    assert "train/nce" not in set(m0["name"]) and "train/reconstruction" in set(m0["name"])
