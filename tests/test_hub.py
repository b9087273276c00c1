"""Checkpoints in the Hugging Face layout, tested offline on local folders."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("huggingface_hub", reason="huggingface_hub is not installed (pip install 'lamae[hub]')")

from lamae import load  # noqa: E402
from lamae.errors import LamaeError  # noqa: E402
from lamae.hub import LamaeHub  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "v0_1"


def test_save_pretrained_then_from_pretrained_gives_the_same_model(tiny_run, tmp_path):
    hub = LamaeHub.from_pretrained(str(tiny_run))
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    hub.save_pretrained(out)
    assert {"config.json", "model.safetensors", "README.md", "MODEL_CARD.md", "notes.txt"} <= {
        p.name for p in out.iterdir()}
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert "library_name: lamae" in (out / "README.md").read_text()
    again = LamaeHub.from_pretrained(out)
    a, b = hub.pretrained.model.state_dict(), again.pretrained.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.pretrained.preprocessing == hub.pretrained.preprocessing
    x = np.random.default_rng(0).standard_normal((3, 800)).astype(np.float32)
    np.testing.assert_array_equal(hub.pretrained.embed(x, 400, ["I", "II", "V2"]),
                                  load(out).embed(x, 400, ["I", "II", "V2"]))


def test_a_lamae_0_1_checkpoint_exports_and_still_loads(tmp_path):
    hub = LamaeHub.from_pretrained(FIXTURES / "global")
    hub.save_pretrained(tmp_path / "old")
    again = load(tmp_path / "old")
    assert again.model.cfg.encoder == "per_lead" and again.model.cfg.aggregator == "latent"


def test_an_unknown_repo_offline_is_one_clear_error():
    with pytest.raises(LamaeError, match="not a local folder"):
        LamaeHub.from_pretrained("nobody/no-such-lamae-model", local_files_only=True)
