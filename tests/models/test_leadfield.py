"""The lead field: a mask-aware linear estimate of every lead from the leads visible at each time."""

import pytest
import torch

from lamae.leads import lead_indices
from lamae.models.config import LamaeConfig
from lamae.models.family import build_model
from lamae.models.leadfield import LeadField


def _field(k=3, patch=5):
    torch.manual_seed(0)
    return LeadField(12, k, patch, 16)


def test_einthoven_is_exact_when_the_loadings_say_so():
    """With III's loading = II's - I's and almost no noise, III is rebuilt from I and II alone."""
    f = _field()
    with torch.no_grad():
        f.raw_noise.fill_(-12.0)  # psi ~ 1e-4
        u = f.loadings
        u[2] = u[1] - u[0]
    leads = torch.tensor([lead_indices(["I", "II", "III"])])
    x = torch.randn(1, 3, 4, 5)
    x[:, 2] = x[:, 1] - x[:, 0]
    visible = torch.tensor([[True, True, False]])[..., None].expand(1, 3, 4)
    est = f.estimate(f.sources(x, leads, visible), leads)
    assert torch.allclose(est[:, 2], x[:, 2], atol=1e-2)


def test_masked_patches_and_absent_leads_take_no_part():
    f = _field()
    leads = torch.arange(12)[None].expand(2, -1)
    x = torch.randn(2, 12, 4, 5)
    visible = torch.rand(2, 12, 4) < 0.5
    visible[:, 7] = False  # lead V2 absent
    s = f.sources(x, leads, visible)
    y = torch.where(visible[..., None], x, torch.randn_like(x) * 100)
    assert torch.allclose(f.sources(y, leads, visible), s, atol=1e-5)


def test_no_visible_lead_gives_the_prior_mean():
    f = _field()
    s = f.sources(torch.randn(1, 12, 4, 5), torch.arange(12)[None], torch.zeros(1, 12, 4, dtype=torch.bool))
    assert torch.count_nonzero(s) == 0


@pytest.mark.parametrize("raw_noise", [None, -9.0, -12.0])  # as initialised; near-noiseless leads
def test_sources_are_as_accurate_as_linalg_solve(raw_noise):
    """``sources`` solves each position's system by an explicit inverse refined once (faster
    than ``linalg.solve`` on many small systems). Against the same system solved in float64,
    its values and gradients are about as accurate as float32 ``linalg.solve``'s (what it
    replaced), also when near-noiseless leads make the precision ill-conditioned. Errors are
    norms over 400 systems; two float32 solvers differ by a few times at random, so the bound is
    3x LU's (``python benchmarks/kernels.py`` prints each solver's ratio to LU over 25 seeds:
    Cholesky's and the refined inverse's stay within it, the unrefined inverse's do not)."""
    f = _field(k=8, patch=5)
    if raw_noise is not None:
        with torch.no_grad():
            f.raw_noise.fill_(raw_noise)
    leads = torch.arange(12)[None].expand(8, -1)
    x = torch.randn(8, 12, 50, 5)
    visible = torch.rand(8, 12, 50) < 0.5
    visible[0, :, 0] = False  # a position with no lead visible
    grad = torch.randn(8, 50, 8, 5, dtype=torch.float64)

    def value_and_grads(fn):
        f.zero_grad()
        out = fn()
        (out.double() * grad).sum().backward()
        return [out.detach().double()] + [p.grad.double().clone() for p in (f.loadings, f.raw_noise)]

    exact = value_and_grads(lambda: torch.linalg.solve(*f.system(x, leads, visible, torch.float64)))
    old = value_and_grads(lambda: torch.linalg.solve(*f.system(x, leads, visible)))
    new = value_and_grads(lambda: f.sources(x, leads, visible))
    for name, e, o, n in zip(("sources", "loadings' gradient", "noise's gradient"), exact, old, new):
        old_error, new_error = float((o - e).norm() / e.norm()), float((n - e).norm() / e.norm())
        assert new_error <= 3 * old_error + 1e-7, (name, new_error, old_error)


def test_sources_do_not_depend_on_lead_order():
    f = _field()
    leads = torch.arange(12)[None]
    x, visible = torch.randn(1, 12, 4, 5), torch.rand(1, 12, 4) < 0.6
    perm = torch.randperm(12)
    a = f.sources(x, leads, visible)
    b = f.sources(x[:, perm], leads[:, perm], visible[:, perm])
    assert torch.allclose(a, b, atol=1e-5)


def _model():
    torch.manual_seed(0)
    return build_model("tiny", lead_field=4, fs=50.0, window_s=2.0, patch_size=10)


def test_lamae_with_a_lead_field_trains_every_part_and_stays_invariant():
    m = _model()
    x = torch.randn(3, 12, 100)
    out = m(x, torch.arange(12), drop=torch.rand(3, 12) < 0.25, generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert [n for n, p in m.named_parameters() if p.grad is None] == []
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
    perm = torch.randperm(12)
    e1, w1 = m.embed(x, torch.arange(12))
    e2, w2 = m.embed(x[:, perm], torch.arange(12)[perm])
    assert torch.allclose(e1, e2, atol=1e-5)
    assert torch.allclose(w1[:, perm], w2, atol=1e-5)


def test_the_ablation_reaches_the_lead_field():
    """Zeroing or shuffling the latents also removes the lead field's estimate of hidden leads."""
    m = _model()
    x = torch.randn(4, 12, 100)
    hide = torch.zeros(4, 12, dtype=torch.bool)
    hide[:, lead_indices(["III", "aVF"])] = True
    with torch.no_grad():
        m.lead_field.raw_noise.fill_(-5.0)
        intact = m(x, torch.arange(12), mask_ratio=0.0, drop=hide)["pred"]
        zero = m(x, torch.arange(12), mask_ratio=0.0, drop=hide, intervene="zero")["pred"]
        m.lead_field = None
        without = m(x, torch.arange(12), mask_ratio=0.0, drop=hide, intervene="zero")["pred"]
    assert not torch.allclose(intact[:, 2], zero[:, 2], atol=1e-3)
    assert torch.allclose(zero, without, atol=1e-5)


@pytest.mark.parametrize("settings, message", [
    (dict(lead_field=4, encoder="per_lead", aggregator="none"), "router"),
    (dict(lead_field=4, norm_target=True), "norm_target"),
    (dict(lead_field=-1), "lead_field"),
    (dict(lead_field=True), "lead_field"),
])
def test_settings_that_cannot_work_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        LamaeConfig(**settings)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_the_solve_runs_in_float32_under_bf16_autocast(device):
    """GPU training runs under bf16 autocast, where the einsums would hand the solve bfloat16
    (which it refused on CUDA: the first GPU run of LAMAE failed there). The sources come out
    float32 and equal to those outside autocast, and a whole LAMAE step trains."""
    f = _field().to(device)
    leads = torch.arange(12, device=device)[None].expand(2, -1)
    x = torch.randn(2, 12, 4, 5, device=device)
    visible = torch.rand(2, 12, 4, device=device) < 0.5
    with torch.autocast(device, dtype=torch.bfloat16):
        s = f.sources(x, leads, visible)
    assert s.dtype == torch.float32
    assert torch.allclose(s, f.sources(x, leads, visible), atol=1e-5)

    torch.manual_seed(0)
    model = build_model("tiny", lead_field=3, fs=50.0, window_s=2.0, patch_size=10).to(device)
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = model(torch.randn(2, 12, model.cfg.n_samples, device=device), torch.arange(12, device=device))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert model.lead_field.loadings.grad is not None and torch.isfinite(model.lead_field.loadings.grad).all()
