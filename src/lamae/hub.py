"""Checkpoints in the Hugging Face layout: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

A lamae checkpoint already is ``config.json`` + ``model.safetensors`` (its ``config.json`` holds
the model settings *and the preprocessing*, so whoever downloads it preprocesses as it was
trained); the Hub also shows ``README.md``, which is the model card. ``LamaeHub`` plugs that
folder into huggingface_hub's ``ModelHubMixin``::

    from lamae.hub import LamaeHub

    hub = LamaeHub.from_pretrained("runs/lamae")            # a run or checkpoint folder, or a Hub repo id
    hub.save_pretrained("export/lamae-tiny")                 # config.json, model.safetensors, README.md, ...
    hub.push_to_hub("your-name/lamae-tiny")                  # with a token and network
    z = hub.pretrained.embed(signal, fs=500, leads=leads)    # the usual API

``pip install -e ".[hub]"`` installs huggingface_hub. ``lamae.load`` reads these folders too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import LamaeError
from .files import output_dir
from .optional import require

try:
    from huggingface_hub import ModelHubMixin
except ImportError:  # the hub extra is not installed: say so when someone reaches for it
    ModelHubMixin = None

FILES = ("config.json", "model.safetensors", "MODEL_CARD.md", "evaluations.json")


def _need_hub():
    require("huggingface_hub", "hub", "the Hugging Face layout")


def export_checkpoint(pretrained, folder: str | os.PathLike) -> Path:
    """Write ``pretrained`` (a :class:`lamae.api.Pretrained`) into ``folder`` in the Hub layout,
    replacing only lamae's own files there (anything else in the folder is left alone)."""
    from .checkpoint import save_checkpoint

    folder = output_dir(folder, "checkpoint", allow="checkpoint", writes=(*FILES, "README.md"))
    keep = {k: v for k, v in pretrained.config.items()
            if k not in ("lamae_version", "model_format", "model", "preprocessing", "weights_sha256", "path",
                         "model_format_written")}
    with tempfile.TemporaryDirectory(dir=folder, prefix=".lamae-export-") as tmp:
        written = save_checkpoint(Path(tmp) / "ckpt", pretrained.model, pretrained.preprocessing, extra=keep)
        card = (written / "MODEL_CARD.md").read_text()
        (written / "README.md").write_text("---\nlibrary_name: lamae\nlicense: apache-2.0\ntags:\n- ecg\n"
                                           "- masked-autoencoder\n- lamae\n---\n\n" + card)
        for name in (*FILES, "README.md"):
            if (written / name).exists():
                os.replace(written / name, folder / name)
    return folder


if ModelHubMixin is not None:
    class LamaeHub(ModelHubMixin, library_name="lamae", tags=["ecg", "masked-autoencoder", "lamae"],
                   repo_url="https://github.com/lamae/lamae"):
        """A pretrained LAMAE (``.pretrained``, a :class:`lamae.api.Pretrained`) with the Hub's
        ``from_pretrained`` / ``save_pretrained`` / ``push_to_hub``."""

        def __init__(self, pretrained=None):
            self.pretrained = pretrained

        @classmethod
        def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
            """A local run or checkpoint folder, or a Hub repo id (downloaded, then cached)."""
            try:
                return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
            except LamaeError:
                raise
            except Exception as exc:  # no network, no such repo, no token: one line, not a traceback
                if not (isinstance(exc, (OSError, ValueError)) or type(exc).__module__.startswith("huggingface_hub")):
                    raise
                raise LamaeError(f"{pretrained_model_name_or_path}: not a local folder, and the Hub could not "
                                 f"provide it ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None

        def save_pretrained(self, save_directory, *args, **kwargs):
            """The Hub's ``save_pretrained``, after checking the folder: an existing file, a store, or
            a place that cannot be written is named before the Hub's code touches it."""
            output_dir(save_directory, "checkpoint", allow="checkpoint", writes=(*FILES, "README.md"))
            return super().save_pretrained(save_directory, *args, **kwargs)

        def _save_pretrained(self, save_directory: Path) -> None:
            if self.pretrained is None:
                raise LamaeError("nothing to save: this LamaeHub holds no model")
            export_checkpoint(self.pretrained, save_directory)

        @classmethod
        def _from_pretrained(cls, *, model_id: str, revision=None, cache_dir=None, force_download=False,
                             local_files_only=False, token=None, **model_kwargs):
            from . import load

            device = model_kwargs.pop("device", "cpu")
            if Path(model_id).exists():
                return cls(load(model_id, device))
            from huggingface_hub import snapshot_download

            folder = snapshot_download(repo_id=model_id, revision=revision, cache_dir=cache_dir,
                                       force_download=force_download, local_files_only=local_files_only,
                                       token=token, allow_patterns=list(FILES))
            return cls(load(folder, device))
else:
    class LamaeHub:  # noqa: D101 - stands in until huggingface_hub is installed
        def __init__(self, *args, **kwargs):
            _need_hub()

        @classmethod
        def from_pretrained(cls, *args, **kwargs):
            _need_hub()
