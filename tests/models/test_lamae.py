import pytest
import torch

from lamae.errors import ShapeError
from lamae.leads import STANDARD_LEADS
from lamae.models.lamae import SIZES, Lamae, LamaeConfig, build_model, random_masking

T = 200  # 2 s at 100 Hz


def tiny(**kw):
    torch.manual_seed(0)
    return build_model("tiny", window_s=2.0, **kw).eval()


@pytest.mark.parametrize("kw", [{}, {"latent_input": "tokens"}, {"latent_mode": "nvembed"},
                                {"latent_depth": 1}, {"aggregator": "mean"},
                                {"aggregator": "none"}, {"private_leads": True, "aggregator": "none"},
                                {"token_mixing": "joint", "aggregator": "none"}])
def test_embedding_is_invariant_to_lead_order(kw):
    m = tiny(**kw)
    x = torch.randn(3, 12, T)
    e, w = m.embed(x, torch.arange(12))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    e2, w2 = m.embed(x[:, perm], perm)
    torch.testing.assert_close(e, e2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w[:, perm], w2, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w.sum(1), torch.ones(3))


def test_any_subset_of_leads_by_name():
    m = tiny()
    e, w = m.embed(torch.randn(2, 3, T), ["V1", "I", "aVF"])
    assert e.shape == (2, 64) and w.shape == (2, 3)
    # the same leads in another order give the same embedding
    x = torch.randn(2, 3, T)
    a, _ = m.embed(x, ["V1", "I", "aVF"])
    b, _ = m.embed(x[:, [2, 0, 1]], ["aVF", "V1", "I"])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_absent_leads_do_not_change_the_embedding():
    m = tiny()
    x = torch.randn(2, 12, T)
    present = torch.ones(2, 12, dtype=torch.bool)
    present[:, 6:] = False
    a, w = m.embed(x, torch.arange(12), present)
    b, _ = m.embed(x[:, :6], torch.arange(6))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (w[:, 6:] == 0).all()


def test_masking_ratio_is_exact_per_lead():
    keep, mask, restore = random_masking(4, 12, 40, 0.75, "cpu")
    assert keep.shape == (4, 12, 10)
    assert (mask.sum(-1) == 30).all()
    assert not torch.equal(mask[0, 0], mask[0, 1])  # independent per lead
    # kept indices are exactly the unmasked positions
    assert (mask.gather(-1, keep) == 0).all()


def test_loss_counts_only_masked_patches_of_present_leads():
    m = tiny()
    x = torch.randn(2, 12, T)
    pred = torch.randn(2, 12, 8, 25)
    _, mask, _ = random_masking(2, 12, 8, 0.75, "cpu")
    present = torch.ones(2, 12, dtype=torch.bool)
    present[1, 3] = False
    base = m.reconstruction_loss(x, pred, mask, present)
    # changing the target on visible patches, or on an absent lead, leaves the loss unchanged
    x2 = m.patchify(x.clone())
    x2[mask == 0] += 100.0
    x2[1, 3] += 100.0
    torch.testing.assert_close(m.reconstruction_loss(x2.view(2, 12, T), pred, mask, present), base)
    # changing a masked patch of a present lead changes it
    x3 = m.patchify(x.clone())
    x3[mask == 1] += 1.0
    assert m.reconstruction_loss(x3.view(2, 12, T), pred, mask, present) > base


def test_forward_shapes_and_gradients_reach_every_part():
    m = tiny().train()
    out = m(torch.randn(2, 12, T), torch.arange(12))
    assert out["pred"].shape == (2, 12, 8, 25) and out["mask"].shape == (2, 12, 8)
    out["loss"].backward()
    for name in ["patch_embed.weight", "lead_embed.weight", "encoders.0.0.attn.qkv.weight",
                 "latent.latents", "latent.cross.q.weight", "dec_blocks.0.mlp.0.weight", "dec_pred.weight"]:
        g = dict(m.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


def test_decoder_uses_other_leads_through_the_latents():
    m = tiny()
    x = torch.randn(1, 12, T)
    g = torch.Generator()
    p1 = m(x, torch.arange(12), generator=g.manual_seed(0))["pred"][0, 0]
    x2 = x.clone()
    x2[0, 5] += 3.0  # change another lead only
    p2 = m(x2, torch.arange(12), generator=g.manual_seed(0))["pred"][0, 0]
    assert not torch.allclose(p1, p2)
    m_ablate = tiny(aggregator="none")
    q1 = m_ablate(x, torch.arange(12), generator=g.manual_seed(0))["pred"][0, 0]
    q2 = m_ablate(x2, torch.arange(12), generator=g.manual_seed(0))["pred"][0, 0]
    torch.testing.assert_close(q1, q2)  # no cross-lead path without latent attention


def test_wrong_shapes_are_clear_errors():
    m = tiny()
    with pytest.raises(ShapeError, match="150 samples per lead; this model takes 200"):
        m.embed(torch.randn(2, 12, 150), torch.arange(12))
    with pytest.raises(ShapeError, match="one lead per row"):
        m.embed(torch.randn(2, 12, T), torch.arange(11))
    with pytest.raises(ShapeError, match="batch, leads, samples"):
        m.embed(torch.randn(12, T), torch.arange(12))
    with pytest.raises(Exception, match="unknown lead name"):
        m.embed(torch.randn(1, 2, T), ["I", "Lead7"])


def test_named_sizes():
    assert set(SIZES) >= {"tiny", "small", "base"}
    base = Lamae(LamaeConfig(**SIZES["base"]))
    assert 80e6 < base.num_parameters("encoder") < 90e6  # ViT-B encoder, the paper's ~86M
    assert len(STANDARD_LEADS) == base.lead_embed.num_embeddings


def test_joint_model_mixes_leads_in_the_encoder():
    m = tiny(token_mixing="joint", aggregator="none")
    x = torch.randn(1, 12, T)
    g = torch.Generator()
    a = m.encode(x, torch.arange(12)[None], torch.ones(1, 12, dtype=torch.bool), 0.75, g.manual_seed(0))[0]
    x2 = x.clone()
    x2[0, 5] += 3.0
    b = m.encode(x2, torch.arange(12)[None], torch.ones(1, 12, dtype=torch.bool), 0.75, g.manual_seed(0))[0]
    assert not torch.allclose(a[0, 0], b[0, 0])  # lead I's tokens see lead aVF
    s = tiny(aggregator="none")
    a = s.encode(x, torch.arange(12)[None], torch.ones(1, 12, dtype=torch.bool), 0.75, g.manual_seed(0))[0]
    b = s.encode(x2, torch.arange(12)[None], torch.ones(1, 12, dtype=torch.bool), 0.75, g.manual_seed(0))[0]
    torch.testing.assert_close(a[0, 0], b[0, 0])  # the per-lead encoder does not


def test_private_leads_have_their_own_weights():
    m = tiny(private_leads=True, aggregator="none").train()
    assert len(m.encoders) == 12
    m(torch.randn(2, 2, T), ["I", "V1"])["loss"].backward()
    assert m.encoders[0][0].attn.qkv.weight.grad.abs().sum() > 0
    assert m.encoders[6][0].attn.qkv.weight.grad.abs().sum() > 0
    assert m.encoders[1][0].attn.qkv.weight.grad is None  # lead II was not in the batch


@pytest.mark.parametrize("align", ["mse", "cosine", "infonce"])
def test_alignment_loss_is_added_with_its_annealed_weight(align):
    m = tiny(aggregator="none", align=align, align_weight=0.5).train()
    x = torch.randn(4, 12, T)
    g = torch.Generator()
    out = m(x, torch.arange(12), generator=g.manual_seed(0), align_scale=0.2)
    assert torch.isfinite(out["align"])
    torch.testing.assert_close(out["loss"], out["reconstruction"] + 0.5 * 0.2 * out["align"])
    out0 = m(x, torch.arange(12), generator=g.manual_seed(0), align_scale=0.0)
    torch.testing.assert_close(out0["loss"], out0["reconstruction"])
    out["loss"].backward()
    assert m.encoders[0][0].attn.qkv.weight.grad.abs().sum() > 0
