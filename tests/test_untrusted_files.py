"""Untrusted files: weights only through safetensors, torch.load only with weights_only=True,
label lists parsed literally, never eval or pickle of anything a user hands us."""

import re
from pathlib import Path

import pytest
import torch

SRC = Path(__file__).resolve().parents[1] / "src" / "lamae"
SOURCES = {p: p.read_text() for p in SRC.rglob("*.py")}


def test_no_eval_exec_or_pickle_in_the_package():
    for path, text in SOURCES.items():
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path
        assert "import pickle" not in text and "pickle.load" not in text, path
        assert "allow_pickle=True" not in text, path
        assert "pd.read_pickle" not in text, path


def test_torch_load_is_always_weights_only():
    calls = [(p, line) for p, t in SOURCES.items() for line in t.splitlines() if "torch.load(" in line]
    assert calls, "expected the trainer-state loader"
    for path, call in calls:
        assert "weights_only=True" in call, (path, call)


def test_a_pickled_payload_in_trainer_state_is_refused(store, tmp_path, capsys):
    """A trainer.pt carrying an arbitrary object (what a malicious file would do) does not load,
    and is named as such (a LamaeError, not an internal error)."""
    from lamae.checkpoint import load_trainer_state
    from lamae.errors import LamaeError

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"optimizer": Payload()}, tmp_path / "trainer.pt")
    with pytest.raises(LamaeError, match="trainer.pt: it holds Python objects that could run code"):
        load_trainer_state(tmp_path)
    assert "pwned" not in capsys.readouterr().out


def test_weights_are_safetensors(tiny_run):
    ck = next((tiny_run / "checkpoints").iterdir())
    assert (ck / "model.safetensors").exists()
    assert not list(ck.glob("*.bin")) and not list(ck.glob("*.pth"))
