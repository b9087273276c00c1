"""S4-MAE: CPC's state-space encoder under LAMAE's masked objective."""

import pytest
import torch

from lamae.models.family import make_model, model_config
from lamae.models.config import LamaeConfig

from .state_space import (check_a_subset_is_the_twelve_with_the_rest_absent, check_it_pretrains_loads_and_rebuilds_a_lead,
                          idle_weights)

T = 200  # 2 s at 100 Hz: 8 patches of 25 samples, 40 frames of 5


def s4mae(**kw):
    torch.manual_seed(0)
    return make_model(model_config("S4-MAE", "tiny", kw, fs=100.0, window_s=2.0)).eval()


def test_it_is_the_cpc_encoder_made_bidirectional():
    m = s4mae()
    assert type(m).__name__ == "S4Mae" and all(blk.ssm_back is not None for blk in m.context)
    x = torch.randn(2, 12, T)
    leads, present = torch.arange(12).expand(2, -1), torch.ones(2, 12, dtype=torch.bool)
    _, c1 = m.encode(x, leads, present)
    # presence per lead (embedding) and the same presence per sample (masking) give one input
    present[1, 3] = False
    torch.testing.assert_close(m.channels(x, leads, present),
                               m.channels(x, leads, present[..., None].expand(-1, -1, T)), rtol=0, atol=0)
    present[1, 3] = True
    x2 = x.clone()
    x2[..., 100:] += torch.randn_like(x2[..., 100:])     # frame 20 onwards changes frames before it too
    _, c2 = m.encode(x2, leads, present)
    assert not torch.allclose(c2[:, :20], c1[:, :20])


def test_masked_samples_and_hidden_leads_are_not_seen_but_are_scored():
    m = s4mae()
    x = torch.randn(3, 12, T)
    noise = torch.rand(3, 12, 8)
    drop = torch.zeros(3, 12, dtype=torch.bool)
    drop[:, 4] = True                                    # lead aVR hidden from every ECG
    out = m(x, torch.arange(12), noise=noise, drop=drop)
    mask = out["mask"]                                   # (B, L, N), 1 = scored
    assert mask[:, 4].all() and int(mask[:, 0].sum()) == 3 * 6    # 75% of 8 patches -> 6 masked per lead
    assert float(m.n_targets(torch.ones(3, 12, dtype=torch.bool), drop)) == float(mask.sum())
    # change every scored sample: the prediction stays, the loss moves
    hidden = mask.bool().repeat_interleave(25, dim=2)
    x2 = torch.where(hidden, torch.randn_like(x), x)
    out2 = m(x2, torch.arange(12), noise=noise, drop=drop)
    torch.testing.assert_close(out2["pred"], out["pred"])
    assert float(out2["loss"].detach()) != pytest.approx(float(out["loss"].detach()))
    # change a visible sample: the prediction moves
    x3 = torch.where(hidden, x, x + 1.0)
    assert not torch.allclose(m(x3, torch.arange(12), noise=noise, drop=drop)["pred"], out["pred"])


def test_any_lead_subset_in_any_order():
    m = s4mae()
    x = torch.randn(2, 12, T)
    noise = torch.rand(2, 12, 8)
    full = m(x, torch.arange(12), noise=noise)
    perm = torch.randperm(12)
    shuffled = m(x[:, perm], perm, noise=noise[:, perm])
    torch.testing.assert_close(shuffled["pred"], full["pred"][:, perm], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(shuffled["loss"], full["loss"], atol=1e-5, rtol=1e-4)
    check_a_subset_is_the_twelve_with_the_rest_absent(m, x)


def test_s4mae_settings_are_checked():
    with pytest.raises(ValueError, match="multiple of cpc_stride 7"):
        LamaeConfig(window_s=2.0, encoder="s4", aggregator="none", cpc_stride=7)
    with pytest.raises(ValueError, match="s4 encoder has none"):
        LamaeConfig(window_s=2.0, encoder="s4", aggregator="none", align="cosine")
    with pytest.raises(ValueError, match="no latents"):
        s4mae()(torch.randn(2, 12, T), torch.arange(12), intervene="zero")


def test_every_s4mae_weight_learns_and_short_pretraining_lowers_the_loss(store, tmp_path):
    assert not idle_weights(s4mae(), T)
    # unlike CPC it rebuilds leads: lamae reconstruct takes it
    check_it_pretrains_loads_and_rebuilds_a_lead(store, tmp_path / "run", "S4-MAE", "S4Mae", "s4")
