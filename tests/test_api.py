"""The Python API on users' arrays: any leads, rates, lengths; clear errors; reconstruction."""

import warnings

import numpy as np
import pytest

import lamae
from lamae.data.synth import MIMIC_LEAD_ORDER, simulate_ecg
from lamae.errors import LamaeError, LeadNameError, ShapeError
from lamae.leads import STANDARD_LEADS, canonical_leads


@pytest.fixture(scope="session")
def model(tiny_run):
    return lamae.load(tiny_run)


def ecg(fs: float, seconds: float, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A synthetic 12-lead ECG in mV (MIMIC lead order, aVF before aVL)."""
    x = simulate_ecg(np.random.default_rng(seed), set(), fs=fs, duration_s=seconds)
    return x.astype(np.float32), list(canonical_leads(MIMIC_LEAD_ORDER))


def test_load_carries_the_preprocessing(model, store):
    assert model.preprocessing == store.preprocessing
    assert "100 Hz" in repr(model)


def test_embed_six_lead_360hz_and_twelve_lead_500hz_with_one_checkpoint(model):
    x12, leads12 = ecg(500, 10.0)
    limb = ["I", "II", "III", "aVR", "aVL", "aVF"]
    x6 = ecg(360, 7.0)[0][[leads12.index(lead) for lead in limb]]
    z12 = model.embed(x12, fs=500, leads=leads12)
    z6, w6 = model.embed(x6, fs=360, leads=limb, return_weights=True)
    assert z12.shape == z6.shape == (model.dim,)
    assert np.isfinite(z12).all() and np.isfinite(z6).all()
    assert w6.shape == (6,) and w6.sum() == pytest.approx(1.0, abs=1e-5)
    # Several ECGs at once give the same as one at a time.
    both = model.embed(np.stack([x12, x12 * 0.5]), fs=500, leads=leads12)
    np.testing.assert_allclose(both[0], z12, atol=1e-5)


def test_lead_order_and_aliases_do_not_matter(model):
    x, leads = ecg(250, 10.0)
    perm = np.random.default_rng(1).permutation(12)
    a = model.embed(x, 250, leads)
    b = model.embed(x[perm], 250, [leads[i].upper() for i in perm])  # "AVR" etc.
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_long_records_are_tiled_and_short_ones_padded(model):
    x, leads = ecg(500, 12.0)
    one = model.record_windows(x[:, :1000], 500, leads)[0]  # 2 s = one window
    assert one.shape == (1, 12, model.preprocessing.n_samples)
    assert model.record_windows(x[:, :5000], 500, leads, windows="tile")[0].shape[0] == 5
    assert model.record_windows(x[:, :5500], 500, leads, windows="tile")[0].shape[0] == 6  # 1 s tail kept
    assert model.record_windows(x[:, :5200], 500, leads, windows="tile")[0].shape[0] == 5  # 0.4 s tail dropped
    assert model.record_windows(x, 500, leads, windows="center")[0].shape[0] == 1
    z = model.embed(x[:, :600], 500, leads)  # 1.2 s of a 2-s window: padded
    assert np.isfinite(z).all()


def test_nan_samples_are_interpolated_and_nan_leads_dropped(model):
    x, leads = ecg(500, 4.0)
    clean = model.embed(x, 500, leads)
    y = x.copy()
    y[3, 100:105] = np.nan
    np.testing.assert_allclose(model.embed(y, 500, leads), clean, atol=0.05)
    y[leads.index("aVF"), :] = np.nan
    with pytest.warns(UserWarning, match="aVF"):
        _, w = model.embed(y, 500, leads, return_weights=True)
    assert w[leads.index("aVF")] == 0.0
    flat = x.copy()
    flat[leads.index("V3")] = 0.2
    with pytest.warns(UserWarning, match="V3 flat"):
        model.embed(flat, 500, leads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(LamaeError, match="every lead"):
            model.embed(np.full_like(x, np.nan), 500, leads)


def test_clear_errors(model):
    x, leads = ecg(500, 10.0)
    with pytest.raises(ShapeError, match="pass signal.T"):
        model.embed(x.T, 500, leads)
    with pytest.raises(LeadNameError, match="unknown lead name 'V7'"):
        model.embed(x[:2], 500, ["I", "V7"])
    with pytest.raises(LeadNameError, match="more than once"):
        model.embed(x[:2], 500, ["I", "I"])
    with pytest.raises(LamaeError, match="list naming each row"):
        model.embed(x, 500, None)
    with pytest.raises(LamaeError, match="too low"):
        model.embed(x, 50, leads)
    with pytest.raises(LamaeError, match="needs at least 1 s"):
        model.embed(x[:, :200], 500, leads)
    with pytest.raises(ShapeError, match="leads, samples"):
        model.embed(x[0], 500, ["I"])
    with pytest.raises(ShapeError, match="holds text, not numbers"):
        model.embed([["a", "b"]], 500, ["I"])


def test_model_card_sits_beside_every_checkpoint(tiny_run, store):
    ck = next((tiny_run / "checkpoints").iterdir())
    card = (ck / "MODEL_CARD.md").read_text()
    p = store.preprocessing
    assert "## Preprocessing" in card and f"sampling rate: {p.fs} Hz" in card
    assert "band-pass: 0.5-40 Hz" in card and "lead_zscore" in card
    assert str(store.path) in card and "masked-patch MSE" in card


def test_reconstruct_api_shapes_and_missing_leads(model):
    x, leads = ecg(500, 10.0)
    limb = [leads.index(lead) for lead in STANDARD_LEADS[:6]]
    r = model.reconstruct(x[limb], 500, list(STANDARD_LEADS[:6]), hide=["III"])
    assert r.hidden == ["III"] and r.missing == list(STANDARD_LEADS[6:])
    assert r.inputs == ["I", "II", "aVR", "aVL", "aVF"]
    assert r.reconstruction.shape == (12, model.preprocessing.n_samples)
    assert np.isnan(r.original[6:]).all() and np.isfinite(r.reconstruction).all()
    assert set(r.errors) == {"III"} and r.errors["III"]["mse_zeros"] == pytest.approx(1.0, abs=0.05)
    with pytest.raises(LamaeError, match="cannot hide"):
        model.reconstruct(x[limb], 500, list(STANDARD_LEADS[:6]), hide=["V1"])


def test_a_dropped_lead_is_reconstructed_better_than_zeros(store):
    """The reconstruction path end to end: a tiny model trained to fill in lead III from the
    others (III always hidden, the other leads masked as usual) is asked, through the API,
    to reconstruct III of the records it trained on. Held-out reconstruction needs far longer
    pretraining than a test allows (the README gives measured figures)."""
    import torch

    from lamae.api import Pretrained
    from lamae.data.sources import MimicEcgReader
    from lamae.models.family import build_model

    rows = store.rows("train")[:16]
    x, present = store.batch(rows)
    torch.manual_seed(0)
    net = build_model("tiny", fs=store.preprocessing.fs, window_s=store.preprocessing.window_s)
    opt = torch.optim.AdamW(net.parameters(), lr=5e-3)
    drop = torch.zeros_like(present)
    drop[:, STANDARD_LEADS.index("III")] = True
    for _ in range(800):
        loss = net(x, torch.arange(12), present, drop=drop)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = Pretrained(net, store.preprocessing)
    reader = MimicEcgReader(store.meta["source"])
    by_id = {it.record_id: it for it in reader.items()}
    errors = []
    for rid in store.index["record_id"].to_numpy()[rows]:
        rec = reader.read(by_id[rid])
        errors.append(model.reconstruct(rec.signal, rec.fs, rec.leads, hide=["III"]).errors["III"])
    mse, zeros = np.mean([e["mse"] for e in errors]), np.mean([e["mse_zeros"] for e in errors])
    assert mse < 0.85 * zeros, (mse, zeros)
    assert np.mean([e["corr"] for e in errors]) > 0.3
