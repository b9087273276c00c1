"""Partial decoding (``decode_ratio`` < 1): a training step decodes each lead's visible patches and
a random share of its masked ones, scores only those, and evaluation still decodes everything."""

import dataclasses

import pytest
import torch

from lamae.models.family import make_model, model_config
from lamae.models.config import LamaeConfig
from lamae.models.layers import take_rows

T = 200  # 2 s at 100 Hz: 8 patches of 25; 2 visible and 6 masked per lead at 75%
MEMBERS = ["LAMAE", "LAMAE-attn", "LAMAE-global", "IndS", "Joint"]  # reads, prefix, none, joint mixing


def member(name, decode_ratio=1.0, **kw):
    """A tiny member decoding ``decode_ratio`` of its masked patches (all, unless asked; LAMAE's
    own default is 0.5)."""
    torch.manual_seed(0)
    return make_model(model_config(name, "tiny", kw, fs=100.0, window_s=2.0, decode_ratio=decode_ratio)).train()


def with_ratio(m, ratio):
    """The same weights with another decode_ratio."""
    other = make_model(dataclasses.replace(m.cfg, decode_ratio=ratio))
    other.load_state_dict(m.state_dict())
    return other.train(m.training)


def batch(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 12, T, generator=g)
    noise = torch.rand(b, 12, 8, generator=g)
    present = torch.ones(b, 12, dtype=torch.bool)
    present[1, 4] = False                  # a lead absent from one ECG
    drop = torch.zeros(b, 12, dtype=torch.bool)
    drop[0, 2] = True                      # a hidden lead: all of its patches are targets
    return x, noise, present, drop


@pytest.mark.parametrize("name", MEMBERS)
def test_decoding_every_masked_patch_in_any_order_is_the_dense_path(name):
    """With a ratio that keeps every masked patch, the partial path decodes the same tokens in
    the mask's shuffled order: the same predictions at each position and the same loss."""
    x, noise, present, drop = batch()
    dense = member(name)
    full = with_ratio(dense, 0.95)  # round(0.95 * 6) = 6: all masked patches, through the new path
    a = dense(x, torch.arange(12), present, noise=noise, drop=drop)
    b = full(x, torch.arange(12), present, noise=noise, drop=drop)
    assert a["decoded"] is None and b["decoded"].shape == (3, 12, 8)
    torch.testing.assert_close(b["pred"], take_rows(a["pred"], b["decoded"]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b["loss"], a["loss"], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["LAMAE", "IndS", "Joint"])
def test_a_partial_step_scores_exactly_the_decoded_masked_patches(name):
    x, noise, present, drop = batch()
    m = member(name, decode_ratio=0.5)
    out = m(x, torch.arange(12), present, noise=noise, drop=drop)
    rows = out["decoded"]
    assert rows.shape == (3, 12, 5) and out["pred"].shape == (3, 12, 5, 25)  # 2 visible + 3 of 6 masked
    # the visible patches come first, then distinct masked ones
    order = noise.argsort(dim=-1)
    assert torch.equal(rows, order[..., :5])
    assert all(len(set(r.tolist())) == 5 for r in rows.reshape(-1, 5))
    # the loss is the mean squared error over the decoded patches that are targets: masked patches
    # of input leads and every decoded patch of the hidden lead, never an absent lead's
    target = take_rows(m.patchify(x), rows)
    scored = out["mask"].gather(-1, rows).bool() & present[..., None]
    assert scored[0, 2].all() and not scored[1, 4].any() and scored[..., :2].sum() == 2  # hidden lead's 2
    want = ((out["pred"] - target) ** 2).mean(-1)[scored].mean()
    torch.testing.assert_close(out["loss"], want)
    assert int(m.n_targets(present, drop)) == int(scored.sum())
    # the encoder learns through the decoded patches
    out["loss"].backward()
    assert m.patch_embed.weight.grad.abs().sum() > 0


def test_evaluation_decodes_every_patch_whatever_the_ratio():
    x, noise, present, drop = batch()
    dense = member("LAMAE").eval()
    part = with_ratio(dense, 0.25).eval()
    with torch.no_grad():
        a = dense(x, torch.arange(12), present, noise=noise, drop=drop)
        b = part(x, torch.arange(12), present, noise=noise, drop=drop)
    assert b["decoded"] is None and b["pred"].shape == (3, 12, 8, 25)
    torch.testing.assert_close(b["pred"], a["pred"])
    assert int(part.n_targets(present, drop)) == int(dense.n_targets(present, drop))


def test_edge_cases_one_lead_a_fully_masked_position_and_nothing_masked():
    m = member("LAMAE", decode_ratio=0.25)
    # one lead only: round(0.25 * 6) = 2 decoded masked patches
    out = m(torch.randn(2, 1, T), ["II"])
    assert out["pred"].shape == (2, 1, 4, 25) and torch.isfinite(out["loss"])
    # position 0 masked in every lead and the first masked patch each lead decodes (positions 5 and
    # 6 have the lowest noise: visible everywhere)
    x, noise, present, drop = batch()
    noise[..., 5], noise[..., 6], noise[..., 0] = -3.0, -2.0, -1.0
    out = m(x, torch.arange(12), present, noise=noise, drop=drop)
    assert (out["mask"][..., 0] == 1).all() and (out["decoded"][..., 2] == 0).all()
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert torch.isfinite(m.patch_embed.weight.grad).all()
    # nothing masked: only the hidden lead's patches are decoded and scored
    out = m(x, torch.arange(12), present, mask_ratio=0.0, drop=drop)
    assert out["decoded"].shape == (3, 12, 8) and int(m.n_targets(present, drop, mask_ratio=0.0)) == 8


@pytest.mark.parametrize("kw, message", [({"decode_ratio": 0.0}, "decode_ratio must be a fraction"),
                                         ({"decode_ratio": 1.5}, "decode_ratio must be a fraction"),
                                         ({"decode_ratio": True}, "decode_ratio must be a fraction"),
                                         ({"encoder": "s4", "aggregator": "none", "decode_ratio": 0.5},
                                          "decode_ratio needs a patch decoder")])
def test_bad_ratios_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        LamaeConfig(**{"window_s": 2.0, **kw})


def test_a_setting_written_before_decode_ratio_loads_as_full_decoding():
    stored = model_config("LAMAE", "tiny").to_dict()
    stored.pop("decode_ratio")
    assert LamaeConfig.from_dict(stored).decode_ratio == 1.0


def test_lamae_and_its_lead_field_ablation_pretrain_with_partial_decoding_the_rest_as_before():
    # LAMAE (and LAMAE_E, which reads its encoder, and LAMAE-attn, its ablation without the lead
    # field) train with half the masked patches decoded;
    # the members that never train the decoder (Scratch, Random) and the baselines are unchanged.
    from lamae.models.family import FAMILY, model_config

    for name in ("LAMAE", "LAMAE_E", "LAMAE-attn"):  # LAMAE-attn: LAMAE without the lead field
        assert model_config(name, "tiny").decode_ratio == 0.5
    for name in ("Scratch", "Random", "IndS", "Joint"):
        assert model_config(name, "tiny").decode_ratio == 1.0
    assert FAMILY["LAMAE_E"]["model"] == FAMILY["LAMAE"]["model"]
    assert model_config("LAMAE-attn", "tiny").decode_ratio == model_config("LAMAE", "tiny").decode_ratio
