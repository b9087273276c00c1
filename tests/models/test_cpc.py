"""CPC with an S4D encoder: the state-space layer, causality, the InfoNCE loss and its training."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lamae.models.cpc import info_nce_loss
from lamae.models.ssm import S4D
from lamae.models.family import FAMILY, make_model, model_config
from lamae.models.config import LamaeConfig

from .state_space import check_a_subset_is_the_twelve_with_the_rest_absent, idle_weights, short_pretraining

T = 200  # 2 s at 100 Hz: 40 frames of 5 samples


def cpc(**kw):
    torch.manual_seed(0)
    return make_model(model_config("CPC", "tiny", kw, fs=100.0, window_s=2.0)).eval()


def recurrence(layer: S4D, u: torch.Tensor) -> torch.Tensor:
    """The layer run step by step: x_t = A_bar x_{t-1} + B_bar u_t, y_t = 2 Re(C x_t) + D u_t."""
    a_bar, b_bar, c = layer.discrete()
    state = torch.zeros(u.shape[0], *a_bar.shape, dtype=a_bar.dtype)
    out = []
    for t in range(u.shape[-1]):
        state = a_bar * state + b_bar * u[:, :, t, None]
        out.append(2 * (c * state).sum(-1).real + layer.d * u[:, :, t])
    return torch.stack(out, dim=-1)


def test_the_fft_convolution_equals_the_recurrence():
    torch.manual_seed(0)
    layer = S4D(6, n_state=8)
    with torch.no_grad():  # dt spread wide, so slow and fast modes are both checked
        layer.log_dt.copy_(torch.linspace(math.log(1e-3), math.log(0.5), 6))
    u = torch.randn(3, 6, 50)
    with torch.no_grad():
        torch.testing.assert_close(layer(u), recurrence(layer, u), atol=1e-4, rtol=1e-4)


def test_the_context_is_causal():
    """The context at frame t depends on the samples of frames 0..t only."""
    m = cpc()
    x = torch.randn(2, 12, T)
    leads, present = torch.arange(12), torch.ones(2, 12, dtype=torch.bool)
    _, c1 = m.encode(x, leads.expand(2, -1), present)
    x2 = x.clone()
    x2[..., 100:] += torch.randn_like(x2[..., 100:])    # frame 20 onwards
    z2, c2 = m.encode(x2, leads.expand(2, -1), present)
    torch.testing.assert_close(c2[:, :20], c1[:, :20])
    assert not torch.allclose(c2[:, 20:], c1[:, 20:])


def test_info_nce_on_cases_with_a_known_answer():
    b, n, k, d = 4, 6, 2, 8
    z = torch.randn(b, n, d)
    # predictions that score every candidate alike: log of the candidates, the n - k frames of
    # its own ECG and the same frame of the b - 1 others, averaged over the steps
    chance = (math.log(n - 1 + b - 1) + math.log(n - 2 + b - 1)) / 2
    assert float(info_nce_loss(torch.zeros(b, n, k, d), z)) == pytest.approx(chance, abs=1e-6)
    # every frame of every ECG orthogonal to the others, predictions pointing at the right one:
    # the loss vanishes
    b, n = 2, 3
    z = torch.eye(b * n).view(b, n, b * n)
    preds = torch.zeros(b, n, k, b * n)
    for step in (1, 2):
        preds[:, : n - step, step - 1] = 50 * z[:, step:]
    assert float(info_nce_loss(preds, z)) < 1e-6
    # two ECGs of two frames, one step ahead, worked by hand: ECG 0 scores its own next frame 2
    # and the other's 0; ECG 1 scores both 1 -> the mean of the two cross-entropies
    z = torch.tensor([[[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
    preds = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]], [[[1.0, 1.0]], [[0.0, 0.0]]]])
    want = (F.cross_entropy(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
            + F.cross_entropy(torch.tensor([[1.0, 1.0]]), torch.tensor([0]))) / 2
    assert float(info_nce_loss(preds, z)) == pytest.approx(float(want), abs=1e-6)


def test_an_ecg_constant_does_not_solve_the_task():
    """Frames that carry only something constant over each ECG (its leads, its scale) cannot
    tell its own next frame from its other frames: the loss stays at chance for that part."""
    b, n, d = 4, 8, 6
    ident = torch.randn(b, 1, d).expand(b, n, d)          # each ECG's frames all alike
    preds = 10 * ident[:, :, None, :]                      # a perfect guess of the ECG, k = 1
    loss = float(info_nce_loss(preds, ident))
    assert loss >= math.log(n - 1) - 1e-4                  # no better than chance among its own frames


def test_any_lead_subset_in_any_order():
    m = cpc()
    x = torch.randn(3, 12, T)
    full, _ = m.embed(x, torch.arange(12))
    perm = torch.randperm(12)
    shuffled, _ = m.embed(x[:, perm], perm)
    torch.testing.assert_close(shuffled, full, atol=1e-5, rtol=1e-4)
    check_a_subset_is_the_twelve_with_the_rest_absent(m, x)


def test_cpc_settings_are_checked_and_it_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="cpc objective needs the s4 encoder"):
        LamaeConfig(window_s=2.0, objective="cpc")
    with pytest.raises(ValueError, match="leaves 2 frames"):
        model_config("CPC", "tiny", {"cpc_stride": 100}, fs=100.0, window_s=2.0)
    m = cpc()
    with pytest.raises(ValueError, match="one readout"):
        m.embed(torch.randn(2, 12, T), torch.arange(12), pooling="leads")
    with pytest.raises(Exception, match="at least 2 ECGs"):
        m(torch.randn(1, 12, T), torch.arange(12))
    assert FAMILY["CPC"]["model"]["objective"] == "cpc"


def test_every_cpc_weight_learns_and_short_pretraining_lowers_the_loss(store, tmp_path):
    from lamae.checkpoint import load_checkpoint

    assert not idle_weights(cpc(), T)
    out = tmp_path / "run"
    loss = short_pretraining(store, out, "CPC")
    chance = sum(math.log(40 - k + 15) for k in range(1, 13)) / 12   # 40 frames, 16 ECGs, 12 steps
    assert loss[0] == pytest.approx(chance, rel=0.15)
    assert loss[-3:].mean() < 0.93 * chance, loss   # 3.88 -> 3.53 in 60 steps on the 2 s test store
    model, config = load_checkpoint(out)
    assert type(model).__name__ == "Cpc" and config["model"]["objective"] == "cpc"
    # lamae leads probes it with lead subsets like any member; lamae reconstruct refuses it by name
    from lamae.api import load
    from lamae.cli import main
    from lamae.errors import LamaeError

    assert main(["leads", "--store", str(store.path), "--checkpoint", f"CPC={out}", "--sets", "1", "3", "12",
                 "--out", str(tmp_path / "leads")]) == 0
    report = json.loads((tmp_path / "leads" / "leads.json").read_text())
    assert list(report["results"]["CPC"]) == ["1", "3", "12"]
    with pytest.raises(LamaeError, match="CPC model has no decoder"):
        load(out).reconstruct(torch.randn(12, T).numpy(), 100.0, "standard", hide=["III"])
