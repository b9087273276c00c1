"""`lamae finetune`: a probe or a fine-tuned model on a user's own labels CSV."""

import json

from lamae.cli import main


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
    # the default tracker (csv) saw the training loss every 10 steps and the test result
    metrics = (out / "metrics.csv").read_text()
    assert "10,finetune/loss," in metrics and "-1,finetune/test_macro_auroc," in metrics


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
