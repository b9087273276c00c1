"""Hospital exports through ecgdatakit, and --format auto (issue 28): real HL7 aECG files from
../shared (skipped without it), GE MUSE XML written here from GE's published layout
(restecg.dtd: base64 little-endian int16 per lead, scaled by LeadAmplitudeUnitsPerBit), and
damaged files of each kind, which are named and skipped while the folder run goes on."""

import base64
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lamae
from lamae.data.record import derive_limb_leads
from lamae.data.store import EcgStore
from lamae.data.wfdb_io import write_wfdb
from lamae.errors import LamaeError, RecordError
from lamae.leads import STANDARD_LEADS

from ..conftest import shared
from ..test_hostile import assert_named, cli

pytest.importorskip("ecgdatakit", reason="ecgdatakit is not installed (lamae[formats])")
TWELVE = list(STANDARD_LEADS)
EIGHT = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


def signal(leads, seconds=10.0, fs=500, seed=0) -> np.ndarray:
    """ECG-like rows in mV; III, aVR, aVL and aVF follow from I and II where asked for."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    beat = np.exp(-((t % 0.8) - 0.3) ** 2 / 0.0008)
    rows = {name: beat * rng.uniform(0.3, 1.5) + 0.05 * rng.standard_normal(len(t)) for name in ("I", "II", *EIGHT[2:])}
    i, ii = rows["I"], rows["II"]
    rows.update({"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2})
    return np.stack([rows[name] for name in leads])


def muse_xml(x_mv: np.ndarray, leads, fs=500, uv_per_bit=4.88, *, median=True, age="63", sex="FEMALE",
             statements=("Sinus rhythm", "Normal ECG"), count=None, data=None) -> str:
    """A GE MUSE RestingECG export: a median beat first (as MUSE writes it), then the rhythm strip."""
    def lead_data(row, lead):
        ints = np.round(row * 1000 / uv_per_bit).astype("<i2")
        payload = data if data is not None else base64.b64encode(ints.tobytes()).decode()
        n = count if count is not None else len(ints)
        return (f"<LeadData><LeadByteCountTotal>{2 * n}</LeadByteCountTotal><LeadSampleCountTotal>{n}"
                f"</LeadSampleCountTotal><LeadAmplitudeUnitsPerBit>{uv_per_bit}</LeadAmplitudeUnitsPerBit>"
                f"<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadSampleSize>2</LeadSampleSize>"
                f"<LeadID>{lead}</LeadID><WaveFormData>{payload}</WaveFormData></LeadData>")
    waves = []
    if median:
        waves.append("<Waveform><WaveformType>Median</WaveformType><SampleBase>500</SampleBase>"
                     "<SampleExponent>0</SampleExponent>"
                     + "".join(lead_data(row[:600], lead) for row, lead in zip(x_mv, leads)) + "</Waveform>")
    waves.append(f"<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>{fs}</SampleBase>"
                 "<SampleExponent>0</SampleExponent>"
                 + "".join(lead_data(row, lead) for row, lead in zip(x_mv, leads)) + "</Waveform>")
    stmts = "".join(f"<DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>{s}</StmtText></DiagnosisStatement>"
                    for s in statements)
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<RestingECG><MuseInfo><MuseVersion>9.0.9</MuseVersion>'
            f"</MuseInfo><PatientDemographics><PatientID>MRN42</PatientID><PatientAge>{age}</PatientAge>"
            f"<AgeUnits>YEARS</AgeUnits><Gender>{sex}</Gender></PatientDemographics><TestDemographics>"
            "<AcquisitionDevice>MAC55</AcquisitionDevice><AcquisitionDate>03-14-2020</AcquisitionDate>"
            f"<AcquisitionTime>10:15:00</AcquisitionTime></TestDemographics><Diagnosis>{stmts}</Diagnosis>"
            + "".join(waves) + "</RestingECG>\n")


def mortara_xml(x_mv: np.ndarray, leads, fs=500, units_per_mv=200) -> str:
    """A Mortara ELI XML export (the layout ELI electrocardiographs write: an ``ECG`` root with the
    acquisition time and age, ``SUBJECT``, ``SOURCE``, and one ``CHANNEL`` per lead holding Base64
    int16 little-endian samples, ``UNITS_PER_MV`` counts per millivolt)."""
    channels = "".join(
        f'<CHANNEL NAME="{lead}" OFFSET="0" BITS="16" FORMAT="SIGNED" UNITS_PER_MV="{units_per_mv}" '
        f'DURATION="{x_mv.shape[1]}" SAMPLE_FREQ="{fs}" ENCODING="BASE64" DATA="'
        + base64.b64encode(np.round(row * units_per_mv).astype("<i2").tobytes()).decode() + '"/>'
        for row, lead in zip(x_mv, leads))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ECG ACQUISITION_TIME="20200314101500" AGE="71" '
            'AGE_UNITS="YEARS"><SUBJECT ID="S7" GENDER="MALE"/><SOURCE MANUFACTURER="Mortara Instrument" '
            f'MODEL="ELI 250"/>{channels}</ECG>\n')


def ishne_file(path, x_mv: np.ndarray, leads, fs=200, nv_per_bit=2500) -> None:
    """An ISHNE Holter file (Badilini 1998): magic, CRC-CCITT of the header, a 512-byte fixed header
    (little-endian), then int16 samples interleaved across leads, ``nv_per_bit`` nanovolts each."""
    import binascii
    import struct

    codes = {"I": 5, "II": 6, "III": 7, "aVR": 8, "aVL": 9, "aVF": 10,
             **{f"V{k}": 10 + k for k in range(1, 7)}}
    n_leads, n = x_mv.shape
    date = struct.pack("<3h", 14, 3, 2020)
    fixed = (struct.pack("<4i", 0, n, 522, 522) + struct.pack("<h", 1) + b"Ada".ljust(40, b"\0")
             + b"Lovelace".ljust(40, b"\0") + b"ID1".ljust(20, b"\0") + struct.pack("<2h", 2, 1)
             + date * 3 + struct.pack("<3h", 10, 15, 0) + struct.pack("<h", n_leads)
             + struct.pack("<12h", *([codes[lead] for lead in leads] + [-9] * (12 - n_leads)))
             + struct.pack("<12h", *([1] * n_leads + [-9] * (12 - n_leads)))
             + struct.pack("<12h", *([nv_per_bit] * n_leads + [-9] * (12 - n_leads)))
             + struct.pack("<h", 0) + b"lamae test".ljust(40, b"\0") + struct.pack("<h", fs) + b"\0" * 248)
    assert len(fixed) == 512
    samples = np.round(x_mv * 1e6 / nv_per_bit).astype("<i2").T.tobytes()
    Path(path).write_bytes(b"ISHNE1.0" + struct.pack("<H", binascii.crc_hqx(fixed, 0xFFFF)) + fixed + samples)


def test_mortara_and_ishne_files_read_to_millivolts(tmp_path):
    x = signal(TWELVE, fs=500)
    (tmp_path / "eli.xml").write_text(mortara_xml(x, TWELVE))
    rec = lamae.read(tmp_path / "eli.xml")
    assert rec.leads == tuple(TWELVE) and rec.fs == 500 and rec.meta["sex"] == "M" and rec.meta["age"] == 71
    np.testing.assert_allclose(rec.signal, x, atol=1 / 200 / 2 + 1e-6)
    y = signal(["I", "II", "V1"], seconds=12, fs=200)
    ishne_file(tmp_path / "holter.ecg", y, ["I", "II", "V1"])
    rec = lamae.read(tmp_path / "holter.ecg")
    assert rec.leads == ("I", "II", "V1") and rec.fs == 200 and rec.signal.shape == (3, 2400)
    np.testing.assert_allclose(rec.signal, y, atol=2.5e-3 / 2 + 1e-6)


def test_a_muse_export_reads_its_rhythm_strip_in_millivolts_with_its_metadata(tmp_path):
    x = signal(EIGHT)
    (tmp_path / "ecg.xml").write_text(muse_xml(x, EIGHT))
    rec = lamae.read(tmp_path / "ecg.xml")
    assert rec.leads == tuple(EIGHT) and rec.fs == 500 and rec.signal.shape == (8, 5000)  # the 8 stored, not the beat
    np.testing.assert_allclose(rec.signal, x, atol=4.88e-3 / 2 + 1e-6)  # within half a bit
    assert rec.meta["age"] == 63 and rec.meta["sex"] == "F" and rec.meta["device"] == "MAC55"
    assert rec.meta["acquired"].startswith("2020-03-14T10:15") and rec.meta["statements"] == ["Sinus rhythm", "Normal ECG"]
    assert rec.meta["derived_leads"] == [] and rec.patient_id == "MRN42"
    full = lamae.read(tmp_path / "ecg.xml", derive_limb_leads=True)
    assert set(full.leads) == set(TWELVE) and full.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    want = signal(TWELVE)
    got = full.signal[[full.leads.index(lead) for lead in TWELVE]]
    np.testing.assert_allclose(got, want, atol=5e-3)  # Einthoven's and Goldberger's relations
    # lamae's own readers are completed the same way (an 8-lead WFDB record here)
    write_wfdb("eight", tmp_path, signal(EIGHT), EIGHT, 500)
    wfdb_rec = lamae.read(tmp_path / "eight.hea", derive_limb_leads=True)
    assert set(wfdb_rec.leads) == set(TWELVE) and wfdb_rec.meta["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert lamae.read(tmp_path / "eight.hea").meta["derived_leads"] == []


def test_derive_limb_leads_only_adds_what_is_missing():
    x = signal(["I", "II", "aVF"])
    out, leads, derived = derive_limb_leads(x, ("I", "II", "aVF"))
    assert leads == ("I", "II", "aVF", "III", "aVR", "aVL") and derived == ["III", "aVR", "aVL"]
    np.testing.assert_array_equal(out[:3], x)
    assert derive_limb_leads(x[1:], ("II", "aVF"))[2] == []  # without lead I nothing can be derived


def test_hl7_aecg_files_read_from_the_shared_fixtures():
    folder = shared("fixtures", "hl7aecg")
    rec = lamae.read(folder / "subject1_0.xml")
    assert set(rec.leads) == set(TWELVE) and rec.fs == 500 and rec.signal.shape[1] == 5000
    assert 0.1 < np.abs(rec.signal).max() < 5  # millivolts
    assert rec.meta["age"] == 46 and rec.meta["sex"] == "M" and "ELI250" in rec.meta["device"]
    # a valid document whose waveform is 13 samples long: read as it is; prepare and embed refuse
    # it as far shorter than a window (next test)
    assert lamae.read(folder / "minimum_aecg.xml").signal.shape == (1, 13)


def test_embed_over_the_aecg_fixtures_names_the_waveformless_file(tiny_run, tmp_path, capsys):
    folder = shared("fixtures", "hl7aecg")
    rc, out, err = cli(capsys, "embed", folder, "--format", "auto", "--checkpoint", tiny_run,
                       "--out", tmp_path / "x.parquet")
    assert rc == 0, err
    table = pd.read_parquet(tmp_path / "x.parquet")
    assert sorted(table["record_id"]) == ["subject1_0", "subject2_0"]
    assert list(table["age"]) == [46, 46] and list(table["sex"]) == ["M", "M"]
    skipped = pd.read_csv(tmp_path / "x.skipped.csv")
    assert list(skipped["record_id"]) == ["minimum_aecg"] and "0.03 s of signal" in skipped["problem"][0]


def _mixed_folder(tmp_path):
    from .test_hospital_formats import _write_edf

    folder = tmp_path / "mixed"
    folder.mkdir()
    write_wfdb("wfdb_rec", folder, signal(TWELVE), TWELVE, 500)
    _write_edf(folder / "edf_rec.edf", seconds=10, extra=())
    (folder / "muse_rec.xml").write_text(muse_xml(signal(EIGHT, seed=1), EIGHT))
    (folder / "mortara_rec.xml").write_text(mortara_xml(signal(TWELVE, seed=2), TWELVE))
    ishne_file(folder / "ishne_rec.ecg", signal(["I", "II", "V1"], seed=3, fs=200), ["I", "II", "V1"])
    (folder / "notes.txt").write_text("a dataset's readme is passed over")
    try:
        shutil.copy(shared("fixtures", "hl7aecg", "subject1_0.xml"), folder / "aecg_rec.xml")
    except pytest.skip.Exception:
        pass
    return folder


def test_prepare_over_a_folder_that_mixes_formats_builds_one_store(tmp_path, capsys):
    folder = _mixed_folder(tmp_path)
    rc, out, err = cli(capsys, "prepare", folder, "--format", "auto", "--out", tmp_path / "st", "--window", "10")
    assert rc == 0, err
    st = EcgStore(tmp_path / "st")
    ids = set(st.index["record_id"])
    formats = {"wfdb_rec", "edf_rec", "muse_rec", "mortara_rec", "ishne_rec"}
    assert formats <= ids and ids <= formats | {"aecg_rec"}
    row = st.index.set_index("record_id").loc["muse_rec"]
    assert row["sex"] == "F" and row["age"] == 63 and list(row["statements"]) == ["Sinus rhythm", "Normal ECG"]
    assert st.lead_mask([int(row["row"])])[0].sum() == 8  # MUSE's 8 leads as they are
    rc, _, err = cli(capsys, "prepare", folder, "--format", "auto", "--out", tmp_path / "st12", "--window", "10",
                     "--derive-limb-leads")
    assert rc == 0, err
    row = EcgStore(tmp_path / "st12").index.set_index("record_id").loc["muse_rec"]
    assert list(row["derived"]) == ["III", "aVR", "aVL", "aVF"] and bin(int(row["lead_bits"])).count("1") == 12


def test_a_files_embedding_equals_the_arrays_for_every_format(tiny_run, tmp_path):
    pytest.importorskip("pyedflib")
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    folder = _mixed_folder(tmp_path)
    shutil.copy(get_testdata_file("waveform_ecg.dcm"), folder / "dicom_rec.dcm")
    model = lamae.load(tiny_run)
    from lamae.embed import embed_dataset

    embed_dataset(tiny_run, folder, tmp_path / "all.parquet", fmt="auto", progress=False)
    table = pd.read_parquet(tmp_path / "all.parquet").set_index("record_id")
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".hea", ".edf", ".xml", ".dcm", ".ecg")):
        rec = lamae.read(path)
        from_file = model.embed(path)
        from_array = model.embed(rec.signal, rec.fs, list(rec.leads))
        np.testing.assert_array_equal(from_file, from_array)
        np.testing.assert_allclose(table.loc[path.stem, "embedding"], from_array, rtol=1e-5, atol=1e-6)


def test_ecgdatakit_and_lamaes_own_edf_and_dicom_readers_agree(tmp_path):
    """The evidence behind keeping lamae's EDF (pyedflib: EDF, EDF+ and BDF) and DICOM readers:
    on the same files ecgdatakit reads the same millivolts, so neither path is wrong."""
    pytest.importorskip("pydicom")
    from ecgdatakit import FileParser
    from pydicom.data import get_testdata_file

    from lamae.data.hospital import DicomEcgReader, EdfReader
    from lamae.leads import lead_from_label
    from .test_hospital_formats import _write_edf

    (tmp_path / "d").mkdir()
    shutil.copy(get_testdata_file("waveform_ecg.dcm"), tmp_path / "d" / "ecg.dcm")
    (tmp_path / "e").mkdir()
    _write_edf(tmp_path / "e" / "a.edf")
    for folder, reader in ((tmp_path / "d", DicomEcgReader), (tmp_path / "e", EdfReader)):
        r = reader(folder)
        item = r.items()[0]
        ours = r.read(item)
        theirs = {lead_from_label(lead.label): lead for lead in FileParser.parse(folder / item.path, units="mV").leads}
        for name, row in zip(ours.leads, ours.signal):
            assert theirs[name].sampling_rate == ours.fs
            np.testing.assert_allclose(np.asarray(theirs[name].samples), row, atol=1e-6)


# --------------------------------------------------------------------------- damaged exports
def _bad_files(folder, good: str):
    """Each kind of damaged export the issue names, beside one good file."""
    x = signal(EIGHT)
    (folder / "good.xml").write_text(good)
    (folder / "truncated.xml").write_text(good[: len(good) // 3])
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE RestingECG [<!ENTITY a "aaaaaaaaaa">'
            + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
            + ']>\n<RestingECG><MuseInfo><MuseVersion>&i;</MuseVersion></MuseInfo></RestingECG>\n')
    (folder / "bomb.xml").write_text(bomb)
    (folder / "external.xml").write_text('<?xml version="1.0"?>\n<!DOCTYPE RestingECG [<!ENTITY x SYSTEM '
                                         '"file:///etc/passwd">]>\n<RestingECG><MuseInfo><MuseVersion>&x;'
                                         "</MuseVersion></MuseInfo></RestingECG>\n")
    (folder / "base64.xml").write_text(muse_xml(x, EIGHT, data="!!!not base64!!!"))
    (folder / "count.xml").write_text(muse_xml(x, EIGHT, count=4000))
    (folder / "dialect.xml").write_text('<?xml version="1.0"?>\n<EcgExport vendor="Acme"><Lead name="I">1 2 3'
                                        "</Lead></EcgExport>\n")
    (folder / "empty.xml").write_text(muse_xml(x[:, :0], EIGHT, median=False))
    (folder / "garbage.xml").write_bytes(bytes(range(256)) * 8)
    (folder / "garbage.scp").write_bytes(b"\x00\x13" + bytes(range(256)) * 8)


def test_damaged_exports_are_named_and_the_folder_run_goes_on(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    _bad_files(folder, muse_xml(signal(EIGHT), EIGHT))
    for fmt in ("auto", "muse"):
        rc, out, err = cli(capsys, "prepare", folder, "--format", fmt, "--out", tmp_path / f"st-{fmt}", "--window", "10")
        assert rc == 0, err
        assert list(EcgStore(tmp_path / f"st-{fmt}").index["record_id"]) == ["good"]
        report = pd.read_json(tmp_path / f"st-{fmt}" / "report.json", typ="series")
        skipped = {s["record_id"]: s["problem"] for s in report["skipped"]}
        expect = {"truncated", "bomb", "external", "base64", "count", "dialect", "empty"}
        # garbage.xml and garbage.scp share a name: under auto each keeps its extension
        expect |= {"garbage.xml", "garbage.scp"} if fmt == "auto" else {"garbage"}
        assert expect <= set(skipped), skipped
        for name, problem in skipped.items():
            assert problem.startswith(name) and "unexpected" not in problem, problem
        assert "root:x:" not in str(skipped) and "entit" in skipped["external"].lower()  # refused, not resolved
    rc, _, err = cli(capsys, "prepare", folder, "--format", "scp", "--out", tmp_path / "st-scp", "--window", "10")
    assert_named(rc, err, "every record was skipped")


def test_the_api_names_a_file_it_cannot_read(tmp_path, tiny_run):
    (tmp_path / "garbage.xml").write_bytes(bytes(range(256)))
    with pytest.raises(RecordError, match="not an ECG format lamae reads"):
        lamae.read(tmp_path / "garbage.xml")
    with pytest.raises(LamaeError, match="no such file"):
        lamae.read(tmp_path / "none.xml")
    with pytest.raises(LamaeError, match="own rate and leads"):
        lamae.load(tiny_run).embed(tmp_path / "garbage.xml", 500, ["I"])


def test_both_mimic_layouts_are_read_with_or_without_the_record_list(tmp_path, capsys):
    from lamae.data.sources import MimicEcgReader
    from lamae.data.synth import synthesize_mimic

    for layout, depth in (("v1", 5), ("demo", 4)):
        data = synthesize_mimic(tmp_path / layout, 6, seed=2, progress=False, layout=layout)
        paths = pd.read_csv(data / "record_list.csv", dtype=str)["path"]
        assert all(len(p.split("/")) == depth for p in paths)
        if layout == "demo":
            assert all(len(p.split("/")[-1]) == 9 for p in paths)  # 9-digit study ids
        with_list = {(i.record_id, i.patient_id, i.codes) for i in MimicEcgReader(data).items()}
        (data / "record_list.csv").rename(data / "record_list.bak")
        walked = {(i.record_id, i.patient_id, i.codes) for i in MimicEcgReader(data).items()}
        assert walked == with_list and len(walked) == 6
        rc, _, err = cli(capsys, "prepare", data, "--format", "mimic", "--out", tmp_path / f"st-{layout}",
                         "--window", "2")
        assert rc == 0 and len(EcgStore(tmp_path / f"st-{layout}")) == 6, err
