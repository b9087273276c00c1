import numpy as np
import pytest
import wfdb

from lamae.data.preprocess import Preprocessing, preprocess
from lamae.data.synth import MIMIC_LEAD_ORDER, simulate_ecg
from lamae.data.wfdb_io import read_wfdb, write_wfdb
from lamae.errors import LeadNameError, RecordError


@pytest.fixture
def mimic_record(tmp_path):
    x = simulate_ecg(np.random.default_rng(0), {"lbbb"})
    x[3, 100:120] = np.nan
    write_wfdb("40689238", tmp_path, x, MIMIC_LEAD_ORDER, 500, gain=200.0)
    return tmp_path / "40689238", x


def test_round_trip_keeps_mimic_layout_gain_and_values(mimic_record):
    base, x = mimic_record
    hdr = wfdb.rdheader(str(base))
    assert hdr.sig_name == list(MIMIC_LEAD_ORDER)
    assert hdr.sig_name[4:6] == ["aVF", "aVL"]  # MIMIC's order: aVF before aVL
    assert hdr.fmt == ["16"] * 12 and hdr.adc_gain == [200.0] * 12
    assert hdr.fs == 500 and hdr.sig_len == 5000
    rec = read_wfdb(base)
    assert rec.leads == MIMIC_LEAD_ORDER and rec.fs == 500.0
    assert np.isnan(rec.signal[3, 100:120]).all()
    np.testing.assert_allclose(rec.signal, x, atol=0.5 / 200 + 1e-6)  # half an ADC step
    # wfdb itself reads the same physical values
    ref = wfdb.rdrecord(str(base)).p_signal.T
    np.testing.assert_allclose(rec.signal, ref, atol=1e-5)


def test_truncated_dat_is_reported(mimic_record):
    base, _ = mimic_record
    dat = base.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:50000])
    with pytest.raises(RecordError, match="40689238.*truncated"):
        read_wfdb(base)


def test_missing_dat_is_reported(mimic_record):
    base, _ = mimic_record
    base.with_suffix(".dat").unlink()
    with pytest.raises(RecordError, match="40689238.*missing"):
        read_wfdb(base)


def test_header_that_disagrees_with_data_is_reported(mimic_record):
    base, _ = mimic_record
    hea = base.with_suffix(".hea")
    first, rest = hea.read_text().split("\n", 1)
    assert first.endswith(" 5000")
    hea.write_text(first[:-4] + "4000\n" + rest)
    with pytest.raises(RecordError, match="header disagrees with data"):
        read_wfdb(base)


def test_unknown_lead_names_are_an_error(tmp_path):
    write_wfdb("r1", tmp_path, np.zeros((2, 100)), ["I", "X7"], 500)
    with pytest.raises(LeadNameError, match="r1.*'X7'"):
        read_wfdb(tmp_path / "r1")
    assert read_wfdb(tmp_path / "r1", extra_leads="drop").leads == ("I",)


def test_all_nan_lead_is_an_error_naming_lead_and_record(mimic_record):
    base, _ = mimic_record
    rec = read_wfdb(base)
    rec.signal[7] = np.nan
    with pytest.raises(RecordError, match="40689238.*lead V2 is all NaN"):
        preprocess(rec.signal, rec.fs, Preprocessing(), leads=rec.leads, record_id=rec.record_id)


def test_einthoven_holds_in_synthetic_records(mimic_record):
    base, _ = mimic_record
    rec = read_wfdb(base)
    s = dict(zip(rec.leads, rec.signal))
    ok = np.isfinite(s["III"]) & np.isfinite(s["II"]) & np.isfinite(s["I"])
    # III = II - I up to ADC rounding of three values
    assert np.max(np.abs(s["III"] - (s["II"] - s["I"]))[ok]) <= 1.5 / 200 + 1e-6
