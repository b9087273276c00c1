"""The model as a tool from the command line: embed, finetune, reconstruct, explain, leads."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from lamae.cli import main
from lamae.data.sources import MimicEcgReader
from lamae.leads import STANDARD_LEADS


@pytest.fixture(scope="session")
def af_labels(synth_dir, tmp_path_factory):
    """A user's labels CSV for the synthetic records: basename -> ['AF'] / ['LBBB'] / []."""
    table = pd.read_csv(synth_dir / "records_w_diag_icd10.csv")
    rows = []
    for path, codes in zip(table["file_name"], table["all_diag_all"]):
        labels = [name for name, code in (("AF", "I4891"), ("LVH", "I517")) if code in codes]
        rows.append({"record_id": path.split("/")[-1], "labels": repr(labels)})
    out = tmp_path_factory.mktemp("labels") / "labels.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


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


def test_finetune_probe_on_user_labels(tiny_run, synth_dir, af_labels, tmp_path, capsys):
    out = tmp_path / "ft"
    assert main(["finetune", str(synth_dir), "--labels", str(af_labels), "--checkpoint", str(tiny_run),
                 "--out", str(out), "--min-count", "3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_records"]["test"] > 0 and report["unmatched_label_rows"] == 0
    assert {p["label"] for p in report["labels_per_record"]} <= {"AF", "LVH"}
    assert (out / "roc.png").exists() and "macro AUROC" in capsys.readouterr().out
    card = (tiny_run / json.loads((tiny_run / "latest.json").read_text())["path"] / "MODEL_CARD.md").read_text()
    assert "probe on labels.csv" in card


def test_finetune_mode_trains_and_saves_a_model(tiny_run, synth_dir, af_labels, tmp_path):
    out = tmp_path / "ft"
    assert main(["finetune", str(synth_dir), "--labels", str(af_labels), "--checkpoint", str(tiny_run),
                 "--out", str(out), "--mode", "finetune", "--steps", "10", "--batch-size", "16",
                 "--min-count", "3"]) == 0
    assert (out / "model" / "model.safetensors").exists() and (out / "model" / "head.safetensors").exists()
    assert json.loads((out / "report.json").read_text())["mode"] == "finetune"


def test_finetune_label_errors(tiny_run, synth_dir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("record_id,labels\nx1,\"['AF'\"\n")
    assert main(["finetune", str(synth_dir), "--labels", str(bad), "--checkpoint", str(tiny_run),
                 "--out", str(tmp_path / "o")]) == 2
    # its only row is unreadable: nothing to train on, and the row is named
    assert "bad.csv: no label row could be read (first problem: row 2 column labels: cannot parse label list" \
        in capsys.readouterr().err
    nomatch = tmp_path / "nomatch.csv"
    nomatch.write_text("record_id,AF\nnot-a-record,1\n")
    assert main(["finetune", str(synth_dir), "--labels", str(nomatch), "--checkpoint", str(tiny_run),
                 "--out", str(tmp_path / "o2")]) == 2
    assert "none of its 1 record ids matches" in capsys.readouterr().err
    notbinary = tmp_path / "nb.csv"
    notbinary.write_text("record_id,AF\nr1,yes\n")
    assert main(["finetune", str(synth_dir), "--labels", str(notbinary), "--checkpoint", str(tiny_run),
                 "--out", str(tmp_path / "o3")]) == 2
    assert "row 2 column AF: expected 0 or 1, got 'yes'" in capsys.readouterr().err


def test_reconstruct_and_explain_write_plots(tiny_run, synth_dir, tmp_path, capsys):
    item = MimicEcgReader(synth_dir).items()[0]
    record = str(synth_dir / item.path)
    assert main(["reconstruct", record, "--checkpoint", str(tiny_run), "--hide", "V1", "aVL",
                 "--out", str(tmp_path / "rec")]) == 0
    errors = json.loads((tmp_path / "rec" / "errors.json").read_text())
    assert set(errors["errors"]) == {"V1", "aVL"} and errors["missing"] == []
    assert (tmp_path / "rec" / "reconstruction.png").stat().st_size > 10000
    assert main(["explain", record, "--checkpoint", str(tiny_run), "--out", str(tmp_path / "ex")]) == 0
    printed = capsys.readouterr().out
    assert "V6" in printed and (tmp_path / "ex" / "lead_weights.png").exists()
    assert (tmp_path / "ex" / "ecg.png").exists()


def test_reduced_lead_evaluation(tiny_run, store, tmp_path, capsys):
    assert main(["leads", "--store", str(store.path), "--checkpoint", f"LAMAE={tiny_run}",
                 "--checkpoint", f"again={tiny_run}", "--sets", "1", "6", "12", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "leads.json").read_text())
    assert list(report["results"]["LAMAE"]) == ["1", "6", "12"]
    assert report["results"]["LAMAE"] == report["results"]["again"]  # deterministic
    assert report["results"]["LAMAE"]["1"]["leads"] == ["I"]
    assert (tmp_path / "leads.png").exists() and "| 6 | I, II, III, aVR, aVL, aVF |" in capsys.readouterr().out


def test_reconstruct_over_a_store_split(tiny_run, store, tmp_path, capsys):
    assert main(["reconstruct", str(store.path), "--checkpoint", str(tiny_run), "--hide", "V1", "III",
                 "--out", str(tmp_path)]) == 0
    errs = json.loads((tmp_path / "errors.json").read_text())["errors"]
    n_test = len(store.rows("test"))
    assert errs["V1"]["n"] == errs["III"]["n"] == n_test
    assert errs["V1"]["mse_zeros"] == pytest.approx(1.0, abs=0.1)
    assert "V1" in capsys.readouterr().out
    assert main(["reconstruct", str(store.path), "--checkpoint", str(tiny_run), "--out", str(tmp_path)]) == 2
