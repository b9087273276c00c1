"""The command line as a user runs it: synth -> prepare -> pretrain -> probe."""

import json

import pytest

from lamae.cli import main


def test_cli_end_to_end(tmp_path, capsys):
    data, store, run, probe = (tmp_path / n for n in ("data", "store", "run", "probe"))
    assert main(["synth", str(data), "--records", "60", "--seed", "5"]) == 0
    assert main(["prepare", str(data), "--out", str(store), "--window", "2"]) == 0
    assert main(["pretrain", "--store", str(store), "--out", str(run), "--steps", "6", "--batch-size", "8",
                 "--set", "model.n_latents=2", "--set", "warmup_steps=2"]) == 0
    assert json.loads((run / "latest.json").read_text())["step"] == 6
    config = json.loads((run / "checkpoints" / "step-0000006" / "config.json").read_text())
    assert config["model"]["n_latents"] == 2 and config["train"]["warmup_steps"] == 2
    # a finished run can be extended to more steps
    assert main(["pretrain", "--store", str(store), "--out", str(run), "--steps", "8", "--batch-size", "8",
                 "--set", "model.n_latents=2", "--set", "warmup_steps=2", "--resume"]) == 0
    assert json.loads((run / "latest.json").read_text())["step"] == 8
    assert main(["probe", "--checkpoint", str(run), "--store", str(store), "--out", str(probe),
                 "--min-count", "2", "--min-prevalence", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "Macro AUROC per hierarchy level" in out


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["pretrain", "--store", str(tmp_path / "nostore"), "--out", str(tmp_path / "r")]) == 2
    assert "not a finished lamae store" in capsys.readouterr().err
    assert main(["pretrain", "--store", "x", "--set", "model.bogus=1"]) == 2
    assert "bogus" in capsys.readouterr().err


def test_pretrain_picks_a_family_member_by_name(store, tmp_path, capsys):
    run = tmp_path / "joint"
    assert main(["pretrain", "--store", str(store.path), "--out", str(run), "--model", "Joint", "--steps", "2",
                 "--batch-size", "8", "--set", "warmup_steps=1"]) == 0
    config = json.loads((run / "checkpoints" / "step-0000002" / "config.json").read_text())
    assert (config["model"]["encoder"], config["model"]["aggregator"]) == ("joint", "none")
    assert config["train"]["architecture"] == "Joint"
    assert "family member: Joint" in (run / "checkpoints" / "step-0000002" / "MODEL_CARD.md").read_text()
    assert main(["pretrain", "--store", str(store.path), "--out", str(tmp_path / "x"), "--model", "LAMAE_E"]) == 2
    assert "reads LAMAE's weights" in capsys.readouterr().err
    assert main(["pretrain", "--store", str(store.path), "--out", str(tmp_path / "y"), "--model", "GPT"]) == 2
    assert "choose from" in capsys.readouterr().err
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("LAMAE", "LAMAE-global", "IndP", "Joint", "Random"))


def test_ablate_reports_every_condition(tiny_run, store, tmp_path, capsys):
    out = tmp_path / "ablate"
    assert main(["ablate", str(store.path), "--checkpoint", f"LAMAE={tiny_run}", "--hide", "V2", "--out", str(out)]) == 0
    report = json.loads((out / "ablation.json").read_text())["results"]["LAMAE"]
    assert set(report["conditions"]) == {"none", "zero", "shuffle"}
    assert report["conditions"]["none"]["hidden"]["V2"]["n"] > 0
    assert "Cross-lead ablation" in capsys.readouterr().out


def test_every_reader_is_a_format_the_command_line_takes():
    from lamae.cli import FORMATS
    from lamae.data.readers import READERS

    assert sorted(FORMATS) == sorted(READERS)


def test_pretrain_help_names_every_pretrainable_member(capsys, monkeypatch):
    from lamae import cli
    from lamae.models.family import PRETRAINABLE

    assert cli.PRETRAINABLE == PRETRAINABLE
    monkeypatch.setenv("COLUMNS", "1000")  # no line breaks inside a name (argparse wraps at hyphens)
    with pytest.raises(SystemExit):
        cli.main(["pretrain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in PRETRAINABLE)


def test_models_settings_shows_any_member_and_names_an_unknown_one(capsys):
    from lamae.cli import main

    assert main(["models", "--settings", "LAMAE_E"]) == 0  # a member pretrain cannot train, read all the same
    assert "cross-lead path: routers" in capsys.readouterr().out
    assert main(["models", "--settings", "LAMAE2"]) == 2
    assert "unknown model 'LAMAE2'" in capsys.readouterr().err
