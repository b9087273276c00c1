"""Challenge (CinC 2021, CPSC 2018), CODE-15% and PTB records read into canonical leads, mV, true rate."""

import numpy as np
import pandas as pd
import scipy.io
import wfdb

from lamae.data.preprocess import Preprocessing, preprocess
from lamae.data.sources import ChallengeReader, Code15Reader, PtbReader
from lamae.leads import STANDARD_LEADS
from tests.conftest import shared


def test_cinc2021_labels_come_from_the_dx_comment():
    root = shared("fixtures", "cinc2021")
    reader = ChallengeReader(root)
    items = {it.record_id: it for it in reader.items()}
    assert len(items) == 50
    assert items["E07500"].codes == ("67741000119109", "426177001")
    assert items["E07500"].extra == {"age": "78", "sex": "Male"}


def test_cpsc2018_variable_lengths_and_window_policy():
    root = shared("fixtures", "cpsc2018")
    reader = ChallengeReader(root)
    lengths = {}
    for it in reader.items():
        rec = reader.read(it)
        ref = wfdb.rdrecord(str(root / it.path))
        assert rec.n_samples == ref.sig_len and rec.fs == 500.0 and set(rec.leads) == set(STANDARD_LEADS)
        np.testing.assert_allclose(rec.signal[:, :300], ref.p_signal[:300].T, atol=1e-5)
        lengths[it.record_id] = rec.duration_s
        # every length becomes the model's window: longer cropped, shorter zero-padded
        assert preprocess(rec.signal, rec.fs, Preprocessing(fs=100, window_s=10)).shape == (12, 1000)
    assert len(set(lengths.values())) > 3 and max(lengths.values()) > 10


def test_code15_reads_400hz_mat_and_labels():
    root = shared("fixtures", "code15")
    reader = Code15Reader(root)
    items = reader.items()
    meta = pd.read_csv(root / "meta.csv")
    assert len(items) == len(meta) == 10
    for it, row in zip(items, meta.to_dict("records")):
        rec = reader.read(it)
        raw = scipy.io.loadmat(root / it.path)["feats"]
        assert rec.fs == 400.0 and rec.leads == STANDARD_LEADS
        assert rec.n_samples == row["sample_size"]
        np.testing.assert_array_equal(rec.signal[:, :50], raw[:, :50])
        assert set(it.codes) == {k for k in Code15Reader.LABELS if row[k]}


def test_code15_zero_padding_is_removed(tmp_path):
    x = np.zeros((12, 4096), np.float32)
    x[:, 100:3100] = np.random.default_rng(0).normal(size=(12, 3000))
    (tmp_path / "org").mkdir()
    scipy.io.savemat(tmp_path / "org" / "code_15_1.mat", {"feats": x, "curr_sample_rate": 400})
    pd.DataFrame([{"exam_id": 1, "patient_id": 7, "save_file": "code_15_1.mat", "1dAVb": False, "RBBB": True,
                   "LBBB": False, "SB": False, "ST": False, "AF": False}]).to_csv(tmp_path / "meta.csv")
    reader = Code15Reader(tmp_path)
    (item,) = reader.items()
    rec = reader.read(item)
    assert rec.n_samples == 3000 and item.codes == ("RBBB",)
    np.testing.assert_array_equal(rec.signal, x[:, 100:3100])


def test_ptb_picks_the_12_standard_leads_from_15_channels():
    root = shared("fixtures", "ptbdb")
    reader = PtbReader(root)
    (item,) = reader.items()
    rec = reader.read(item)
    ref = wfdb.rdrecord(str(root / item.path))
    assert len(ref.sig_name) == 15 and rec.leads == STANDARD_LEADS and rec.fs == 1000.0
    for j, name in enumerate(ref.sig_name[:12]):
        np.testing.assert_allclose(rec.signal[STANDARD_LEADS.index(rec.leads[j])][:1000], ref.p_signal[:1000, j],
                                   atol=1e-5)
    assert 0.2 < np.abs(rec.signal).max() < 10  # millivolts


def test_challenge_age_and_sex_reach_the_store_index(tmp_path):
    from lamae.data.store import EcgStore, prepare

    root = shared("fixtures", "cinc2021")
    store = prepare(ChallengeReader(root), tmp_path / "st", Preprocessing(fs=100, window_s=2.0), progress=False,
                    limit=6)
    row = store.index.set_index("record_id").loc["E07500"]
    assert row["age"] == 78 and row["sex"] == "M"  # the header's "# Age: 78" and "# Sex: Male"
    assert EcgStore(tmp_path / "st").index["sex"].isin(["M", "F", ""]).all()
