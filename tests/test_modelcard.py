"""The model card beside every checkpoint: what it was trained on, how, and how it scored."""

import json
import shutil

from lamae.modelcard import CARD, EVALUATIONS, record_evaluation, render_model_card


def _fresh_card_folder(tiny_run, tmp_path):
    """A copy of the tiny run's checkpoint without the evaluations other tests may have recorded in it."""
    cards = list(tiny_run.rglob(CARD))
    assert cards, "pretraining wrote no model card"
    folder = tmp_path / "ckpt"
    shutil.copytree(cards[-1].parent, folder)
    (folder / EVALUATIONS).unlink(missing_ok=True)
    return folder


def test_a_pretrained_checkpoint_has_a_card_naming_its_preprocessing(tiny_run):
    card = next(tiny_run.rglob(CARD))
    text = card.read_text()
    assert "sampling rate: 100.0 Hz" in text and "window: 2.0 s (200 samples per lead)" in text
    assert "router encoder" in text
    assert "trained on 0.5 of each lead's masked patches" in text  # LAMAE's partial decoding
    # other tests record evaluations into this shared run; its card without them says so
    config = json.loads((card.parent / "config.json").read_text())
    assert "None recorded yet" in render_model_card(config) and "None recorded yet" not in render_model_card(
        config, [{"name": "probe", "summary": {"macro AUROC": 0.7}, "report": None}])


def test_evaluations_are_added_replaced_by_name_and_shown(tiny_run, tmp_path):
    folder = _fresh_card_folder(tiny_run, tmp_path)
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
