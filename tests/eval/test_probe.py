import json

import numpy as np
import pytest

from lamae.eval.metrics import auroc, node_aurocs
from lamae.eval.probe import fit_linear_probe, run_probe


def test_linear_probe_beats_chance_on_data_with_signal():
    rng = np.random.default_rng(0)
    n, d = 900, 16
    x = rng.normal(size=(n, d))
    logits = np.stack([x[:, 0] * 2, x[:, 1] - x[:, 2], rng.normal(size=n)], axis=1)  # last: no signal
    y = (logits + 0.5 * rng.normal(size=logits.shape) > 0.8).astype(np.float64)
    probe = fit_linear_probe(x[:600], y[:600], x[600:750], y[600:750])
    auc = node_aurocs(y[750:], probe.predict(x[750:]))
    assert auc[0] > 0.9 and auc[1] > 0.85
    assert 0.35 < auc[2] < 0.65


def test_probe_report_on_a_tiny_run(store, tmp_path):
    from lamae.train.pretrain import PretrainConfig, pretrain

    run = tmp_path / "run"
    pretrain(PretrainConfig(store=str(store.path), out=str(run), steps=4, batch_size=16, base_lr=0.01,
                            warmup_steps=1, checkpoint_every=100), progress=False)
    rep = run_probe(run, store.path, tmp_path / "probe", min_prevalence=0.02, min_count=2, progress=False)
    saved = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert saved["macro"].keys() == {"LAMAE", "random init"}
    assert set(saved["macro"]["LAMAE"]) >= {"chapter", "block", "category", "subcategory", "all"}
    nodes = {r["node"] for r in rep["nodes"]}
    assert "IX" in nodes  # chapter IX is always prevalent in the synthetic data
    md = (tmp_path / "probe" / "probe.md").read_text()
    import re
    assert re.search(r"\| IX\*? \| chapter \|", md) and "Macro AUROC per hierarchy level" in md
    assert (tmp_path / "probe" / "roc.png").stat().st_size > 5000
    assert abs(sum(saved["mean_lead_weights"].values()) - 1) < 1e-3
    # the test scores behind the table are kept, and reproduce its AUROCs
    scores = np.load(tmp_path / "probe" / "probe_scores.npz")
    assert list(scores["names"]) == ["LAMAE", "random init"]
    j = list(scores["nodes"]).index("IX")
    row = next(r for r in rep["nodes"] if r["node"] == "IX")
    assert abs(auroc(scores["y_test"][:, j], scores["p_test"][0, :, j]) - row["LAMAE"]) < 1e-4


def test_probe_refuses_a_store_with_other_preprocessing(store, tmp_path, synth_dir):
    from lamae.data.preprocess import Preprocessing
    from lamae.data.sources import MimicEcgReader
    from lamae.data.store import prepare
    from lamae.errors import LamaeError
    from lamae.train.pretrain import PretrainConfig, pretrain

    run = tmp_path / "run"
    pretrain(PretrainConfig(store=str(store.path), out=str(run), steps=1, batch_size=16), progress=False)
    other = prepare(MimicEcgReader(synth_dir), tmp_path / "other", Preprocessing(fs=100, window_s=2.0,
                                                                                  bandpass=None),
                    limit=30, progress=False)
    with pytest.raises(LamaeError, match="differs from the checkpoint"):
        run_probe(run, other.path, tmp_path / "p", progress=False)
