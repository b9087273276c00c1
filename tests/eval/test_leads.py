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


def test_a_name_given_several_runs_is_reported_over_them(tiny_run, store, tmp_path, capsys):
    """Seeds: a repeated name is the mean ± sd of its runs (two copies of one run: sd 0), not the
    last run silently replacing the others; `lamae ablate` refuses a repeated name."""
    from lamae.eval.leads import reduced_lead_eval

    # the test store has few test positives per label: score every label that has one
    report = reduced_lead_eval({"LAMAE": [tiny_run, tiny_run], "one": str(tiny_run)}, store.path, tmp_path,
                               lead_sets=["1", "12"], min_test_positives=1, progress=False)
    seeds, one = report["results"]["LAMAE"]["12"], report["results"]["one"]["12"]
    assert one["auroc"] is not None
    assert seeds["runs"] == [one["auroc"], one["auroc"]] and seeds["auroc"] == one["auroc"] and seeds["sd"] == 0
    assert report["checkpoints"]["LAMAE"] == [str(tiny_run)] * 2
    assert f"{one['auroc']:.3f} ± 0.000 (2)" in (tmp_path / "leads.md").read_text()
    assert (tmp_path / "leads.png").exists()
    # the command line gathers a repeated name into its runs
    assert main(["leads", "--store", str(store.path), "--checkpoint", f"LAMAE={tiny_run}",
                 "--checkpoint", f"LAMAE={tiny_run}", "--sets", "1", "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads((tmp_path / "cli" / "leads.json").read_text())
    assert cli["checkpoints"]["LAMAE"] == [str(tiny_run)] * 2 and "runs" in cli["results"]["LAMAE"]["1"]
    assert main(["ablate", str(store.path), "--checkpoint", f"A={tiny_run}", "--checkpoint", f"A={tiny_run}",
                 "--out", str(tmp_path / "ablate")]) != 0
    assert "the name 'A' is given 2 times" in capsys.readouterr().err
