"""`lamae embed`: embeddings and lead weights for a whole dataset, resumable, bad records listed."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from lamae.cli import main
from lamae.data.sources import MimicEcgReader
from lamae.leads import STANDARD_LEADS


def test_embed_parquet_and_npy(tiny_run, synth_dir, store, tmp_path, capsys):
    out = tmp_path / "emb.parquet"
    assert main(["embed", str(synth_dir), "--checkpoint", str(tiny_run), "--out", str(out),
                 "--chunk-size", "32"]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 90 and table["record_id"].is_unique
    assert np.stack(table["embedding"]).shape == (90, 64)
    weights = table[[f"weight_{lead}" for lead in STANDARD_LEADS]].to_numpy()
    np.testing.assert_allclose(np.nansum(weights, axis=1), 1.0, atol=1e-5)
    assert not (tmp_path / "emb.parquet.parts").exists()
    # From the store (already preprocessed), as NPY with a records table.
    npy = tmp_path / "emb.npy"
    assert main(["embed", str(store.path), "--checkpoint", str(tiny_run), "--out", str(npy)]) == 0
    arr = np.load(npy)
    side = pd.read_csv(tmp_path / "emb.records.csv", dtype={"record_id": str})
    assert arr.shape == (90, 64) and list(side["record_id"]) == list(store.index["record_id"])
    # The same record embeds the same from the raw files and from the store, window for window (the
    # store holds each record's first 2 s; the raw path averages 2-s tiles unless told otherwise).
    start = tmp_path / "start.parquet"
    assert main(["embed", str(synth_dir), "--checkpoint", str(tiny_run), "--out", str(start),
                 "--windows", "start", "--limit", "3"]) == 0
    first = store.index["record_id"].iat[0]
    by_name = {rid.split("/")[-1]: e for rid, e in pd.read_parquet(start)[["record_id", "embedding"]].values}
    scale = np.abs(arr[0]).max()
    assert np.abs(by_name[first] - arr[0]).max() < 0.02 * scale  # float16 storage of the store
    tiled = dict(zip(table["record_id"].str.split("/").str[-1], table["embedding"]))[first]
    assert np.abs(tiled - arr[0]).max() > 0.02 * scale  # other windows carry other information


def test_embed_skips_bad_records_and_resumes(tiny_run, synth_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    items = MimicEcgReader(data).items()
    dat = data / (items[5].path + ".dat")
    dat.write_bytes(dat.read_bytes()[:500])
    out = tmp_path / "emb.parquet"
    # Crash in the third chunk; the first two are kept.
    from lamae import embed as embed_mod
    real = embed_mod._rows_from_source
    calls = {"n": 0}

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(embed_mod, "_rows_from_source", crashing)
    with pytest.raises(KeyboardInterrupt):
        embed_mod.embed_dataset(tiny_run, data, out, fmt="mimic", chunk_size=20, progress=False)
    assert json.loads((tmp_path / "emb.parquet.parts" / "progress.json").read_text())["done"] == 2
    monkeypatch.setattr(embed_mod, "_rows_from_source", real)
    r = embed_mod.embed_dataset(tiny_run, data, out, fmt="mimic", chunk_size=20, progress=False)
    assert r["n_records"] == 89 and r["n_skipped"] == 1
    skipped = pd.read_csv(tmp_path / "emb.skipped.csv", dtype=str)
    assert skipped["record_id"].iat[0] == items[5].record_id and "truncated" in skipped["problem"].iat[0]


def test_one_embedding_path_for_the_api_and_the_store(tiny_run, store):
    """The API's arrays, a store's rows and reduced-lead evaluation give the same vectors."""
    from lamae import load
    from lamae.embedding import embed_store

    model = load(tiny_run)
    rows = store.rows()[:7]
    feats, weights = embed_store(model.model, store, rows, batch_size=3, progress=False)
    x, present = store.batch(rows)
    api_feats, api_weights = model.embed_windows(x.numpy(), present.numpy(), batch_size=4)
    np.testing.assert_allclose(api_feats, feats, atol=1e-5)
    np.testing.assert_allclose(api_weights, weights, atol=1e-6)
    limb, _ = embed_store(model.model, store, rows, progress=False, lead_set=["I", "II"])
    cut = np.where(np.isin(np.arange(12), [0, 1])[None], present.numpy(), False)
    by_hand, _ = model.embed_windows(x.numpy() * cut[..., None], cut)
    np.testing.assert_allclose(limb, by_hand, atol=1e-5)
