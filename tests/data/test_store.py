import json

import numpy as np
import pytest

from lamae.data.sources import MimicEcgReader
from lamae.data.store import EcgStore, prepare
from lamae.errors import LamaeError
from lamae.leads import LEAD_INDEX
from tests.conftest import TEST_PREP


def test_store_contents(store, synth_dir):
    assert store.signals.shape == (90, 12, 200) and store.signals.dtype == np.float16
    assert store.meta["preprocessing"] == TEST_PREP.to_dict()
    assert set(store.index["split"]) == {"train", "val", "test"}
    assert store.lead_mask(np.arange(5)).all()
    # MIMIC's aVF (5th column on disk) lands in the canonical aVF slot
    reader = MimicEcgReader(synth_dir)
    item = reader.items()[0]
    rec = reader.read(item)
    from lamae.data.preprocess import preprocess
    x = preprocess(rec.signal, rec.fs, TEST_PREP, leads=rec.leads)
    row = int(store.index.set_index("record_id").loc[item.record_id, "row"])
    np.testing.assert_allclose(store.signals[row, LEAD_INDEX["aVF"]], x[rec.leads.index("aVF")], atol=2e-2)


class _Crash(MimicEcgReader):
    """Raises as if the process were killed when it reaches record number ``at``."""

    def __init__(self, root, at):
        super().__init__(root)
        self.at, self.count = at, 0

    def read(self, item):
        self.count += 1
        if self.count == self.at:
            raise KeyboardInterrupt
        return super().read(item)


def test_interrupted_prepare_resumes_to_the_same_store(synth_dir, store, tmp_path):
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        prepare(_Crash(synth_dir, at=50), out, TEST_PREP, chunk_size=16, progress=False)
    assert not (out / "meta.json").exists()
    with pytest.raises(LamaeError, match="interrupted"):
        EcgStore(out)
    progress = json.loads((out / "_progress.json").read_text())
    assert progress["next_item"] == 48  # three finished chunks kept
    resumed = prepare(MimicEcgReader(synth_dir), out, TEST_PREP, chunk_size=16, progress=False)
    np.testing.assert_array_equal(np.asarray(resumed.signals), np.asarray(store.signals))
    assert resumed.index.drop(columns="codes").equals(store.index.drop(columns="codes"))


def test_bad_records_are_skipped_and_reported(synth_dir, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synth_dir, root)
    items = MimicEcgReader(root).items()
    dat = root / (items[3].path + ".dat")
    dat.write_bytes(dat.read_bytes()[:1000])
    (root / (items[7].path + ".dat")).unlink()
    hea = root / (items[11].path + ".hea")
    hea.write_text(hea.read_text().replace(" V6", " X6"))
    from lamae.data.synth import MIMIC_LEAD_ORDER
    from lamae.data.wfdb_io import write_wfdb
    rec = MimicEcgReader(root).read(items[13])
    rec.signal[2] = np.nan
    write_wfdb(items[13].record_id, (root / items[13].path).parent, rec.signal, MIMIC_LEAD_ORDER, 500)
    s = prepare(MimicEcgReader(root), tmp_path / "store", TEST_PREP, progress=False)
    assert len(s) == 87  # three skipped; the record with an all-NaN lead is kept without it
    report = json.loads((tmp_path / "store" / "report.json").read_text())
    problems = {r["record_id"]: r["problem"] for r in report["skipped"]}
    assert "truncated" in problems[items[3].record_id] and "missing" in problems[items[7].record_id]
    assert "unknown lead name 'X6'" in problems[items[11].record_id]
    assert report["dropped_leads"] == [{"record_id": items[13].record_id, "path": items[13].path, "lead": "III",
                                        "problem": "lead III left out: 100% NaN/inf"}]
    row = int(s.index.set_index("record_id").loc[items[13].record_id, "row"])
    assert not s.lead_mask([row])[0, LEAD_INDEX["III"]] and s.lead_mask([row])[0].sum() == 11
    assert items[3].record_id in (tmp_path / "store" / "report.md").read_text()


def test_changed_settings_do_not_mix_into_an_unfinished_store(synth_dir, tmp_path):
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        prepare(_Crash(synth_dir, at=20), out, TEST_PREP, chunk_size=16, progress=False)
    from lamae.data.preprocess import Preprocessing
    with pytest.raises(LamaeError, match="different settings"):
        prepare(MimicEcgReader(synth_dir), out, Preprocessing(fs=100, window_s=4), progress=False)


def test_existing_store_with_other_preprocessing_is_not_reused(store, synth_dir):
    from lamae.data.preprocess import Preprocessing

    assert prepare(MimicEcgReader(synth_dir), store.path, TEST_PREP, progress=False).path == store.path
    with pytest.raises(LamaeError, match="other preprocessing"):
        prepare(MimicEcgReader(synth_dir), store.path, Preprocessing(fs=100, window_s=2.0, bandpass=None),
                progress=False)


def test_store_pickles_by_path(store):
    import pickle

    blob = pickle.dumps(store)
    assert len(blob) < 10_000  # the signals are not copied into the pickle
    again = pickle.loads(blob)
    np.testing.assert_array_equal(np.asarray(again.signals[:3]), np.asarray(store.signals[:3]))
