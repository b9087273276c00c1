"""EDF/EDF+ and DICOM ECG waveforms: written by each library's own writer (or its shipped
sample), read back to canonical leads, millivolts and the right rate, and accepted by
`lamae prepare --format` and `lamae embed --format`."""

import shutil

import numpy as np
import pandas as pd
import pytest

from lamae.cli import main
from lamae.data.hospital import DicomEcgReader, EdfReader
from lamae.errors import RecordError
from lamae.leads import lead_from_label
from lamae.leads import STANDARD_LEADS

LABELS = ["ECG I", "EKG II", "Lead III", "aVR", "ECG aVL", "ECG AVF", "V1", "EKG V2", "ECG V3", "V4", "V5", "ECG V6"]


def _write_edf(path, fs=500, seconds=10, seed=0, extra=("Resp",), rates=None):
    highlevel = pytest.importorskip("pyedflib.highlevel", reason="pyedflib is not installed (lamae[formats])")
    rng = np.random.default_rng(seed)
    labels = LABELS + list(extra)
    rates = rates or [fs] * len(labels)
    signals = [np.clip(rng.standard_normal(int(r * seconds)) * 400, -4900, 4900) for r in rates]  # microvolts
    headers = highlevel.make_signal_headers(labels, dimension="uV", sample_frequency=fs, physical_min=-5000,
                                            physical_max=5000)
    for h, r in zip(headers, rates):
        h["sample_frequency"] = r
    highlevel.write_edf(str(path), signals, headers)
    return signals


def test_lead_labels_as_devices_write_them():
    assert [lead_from_label(x) for x in LABELS] == list(STANDARD_LEADS)
    assert lead_from_label("Lead I (Einthoven)") == "I" and lead_from_label("Resp") is None


def test_edf_round_trips_to_leads_millivolts_and_rate(tmp_path):
    sent = _write_edf(tmp_path / "a.edf")
    reader = EdfReader(tmp_path)
    (item,) = reader.items()
    rec = reader.read(item)
    assert rec.leads == STANDARD_LEADS and rec.fs == 500.0 and rec.signal.shape == (12, 5000)
    np.testing.assert_allclose(rec.signal, np.stack(sent[:12]) / 1000.0, atol=2e-4)  # 16-bit steps of 0.15 uV
    assert rec.meta["dropped_channels"] == ["Resp"]


def test_edf_leads_at_another_rate_are_left_out(tmp_path):
    _write_edf(tmp_path / "a.edf", extra=(), rates=[500] * 11 + [250])
    rec = EdfReader(tmp_path).read(EdfReader(tmp_path).items()[0])
    assert "V6" not in rec.leads and len(rec.leads) == 11 and rec.meta["dropped_channels"] == ["V6"]


def test_damaged_or_foreign_files_are_named(tmp_path):
    pytest.importorskip("pyedflib")
    (tmp_path / "bad.edf").write_bytes(b"0       not an edf header" * 20)
    reader = EdfReader(tmp_path)
    with pytest.raises(RecordError, match="bad.edf"):
        reader.read(reader.items()[0])


def _dicom_folder(tmp_path):
    pytest.importorskip("pydicom", reason="pydicom is not installed (lamae[formats])")
    from pydicom.data import get_testdata_file

    folder = tmp_path / "dicom"
    folder.mkdir()
    shutil.copy(get_testdata_file("waveform_ecg.dcm"), folder / "ecg.dcm")
    return folder


def test_dicom_ecg_reads_to_leads_millivolts_and_rate(tmp_path):
    import pydicom

    folder = _dicom_folder(tmp_path)
    rec = DicomEcgReader(folder).read(DicomEcgReader(folder).items()[0])
    assert rec.leads == STANDARD_LEADS and rec.fs == 1000.0 and rec.signal.shape == (12, 10000)
    assert 0.5 < np.abs(rec.signal).max() < 5  # millivolts: the sample's QRS peaks are about 2 mV
    ds = pydicom.dcmread(folder / "ecg.dcm")
    raw = ds.waveform_array(0)[:, 0]
    np.testing.assert_allclose(rec.signal[0], raw / 1000.0, rtol=1e-6)  # stored in microvolts
    assert rec.patient_id == str(ds.PatientID)
    # the same file with its channels declared in millivolts (written by pydicom) reads 1000x larger
    for channel in ds.WaveformSequence[0].ChannelDefinitionSequence:
        channel.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    ds.save_as(folder / "ecg_mv.dcm")
    items = {i.record_id: i for i in DicomEcgReader(folder).items()}
    rec_mv = DicomEcgReader(folder).read(items["ecg_mv"])
    np.testing.assert_allclose(rec_mv.signal, rec.signal * 1000.0, rtol=1e-6)


def test_prepare_and_embed_accept_the_formats(tiny_run, tmp_path):
    edf = tmp_path / "edf"
    edf.mkdir()
    for i in range(3):
        _write_edf(edf / f"r{i}.edf", seed=i)
    (edf / "broken.edf").write_bytes(b"garbage" * 50)
    assert main(["prepare", str(edf), "--format", "edf", "--out", str(tmp_path / "store"), "--fs", "100",
                 "--window", "2"]) == 0
    report = (tmp_path / "store" / "report.md").read_text()
    assert "broken" in report
    folder = _dicom_folder(tmp_path)
    out = tmp_path / "emb.parquet"
    assert main(["embed", str(folder), "--format", "dicom", "--checkpoint", str(tiny_run), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert list(table["record_id"]) == ["ecg"] and table["n_windows"].iat[0] == 5  # 10 s in 2 s windows
