"""Every record of the shared real datasets reads into canonical leads, mV and the true rate."""

import numpy as np
import pandas as pd
import wfdb

from lamae.data.sources import WfdbFolderReader
from lamae.leads import STANDARD_LEADS
from tests.conftest import shared


def _check_all(root, expected_fs):
    reader = WfdbFolderReader(root)
    items = reader.items()
    for item in items:
        rec = reader.read(item)
        assert set(rec.leads) == set(STANDARD_LEADS), item.record_id
        assert rec.fs in expected_fs, item.record_id
        assert rec.signal.dtype == np.float32 and np.isfinite(rec.signal).all()
        # physical units: ECG amplitudes are millivolts, not ADC counts or microvolts
        assert 0.05 < np.abs(rec.signal).max() < 30, item.record_id
    return reader, items


def _compare_with_wfdb(reader, item, root):
    rec = reader.read(item)
    ref = wfdb.rdrecord(str(root / item.path))
    for j, name in enumerate(ref.sig_name):
        mine = rec.signal[[l.lower() for l in rec.leads].index(name.lower())]
        np.testing.assert_allclose(mine[:500], ref.p_signal[:500, j], atol=1e-5)


def test_every_ptbxl_500_record_reads():
    root = shared("ptb-xl-500")
    reader, items = _check_all(root, {100.0, 500.0})
    db = pd.read_csv(root / "ptbxl_database.csv")
    assert len(items) == 2 * len(db) == 1000
    for item in items[:3] + items[-3:]:
        _compare_with_wfdb(reader, item, root)


def test_every_cinc2021_record_reads():
    root = shared("fixtures", "cinc2021")
    reader, items = _check_all(root, {500.0})
    assert len(items) == 50
    for item in items[::10]:
        _compare_with_wfdb(reader, item, root)
