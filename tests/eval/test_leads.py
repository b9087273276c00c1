"""`lamae leads`: probe AUROC with reduced lead sets."""

import json

from lamae.cli import main


def test_reduced_lead_evaluation(tiny_run, store, tmp_path, capsys):
    assert main(["leads", "--store", str(store.path), "--checkpoint", f"LAMAE={tiny_run}",
                 "--checkpoint", f"again={tiny_run}", "--sets", "1", "6", "12", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "leads.json").read_text())
    assert list(report["results"]["LAMAE"]) == ["1", "6", "12"]
    assert report["results"]["LAMAE"] == report["results"]["again"]  # deterministic
    assert report["results"]["LAMAE"]["1"]["leads"] == ["I"]
    assert (tmp_path / "leads.png").exists() and "| 6 | I, II, III, aVR, aVL, aVF |" in capsys.readouterr().out
