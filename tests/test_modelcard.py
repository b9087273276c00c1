"""The model card beside every checkpoint: what it was trained on, how, and how it scored."""

import json
import shutil

from lamae.modelcard import CARD, EVALUATIONS, record_evaluation, render_model_card


def test_a_pretrained_checkpoint_has_a_card_naming_its_preprocessing(tiny_run):
    cards = list(tiny_run.rglob(CARD))
    assert cards, "pretraining wrote no model card"
    text = cards[-1].read_text()
    assert "sampling rate: 100.0 Hz" in text and "window: 2.0 s (200 samples per lead)" in text
    assert "router encoder" in text and "None recorded yet" in text


def test_evaluations_are_added_replaced_by_name_and_shown(tiny_run, tmp_path):
    src = next(tiny_run.rglob(CARD)).parent
    folder = tmp_path / "ckpt"
    shutil.copytree(src, folder)
    record_evaluation(folder, "probe", {"macro AUROC": 0.61}, report="probe/report.md")
    record_evaluation(folder, "leads", {"1 lead": 0.55})
    record_evaluation(folder, "probe", {"macro AUROC": 0.72})
    evaluations = json.loads((folder / EVALUATIONS).read_text())
    assert [e["name"] for e in evaluations] == ["leads", "probe"]
    text = (folder / CARD).read_text()
    assert "macro AUROC: 0.72" in text and "0.61" not in text and "1 lead: 0.55" in text


def test_a_card_from_an_incomplete_config_still_renders():
    text = render_model_card({"model": {"encoder": "joint"}})
    assert "joint encoder" in text and "Not a medical device" in text
