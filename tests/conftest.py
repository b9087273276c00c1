"""Shared fixtures: a small synthetic MIMIC-style dataset and a store of short windows."""

from pathlib import Path

import pandas as pd

import pytest

from lamae.data.preprocess import Preprocessing

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Short windows keep the tests fast on 2 CPU cores: 2 s at 100 Hz = 8 patches of 25 samples.
TEST_PREP = Preprocessing(fs=100.0, window_s=2.0, bandpass=(0.5, 40.0))
TINY = dict(n_latents=4)


def shared(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    from lamae.data.synth import synthesize_mimic

    return synthesize_mimic(tmp_path_factory.mktemp("synth"), 90, seed=3, progress=False)


@pytest.fixture(scope="session")
def store(synth_dir, tmp_path_factory):
    from lamae.data.sources import MimicEcgReader
    from lamae.data.store import prepare

    return prepare(MimicEcgReader(synth_dir), tmp_path_factory.mktemp("store") / "s", TEST_PREP,
                   chunk_size=32, progress=False)


@pytest.fixture(scope="session")
def tiny_run(store, tmp_path_factory):
    """A tiny LAMAE pretrained for a few steps on ``store`` (a run folder)."""
    from lamae.train.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    pretrain(PretrainConfig(store=str(store.path), out=str(out), steps=20, batch_size=16, base_lr=0.05,
                            warmup_steps=3, checkpoint_every=1000, model={"n_latents": 4}), progress=False)
    return out


@pytest.fixture(scope="session")
def af_labels(synth_dir, tmp_path_factory):
    """A user's labels CSV for the synthetic records: basename -> ['AF'] / ['LBBB'] / []."""
    table = pd.read_csv(synth_dir / "records_w_diag_icd10.csv")
    rows = []
    for path, codes in zip(table["file_name"], table["all_diag_all"]):
        labels = [name for name, code in (("AF", "I4891"), ("LVH", "I517")) if code in codes]
        rows.append({"record_id": path.split("/")[-1], "labels": repr(labels)})
    out = tmp_path_factory.mktemp("labels") / "labels.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out
