"""benchmarks/design.py end to end on a tiny store: a run, its probes, and a finished run that is
reused only at the size it was trained with."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def design(monkeypatch, argv):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("design")
    monkeypatch.setattr(sys, "argv", ["design.py", *map(str, argv)])
    module.run(module.main)


def test_design_trains_at_the_size_and_device_named_and_reuses_only_that_run(store, tmp_path, monkeypatch, capsys):
    argv = ["--store", store.path, "--out", tmp_path / "d", "--variant", "IndS:n_latents=4", "--seeds", "0",
            "--steps", "2", "--batch-size", "8", "--warmup", "1", "--size", "tiny", "--device", "auto"]
    design(monkeypatch, argv)
    out = capsys.readouterr().out
    assert "tiny, 2 steps x 8" in out
    folder = tmp_path / "d" / "IndS__n_latents-4" / "seed-0"
    result = json.loads((folder / "result.json").read_text())
    # 90 ECGs support no label's AUROC (the probes stay empty); the withheld leads are rebuilt
    assert set(result["probe"]) == {"pooled", "lead_cls"} and set(result["fractions"]) == {"0.01", "0.1"}
    assert all(np.isfinite(result["recon"][lead]["nmse"]) for lead in ("III", "aVF", "V2", "V5"))
    trained = json.loads((folder / "pretrain" / "pretrain_config.json").read_text())
    assert (trained["size"], trained["device"]) == ("tiny", "auto")     # as named, not design.py's default
    config = json.loads((folder / "pretrain" / "checkpoints" / "step-0000002" / "config.json").read_text())
    assert config["model"]["dim"] == 64                     # tiny's width
    mtime = (folder / "result.json").stat().st_mtime
    design(monkeypatch, argv)                                # finished: reused, not retrained
    assert (folder / "result.json").stat().st_mtime == mtime
    with pytest.raises(SystemExit) as stop:                  # the same folder at another size: refused, named
        design(monkeypatch, [*argv[:-4], "--size", "small", "--device", "cpu"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "other model settings" in err and "decoder_depth was 1, now 2" in err, err


def test_the_paired_table_pairs_the_hidden_lead_error_of_members_without_latents(monkeypatch, capsys):
    """S4-MAE has no latents to ablate; its withheld leads' error still pairs (the mean over the
    hidden leads, as the ablation's intact condition reports it for LAMAE), with the seeds counted."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("design")

    def result(variant, seed, nmse, auroc):
        return {"variant": variant, "seed": seed, "probe": {"pooled": auroc},
                "fractions": {"0.01": 0.5, "0.1": 0.6},
                "recon": {lead: {"nmse": nmse, "corr": 0.9} for lead in module.HIDE}}

    results = [result("A", s, 0.30 + s / 100, 0.80) for s in range(3)]
    results += [result("B", s, 0.20 + s / 100, 0.80 + (0.01 if s else -0.01)) for s in range(3)]
    assert module.hidden_nmse(results[0]) == pytest.approx(0.30)
    assert np.isnan(module.hidden_nmse({"probe": {}}))                     # CPC rebuilds no lead
    module.print_paired(["A", "B"], results)
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| B |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("+0.003") and "higher in 2/3" in cells[2]     # pooled
    assert cells[-1].startswith("-0.100") and "higher in 0/3" in cells[-1]   # hidden nMSE


def test_design_pretrains_on_another_store_and_probes_the_one_named(store, tmp_path, monkeypatch, capsys):
    """The held-out check: the encoder pretrains on --pretrain-store and is probed (and rebuilds
    leads) on --store; stores prepared differently are refused with both named."""
    from dataclasses import replace

    from lamae.data.sources import MimicEcgReader
    from lamae.data.store import prepare
    from lamae.data.synth import synthesize_mimic

    raw = synthesize_mimic(tmp_path / "raw", 24, seed=11, progress=False)
    other = prepare(MimicEcgReader(raw), tmp_path / "other", store.preprocessing, chunk_size=32, progress=False)
    argv = ["--store", store.path, "--pretrain-store", other.path, "--out", tmp_path / "d", "--variant", "IndS",
            "--seeds", "0", "--steps", "2", "--batch-size", "8", "--warmup", "1"]
    design(monkeypatch, argv)
    assert f"pretrained on {other.path}" in capsys.readouterr().out
    folder = tmp_path / "d" / "IndS" / "seed-0"
    trained = json.loads((folder / "pretrain" / "pretrain_config.json").read_text())
    assert Path(trained["store"]) == Path(other.path)
    config = json.loads((folder / "pretrain" / "checkpoints" / "step-0000002" / "config.json").read_text())
    assert config["store"]["digest"] == other.digest != store.digest            # pretrained on the other store
    result = json.loads((folder / "result.json").read_text())
    assert all(np.isfinite(result["recon"][lead]["nmse"]) for lead in ("III", "aVF", "V2", "V5"))

    # the same runs probed on the store they were pretrained on (--runs): reused, not retrained
    checkpoints = sorted(p.name for p in (folder / "pretrain" / "checkpoints").iterdir())
    mtime = (folder / "pretrain" / "checkpoints" / "step-0000002" / "model.safetensors").stat().st_mtime
    design(monkeypatch, ["--store", other.path, "--pretrain-store", other.path, "--runs", tmp_path / "d",
                         "--out", tmp_path / "again", *argv[6:]])
    assert sorted(p.name for p in (folder / "pretrain" / "checkpoints").iterdir()) == checkpoints
    assert (folder / "pretrain" / "checkpoints" / "step-0000002" / "model.safetensors").stat().st_mtime == mtime
    again = tmp_path / "again" / "IndS" / "seed-0"
    assert (again / "result.json").exists() and not (again / "pretrain").exists()
    assert json.loads((again / "result.json").read_text())["recon"] != result["recon"]   # another store's leads

    coarse = prepare(MimicEcgReader(raw), tmp_path / "coarse", replace(store.preprocessing, bandpass=None),
                     chunk_size=32, progress=False)
    with pytest.raises(SystemExit) as stop:
        design(monkeypatch, [*argv[:3], coarse.path, "--out", tmp_path / "e", *argv[6:]])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(coarse.path) in err and "prepare both alike" in err, err
