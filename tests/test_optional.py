"""A missing optional dependency is one named error saying which extra to install."""

import sys

import pytest

from lamae.errors import LamaeError
from lamae.optional import require
from lamae.tracking import open_tracker


def test_a_missing_module_names_the_extra_and_the_package():
    with pytest.raises(LamaeError, match=r"reading XYZ needs no_such_pkg: pip install 'lamae\[formats\]' "
                                         r"\(or pip install no_such_pkg\)"):
        require("no_such_pkg.sub", "formats", "reading XYZ")
    assert require("json", "formats", "anything").dumps([1]) == "[1]"


def test_a_tracker_whose_package_is_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(LamaeError, match=r"--tracker wandb needs wandb: pip install 'lamae\[tracking\]'"):
        open_tracker("wandb", tmp_path)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(LamaeError, match=r"--tracker tensorboard needs tensorboard: pip install 'lamae\[tracking\]'"):
        open_tracker("tensorboard", tmp_path)
