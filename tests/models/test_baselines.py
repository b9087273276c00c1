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
