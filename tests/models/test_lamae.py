import pytest
import torch

from lamae.errors import ShapeError
from lamae.leads import STANDARD_LEADS
from lamae.models.family import FAMILY, PRETRAINABLE, build_model, make_model, model_config
from lamae.models.config import SIZES, LamaeConfig
from lamae.models.inputs import random_masking, share_limb_noise
from lamae.models.lamae import Lamae
from lamae.utils.flops import training_step_flops

T = 200  # 2 s at 100 Hz: 8 patches of 25


def tiny(**kw):
    torch.manual_seed(0)
    return build_model("tiny", window_s=2.0, **kw).eval()


def member(name, **kw):
    torch.manual_seed(0)
    return make_model(model_config(name, "tiny", kw, fs=100.0, window_s=2.0)).eval()


VARIANTS = [{}, {"router_every": 0}, {"router_every": 2, "depth": 3}, {"router_latents": 3},
            {"readout": "cls_latents"}, {"readout": "patch_latents"}, {"mask_limb_together": True},
            {"encoder": "per_lead", "latent_input": "tokens"}, {"encoder": "per_lead", "latent_mode": "nvembed"},
            {"encoder": "per_lead", "latent_depth": 1}, {"encoder": "per_lead", "aggregator": "mean"},
            {"encoder": "per_lead", "aggregator": "none"}, {"encoder": "private", "aggregator": "none"},
            {"encoder": "joint", "aggregator": "none"}, {"input_scale": "rms"}, {"lead_gates": True},
            {"router_width": 1.0, "latent_mlp": True},  # model format 2's full-width routers
            {"stem": "conv"}]


@pytest.mark.parametrize("kw", VARIANTS)
def test_embedding_is_invariant_to_lead_order(kw):
    m = tiny(**kw)
    x = torch.randn(3, 12, T)
    e, w = m.embed(x, torch.arange(12))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    e2, w2 = m.embed(x[:, perm], perm)
    torch.testing.assert_close(e, e2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w[:, perm], w2, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w.sum(1), torch.ones(3))


@pytest.mark.parametrize("kw", VARIANTS[:8] + [{"stem": "conv"}])
def test_reconstruction_is_equivariant_to_lead_order(kw):
    m = tiny(**kw)
    x = torch.randn(2, 12, T)
    noise = torch.rand(2, 12, 8, generator=torch.Generator().manual_seed(2))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    a = m(x, torch.arange(12), noise=noise)
    b = m(x[:, perm], perm, noise=noise[:, perm])
    torch.testing.assert_close(a["pred"][:, perm], b["pred"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a["loss"], b["loss"], atol=1e-6, rtol=1e-5)


def test_any_subset_of_leads_by_name():
    m = tiny()
    e, w = m.embed(torch.randn(2, 3, T), ["V1", "I", "aVF"])
    assert e.shape == (2, 64) and w.shape == (2, 3)
    x = torch.randn(2, 3, T)
    a, _ = m.embed(x, ["V1", "I", "aVF"])
    b, _ = m.embed(x[:, [2, 0, 1]], ["aVF", "V1", "I"])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", [{}, {"router_every": 0}, {"encoder": "per_lead"}, {"input_scale": "rms"},
                                {"stem": "conv"}])
def test_absent_leads_do_not_change_the_embedding(kw):
    m = tiny(**kw)
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
    assert (mask.gather(-1, keep) == 0).all()


def test_limb_leads_can_share_one_mask():
    noise = torch.rand(3, 12, 40)
    leads = torch.arange(12)[None].expand(3, -1)
    shared = share_limb_noise(noise, leads)
    _, mask, _ = random_masking(3, 12, 40, 0.75, "cpu", noise=shared)
    for lead in range(1, 6):  # I, II, III, aVR, aVL, aVF masked at the same patches
        assert torch.equal(mask[:, lead], mask[:, 0])
    assert not torch.equal(mask[:, 6], mask[:, 7])  # the chest leads stay independent
    # in any order: which rows are limb leads is read from the lead indices
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shared_p = share_limb_noise(noise[:, perm], leads[:, perm])
    limb_rows = [i for i, lead in enumerate(perm.tolist()) if lead < 6]
    assert all(torch.equal(shared_p[:, r], shared_p[:, limb_rows[0]]) for r in limb_rows)
    m = tiny(mask_limb_together=True)
    out = m(torch.randn(2, 12, T), torch.arange(12))
    assert torch.equal(out["mask"][:, 2], out["mask"][:, 5])


def test_loss_counts_only_masked_patches_of_present_leads():
    m = tiny()
    x = torch.randn(2, 12, T)
    pred = torch.randn(2, 12, 8, 25)
    _, mask, _ = random_masking(2, 12, 8, 0.75, "cpu")
    present = torch.ones(2, 12, dtype=torch.bool)
    present[1, 3] = False
    base = m.reconstruction_loss(x, pred, mask, present)
    x2 = m.patchify(x.clone())
    x2[mask == 0] += 100.0
    x2[1, 3] += 100.0
    torch.testing.assert_close(m.reconstruction_loss(x2.view(2, 12, T), pred, mask, present), base)
    x3 = m.patchify(x.clone())
    x3[mask == 1] += 1.0
    assert m.reconstruction_loss(x3.view(2, 12, T), pred, mask, present) > base


@pytest.mark.parametrize("kw", [{}, {"mask_limb_together": True}, {"mask_ratio": 0.5}])
def test_target_count_is_the_number_of_patches_forward_scores(kw):
    # pretraining weights each micro-batch / process by n_targets, so it must equal what the
    # loss averages over: the masked patches of input leads and every patch of a hidden lead
    m = tiny(**kw)
    g = torch.Generator().manual_seed(0)
    present = torch.rand(5, 12, generator=g) > 0.2
    present[:, 0] = True
    drop = (torch.rand(5, 12, generator=g) > 0.6) & present
    drop[:, 0] = False
    out = m(torch.randn(5, 12, T), torch.arange(12), present, drop=drop)
    scored = (out["mask"].bool() & present[..., None]).sum()
    assert drop.any() and int(m.n_targets(present, drop)) == int(scored)
    assert int(m.n_targets(present, None, mask_ratio=0.0)) == 0  # nothing masked, nothing hidden


@pytest.mark.parametrize("name", PRETRAINABLE)
def test_every_built_parameter_learns(name):
    """Only the parts a configuration uses are built: one step gives every weight a gradient."""
    m = member(name).train()
    m(torch.randn(3, 12, T), torch.arange(12), align_scale=1.0)["loss"].backward()
    idle = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not idle, idle


def test_the_conv_stem_learns_and_a_dropped_lead_is_an_absent_one():
    m = member("LAMAE", stem="conv").train()
    assert m.patch_embed is None and m.num_parameters("encoder") > member("LAMAE").num_parameters("encoder")
    m(torch.randn(3, 12, T), torch.arange(12))["loss"].backward()
    idle = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not idle, idle
    # a lead hidden by lead dropout enters the encoder as an absent one does: the other leads'
    # predictions and the pooled output are the same either way
    m.eval()
    x, noise = torch.randn(2, 12, T), torch.rand(2, 12, 8)
    drop = torch.zeros(2, 12, dtype=torch.bool)
    drop[:, 4] = True
    dropped = m(x, torch.arange(12), noise=noise, drop=drop)
    absent = m(x, torch.arange(12), ~drop, noise=noise)
    torch.testing.assert_close(dropped["pooled"], absent["pooled"])
    torch.testing.assert_close(dropped["pred"][~drop], absent["pred"][~drop])


def test_unused_parts_are_not_built():
    names = lambda m: {n.split(".")[0] + "." + n.split(".")[1] for n, _ in m.named_parameters() if "." in n}  # noqa: E731
    assert "decoder.cond" not in names(member("IndS")) and not list(member("IndS").aggregator.parameters())
    assert not list(tiny(encoder="per_lead", latent_mode="nvembed", latent_depth=2).aggregator.blocks)
    indp = member("IndP").encoder
    assert indp.layers[0].qkv.weight.shape[0] == 12 and not hasattr(indp, "blocks")
    assert member("Joint").decoder.reads is None and member("LAMAE").decoder.reads is not None


@pytest.mark.parametrize("kw, message", [({"encoder": "joint", "aggregator": "latent"}, "joint encoder"),
                                         ({"encoder": "router", "aggregator": "mean"}, "router encoder"),
                                         ({"encoder": "sideways"}, "encoder must be one of"),
                                         ({"readout": "max"}, "readout must be one of"),
                                         ({"router_latents": 0}, "router_latents must be a positive"),
                                         ({"patch_size": -5}, "patch_size must be a positive")])
def test_invalid_combinations_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        LamaeConfig(**{"window_s": 2.0, **kw})


def test_forward_shapes():
    m = tiny()
    out = m(torch.randn(2, 12, T), torch.arange(12))
    assert out["pred"].shape == (2, 12, 8, 25) and out["mask"].shape == (2, 12, 8)
    assert out["pooled"].shape == (2, 64) and out["lead_weights"].shape == (2, 12)


def test_other_leads_reach_a_lead_only_through_the_latents():
    x = torch.randn(1, 12, T)
    noise = torch.rand(1, 12, 8, generator=torch.Generator().manual_seed(0))
    x2 = x.clone()
    x2[0, 5] += 3.0  # change another lead only
    for name in ("LAMAE", "LAMAE-attn", "LAMAE-summary", "LAMAE-global", "LAMAE-mean"):
        m = member(name)
        p1, p2 = (m(v, torch.arange(12), noise=noise)["pred"][0, 0] for v in (x, x2))
        assert not torch.allclose(p1, p2), name
        # with the latents zeroed, nothing crosses between leads any more
        z1, z2 = (m(v, torch.arange(12), noise=noise, intervene="zero")["pred"][0, 0] for v in (x, x2))
        torch.testing.assert_close(z1, z2)
    m = member("IndS")
    q1, q2 = (m(v, torch.arange(12), noise=noise)["pred"][0, 0] for v in (x, x2))
    torch.testing.assert_close(q1, q2)  # no cross-lead path at all


@pytest.mark.parametrize("stem", ["linear", "conv"])
def test_the_router_is_mask_aware(stem):
    """A masked patch or an absent lead changes nothing: only visible tokens enter the latents
    (the conv stem, which runs along the whole lead, reads masked samples as zeros)."""
    m = member("LAMAE", stem=stem)
    x = torch.randn(1, 12, T)
    noise = torch.rand(1, 12, 8, generator=torch.Generator().manual_seed(0))
    present = torch.ones(1, 12, dtype=torch.bool)
    present[0, 7] = False
    base = m(x, torch.arange(12), present, noise=noise)
    masked = base["mask"][0, 5].bool()
    x2 = m.patchify(x.clone())
    x2[0, 5, masked] += 5.0       # lead aVF, its masked patches only
    x2[0, 7] += 5.0               # lead V2, absent
    out = m(x2.view(1, 12, T), torch.arange(12), present, noise=noise)
    # every present lead's prediction is unchanged (the absent lead's own is not a prediction)
    torch.testing.assert_close(out["pred"][present], base["pred"][present])
    torch.testing.assert_close(out["pooled"], base["pooled"])


def test_shuffled_latents_carry_another_ecgs_leads():
    x = torch.randn(3, 12, T)
    drop = torch.zeros(3, 12, dtype=torch.bool)
    drop[:, 2] = True  # lead III hidden: its decoder tokens are all mask tokens, it hears only the latents
    m = member("LAMAE-summary")  # one router after the encoder: the latents of ECG k are ECG k's alone
    own = m(x, torch.arange(12), mask_ratio=0.0, drop=drop)["pred"]
    shuffled = m(x, torch.arange(12), mask_ratio=0.0, drop=drop, intervene="shuffle")["pred"]
    torch.testing.assert_close(shuffled[1, 2], own[0, 2], atol=1e-5, rtol=1e-4)  # ECG 1 got ECG 0's
    m = member("LAMAE")
    own = m(x, torch.arange(12), mask_ratio=0.0, drop=drop)["pred"]
    shuffled = m(x, torch.arange(12), mask_ratio=0.0, drop=drop, intervene="shuffle")["pred"]
    assert not torch.allclose(own[:, 2], shuffled[:, 2])


def test_cost_is_linear_in_the_number_of_leads():
    m = member("LAMAE")
    f1, f6, f12 = (training_step_flops(m, 2, n) for n in (1, 6, 12))
    # a + b * leads: the per-position latents cost the same whatever the number of leads
    assert f12 / f6 < 2.0 and abs((f12 - f6) - 6 / 5 * (f6 - f1)) < 0.01 * f12
    j = member("Joint")
    assert training_step_flops(j, 2, 12) / training_step_flops(j, 2, 6) > 2.1


def test_rms_input_scale_makes_the_embedding_scale_free_and_subset_consistent():
    m = tiny(input_scale="rms")
    x = torch.randn(2, 12, T)
    a, _ = m.embed(x, torch.arange(12))
    b, _ = m.embed(x * 7.0, torch.arange(12))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # three leads cut out of a twelve-lead ECG equal those three leads given alone
    present = torch.zeros(2, 12, dtype=torch.bool)
    present[:, [0, 1, 7]] = True
    c, _ = m.embed(x, torch.arange(12), present)
    d, _ = m.embed(x[:, [0, 1, 7]] * 3.0, torch.tensor([0, 1, 7]))
    torch.testing.assert_close(c, d, atol=1e-5, rtol=1e-4)
    # predictions come back in the input's units
    out = m(x * 5.0, torch.arange(12), mask_ratio=0.0)
    ref = m(x, torch.arange(12), mask_ratio=0.0)
    torch.testing.assert_close(out["pred"], ref["pred"] * 5.0, atol=1e-4, rtol=1e-4)


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
    with pytest.raises(ValueError, match="intervene"):
        m(torch.randn(1, 12, T), torch.arange(12), intervene="flip")


def test_named_sizes():
    assert set(SIZES) >= {"tiny", "small", "base"}
    base = Lamae(LamaeConfig(**SIZES["base"]))
    # ViT-B blocks (85M) + 3 narrow lead routers (3.5M; at full width with the latents' MLP, 28M)
    assert 87e6 < base.num_parameters("encoder") < 90e6
    full = Lamae(LamaeConfig(**SIZES["base"], router_width=1.0, latent_mlp=True))
    assert 110e6 < full.num_parameters("encoder") < 116e6
    assert base.encoder.after == [3, 7, 11]
    assert len(STANDARD_LEADS) == base.lead_embed.num_embeddings
    ind = Lamae(LamaeConfig(**SIZES["base"], encoder="per_lead", aggregator="none"))
    assert 80e6 < ind.num_parameters("encoder") < 90e6  # the plain ViT-B encoder, the paper's ~86M


def test_joint_model_mixes_leads_in_the_encoder():
    x = torch.randn(1, 12, T)
    x2 = x.clone()
    x2[0, 5] += 3.0
    keep = torch.arange(8)[None, None].expand(1, 12, -1)
    present = torch.ones(1, 12, dtype=torch.bool)
    for name, mixes in (("Joint", True), ("IndS", False), ("LAMAE", True)):
        m = member(name)
        a, b = (m.encode(v, torch.arange(12)[None], present, keep).tokens for v in (x, x2))
        assert torch.allclose(a[0, 0], b[0, 0]) != mixes, name


def test_private_leads_have_their_own_weights():
    m = member("IndP").train()
    m(torch.randn(2, 2, T), ["I", "V1"])["loss"].backward()
    grad = m.encoder.layers[0].qkv.weight.grad  # (12 leads, 3D, D): lead I and V1 only
    assert grad[0].abs().sum() > 0 and grad[6].abs().sum() > 0
    assert grad[1].abs().sum() == 0  # lead II was not in the batch


@pytest.mark.parametrize("align", ["mse", "cosine", "infonce"])
def test_alignment_loss_is_added_with_its_annealed_weight(align):
    m = tiny(encoder="per_lead", aggregator="none", align=align, align_weight=0.5).train()
    x = torch.randn(4, 12, T)
    g = torch.Generator()
    out = m(x, torch.arange(12), generator=g.manual_seed(0), align_scale=0.2)
    assert torch.isfinite(out["align"])
    torch.testing.assert_close(out["loss"], out["reconstruction"] + 0.5 * 0.2 * out["align"])
    out0 = m(x, torch.arange(12), generator=g.manual_seed(0), align_scale=0.0)
    torch.testing.assert_close(out0["loss"], out0["reconstruction"])
    out["loss"].backward()
    assert m.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_family_members_are_consistent():
    for name, spec in FAMILY.items():
        cfg = model_config(name, "tiny")
        assert spec["kind"] in ("mae", "scratch", "random")
        if spec.get("reuse"):
            assert model_config(spec["reuse"], "tiny") == cfg
    # LAMAE is the default router model plus its lead field and narrow routers with the latents'
    # MLP, trained with partial decoding; LamaeConfig itself defaults to no lead field, narrow
    # routers without the MLP and full decoding, so checkpoints written before any existed load
    # as trained
    routers = {"router_width": 0.25, "latent_mlp": True}
    assert model_config("LAMAE", "tiny") == LamaeConfig(**SIZES["tiny"], lead_field=8, decode_ratio=0.5, **routers)
    assert model_config("LAMAE-attn", "tiny") == LamaeConfig(**SIZES["tiny"], decode_ratio=0.5, **routers)
