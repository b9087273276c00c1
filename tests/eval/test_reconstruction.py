"""`lamae reconstruct` and `lamae explain`: hidden leads filled in, per-lead error, plots."""

import json

import pytest

from lamae.cli import main
from lamae.data.sources import MimicEcgReader


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


def test_reconstruct_over_a_store_split(tiny_run, store, tmp_path, capsys):
    assert main(["reconstruct", str(store.path), "--checkpoint", str(tiny_run), "--hide", "V1", "III",
                 "--out", str(tmp_path)]) == 0
    errs = json.loads((tmp_path / "errors.json").read_text())["errors"]
    n_test = len(store.rows("test"))
    assert errs["V1"]["n"] == errs["III"]["n"] == n_test
    assert errs["V1"]["mse_zeros"] == pytest.approx(1.0, abs=0.1)
    assert "V1" in capsys.readouterr().out
    assert main(["reconstruct", str(store.path), "--checkpoint", str(tiny_run), "--out", str(tmp_path)]) == 2
