import pytest

from lamae.models.family import FAMILY, count_parameters, match_parameters, model_config
from lamae.models.lamae import Lamae
from lamae.utils.flops import supervised_step_flops, training_step_flops


def test_every_baseline_can_be_matched_to_lamae_within_10_percent():
    ref = count_parameters(model_config("LAMAE", "tiny", window_s=2.0))
    assert ref == sum(p.numel() for p in Lamae(model_config("LAMAE", "tiny", window_s=2.0)).parameters())
    for name in FAMILY:
        cfg, ok = match_parameters(model_config(name, "tiny", window_s=2.0), ref)
        assert ok and abs(count_parameters(cfg) - ref) <= 0.10 * ref, name
    indp, _ = match_parameters(model_config("IndP", "tiny", window_s=2.0), ref)
    assert indp.dim < 64  # twelve private encoders have to be narrower


def test_flops_count_attention_and_scale_with_batch():
    lamae = Lamae(model_config("LAMAE", "tiny"))
    joint = Lamae(model_config("Joint", "tiny"))
    inds = Lamae(model_config("IndS", "tiny"))
    f4, f8 = training_step_flops(lamae, 4), training_step_flops(lamae, 8)
    assert f8 == pytest.approx(2 * f4, rel=0.01)
    # one sequence over 12 leads costs quadratically more attention than 12 short ones
    assert training_step_flops(joint, 4) > 1.5 * training_step_flops(inds, 4)
    assert supervised_step_flops(lamae, n_labels=5, batch_size=4) > 0


# --------------------------------------------------------------------------- IndP's grouped encoder
def _indp():
    import torch

    torch.manual_seed(0)
    return Lamae(model_config("IndP", "tiny", window_s=2.0))


def _as_stacks(state: dict) -> dict:
    """The grouped state dict written the way lamae 0.2 wrote it: twelve lists of Blocks."""
    from lamae.models.layers import BLOCK_TO_GROUPED

    back = {v: k for k, v in BLOCK_TO_GROUPED.items()}
    out = {}
    for key, value in state.items():
        if not key.startswith("encoder.layers."):
            out[key] = value
            continue
        layer, rest = key[len("encoder.layers."):].split(".", 1)
        old = next(back[g] + rest[len(g):] for g in back if rest.startswith(g))
        for lead in range(value.shape[0]):
            out[f"encoder.stacks.{lead}.{layer}.{old}"] = value[lead].clone()
    return out


def test_grouped_private_encoder_equals_twelve_separate_encoders():
    """The batched IndP computes what twelve separate Block stacks (lamae 0.2's IndP) compute,
    within 1e-5, in the usual layout, with a lead subset, and with leads in different slots."""
    import torch

    from lamae.models.layers import Block

    m = _indp()
    cfg, stacks = m.cfg, _as_stacks(m.state_dict())
    blocks = [[Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)] for _ in range(12)]
    for lead in range(12):
        for i, blk in enumerate(blocks[lead]):
            pre = f"encoder.stacks.{lead}.{i}."
            blk.load_state_dict({k[len(pre):]: v for k, v in stacks.items() if k.startswith(pre)})

    def reference(seq, leads):
        out = torch.empty_like(seq)
        for bi in range(seq.shape[0]):
            for li in range(seq.shape[1]):
                x = seq[bi, li][None]
                for blk in blocks[int(leads[bi, li])]:
                    x = blk(x)
                out[bi, li] = x[0]
        return out

    torch.manual_seed(1)
    seq = torch.randn(3, 12, 5, cfg.dim)
    with torch.no_grad():
        for leads in (torch.arange(12).expand(3, -1), torch.tensor([3, 7, 0]).expand(3, -1)[:, :3],
                      torch.stack([torch.randperm(12) for _ in range(3)])):
            s = seq[:, :leads.shape[1]]
            got = m.encoder(s, None, None, leads=leads).tokens
            assert torch.allclose(got, reference(s, leads), atol=1e-5), leads


def test_indp_checkpoints_written_with_separate_stacks_still_load_and_give_the_same_outputs():
    import torch

    m = _indp()
    old = _as_stacks(m.state_dict())
    assert not any(k.startswith("encoder.layers.") for k in old)
    again = Lamae(m.cfg)
    again.load_state_dict(old, strict=True)  # converted by the encoder's load hook
    x = torch.randn(2, 12, 200)
    torch.manual_seed(5)
    noise = torch.rand(2, 12, 8)
    with torch.no_grad():
        a = m(x, torch.arange(12), noise=noise)["pred"]
        b = again(x, torch.arange(12), noise=noise)["pred"]
    assert torch.equal(a, b)
