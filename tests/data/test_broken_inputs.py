"""A corpus of broken inputs, built here: each gets a named error saying which file and what is
wrong, or in ``prepare`` is skipped (or loses only the bad lead) and is listed in the report,
while the rest of the data is processed."""

import json
import shutil

import numpy as np
import pytest

from lamae.data.preprocess import Preprocessing, preprocess
from lamae.data.sources import WfdbFolderReader
from lamae.data.store import EcgStore, prepare
from lamae.data.wfdb_io import read_wfdb, write_wfdb
from lamae.errors import LabelError, LamaeError, LeadNameError, RecordError
from lamae.labels.icd10 import build_targets, parse_code_list
from lamae.leads import STANDARD_LEADS
from tests.conftest import TEST_PREP

FS = 500


def _good(seed: int) -> np.ndarray:
    from lamae.data.synth import simulate_ecg

    return simulate_ecg(np.random.default_rng(seed), set(), fs=FS, duration_s=3.0)


def _edit(path, old, new):
    path.write_text(path.read_text().replace(old, new, 1))


def _corpus(root):
    """Write good and broken records; returns {record name: expected problem text}."""
    root.mkdir()
    leads = list(STANDARD_LEADS)
    for i in range(4):
        write_wfdb(f"good{i}", root, _good(i), leads, FS)
    expect = {}

    def make(name, fix=None, signal=None, names=None, problem=""):
        write_wfdb(name, root, _good(10) if signal is None else signal, names or leads, FS)
        if fix:
            fix(root / f"{name}.hea", root / f"{name}.dat")
        expect[name] = problem

    make("truncated", lambda h, d: d.write_bytes(d.read_bytes()[:3000]), problem="truncated")
    make("longer_dat", lambda h, d: d.write_bytes(d.read_bytes() + b"\0" * 48),
         problem="header disagrees with data")
    make("zero_length", lambda h, d: _edit(h, f"zero_length 12 {FS} {3 * FS}", f"zero_length 12 {FS} 0"),
         problem="zero samples")
    make("format_999", lambda h, d: _edit(h, ".dat 16 ", ".dat 999 "), problem="format 999 is not supported")
    make("gain_text", lambda h, d: _edit(h, "200(0)/mV", "abc(0)/mV"), problem="ADC gain 'abc(0)/mV' is not a number")
    make("no_dat", lambda h, d: d.unlink(), problem="missing")
    make("rate_50", lambda h, d: _edit(h, f"rate_50 12 {FS}", "rate_50 12 50"), problem="50 Hz is too low")
    make("dup_leads", names=leads[:11] + ["I"], problem="'I' appears more than once")
    make("all_nan", signal=np.full((12, 3 * FS), np.nan), problem="no usable lead")
    make("all_flat", signal=np.zeros((12, 3 * FS)), problem="no usable lead")
    # Records kept without a lead:
    flat = _good(20)
    flat[leads.index("V4")] = 0.1
    write_wfdb("flat_v4", root, flat, leads, FS)
    sat = _good(21)
    sat[leads.index("aVL")] = np.clip(sat[leads.index("aVL")] * 50 + 158, -160, 160)  # stuck at the rail
    write_wfdb("saturated_avl", root, sat, leads, FS)
    holes = _good(22)
    holes[2, 100:140] = np.nan  # a short dropout: interpolated, lead kept
    write_wfdb("short_nan_run", root, holes, leads, FS)
    return expect


def test_prepare_skips_and_reports_every_broken_record(tmp_path):
    expect = _corpus(tmp_path / "data")
    store = prepare(WfdbFolderReader(tmp_path / "data"), tmp_path / "store", TEST_PREP, progress=False)
    report = json.loads((tmp_path / "store" / "report.json").read_text())
    problems = {r["record_id"]: r["problem"] for r in report["skipped"]}
    assert set(problems) == set(expect)
    for name, text in expect.items():
        assert text in problems[name], (name, problems[name])
    stored = set(store.index["record_id"])
    assert stored == {"good0", "good1", "good2", "good3", "flat_v4", "saturated_avl", "short_nan_run"}
    dropped = {(d["record_id"], d["lead"]): d["problem"] for d in report["dropped_leads"]}
    assert set(dropped) == {("flat_v4", "V4"), ("saturated_avl", "aVL")}
    assert "flat" in dropped["flat_v4", "V4"] and "saturated" in dropped["saturated_avl", "aVL"]
    rows = store.index.set_index("record_id")["row"]
    assert store.lead_mask([rows["flat_v4"]])[0].sum() == 11
    assert store.lead_mask([rows["short_nan_run"]])[0].all()
    assert np.isfinite(np.asarray(store.signals, dtype=np.float32)).all()
    md = (tmp_path / "store" / "report.md").read_text()
    assert "truncated" in md and "| flat_v4 | V4 |" in md


@pytest.mark.parametrize("name", ["truncated", "zero_length", "format_999", "gain_text", "no_dat", "dup_leads"])
def test_reading_a_broken_record_names_the_file(tmp_path, name):
    expect = _corpus(tmp_path / "data")
    with pytest.raises((RecordError, LeadNameError)) as err:
        read_wfdb(tmp_path / "data" / name)
    assert name in str(err.value) and expect[name] in str(err.value)


def test_nan_and_inf_in_arrays_are_interpolated_or_refused():
    x = _good(1)[:2]
    x[0, 50:60] = np.inf
    x[1, 10] = np.nan
    y = preprocess(x, FS, TEST_PREP, leads=["I", "II"], record_id="arr")
    assert np.isfinite(y).all()
    x[1] = np.nan
    with pytest.raises(RecordError, match="arr: lead II is all NaN/inf"):
        preprocess(x, FS, TEST_PREP, leads=["I", "II"], record_id="arr")


def test_malformed_label_lists_and_unknown_codes():
    with pytest.raises(LabelError, match="f.csv row 7: cannot parse code list"):
        parse_code_list("['I48', ", source="f.csv row 7")
    with pytest.raises(LabelError, match="row 3"):
        parse_code_list("[1, 2]", source="row 3")
    with pytest.raises(LabelError):
        parse_code_list("__import__('os').system('true')", source="row 4")  # never evaluated
    t = build_targets([["I4891", "NOTACODE"], ["I4891"], ["ZZZ999"]], min_prevalence=0.0, min_count=1)
    assert t.unknown_codes == {"NOTACODE": 1, "ZZZ999": 1}
    assert "I4891" in t.nodes


def test_incompatible_store_and_checkpoint_are_refused(store, tiny_run, tmp_path, synth_dir):
    from lamae.checkpoint import load_checkpoint
    from lamae.data.sources import MimicEcgReader
    from lamae.eval.probe import run_probe
    from lamae.train.pretrain import PretrainConfig, pretrain

    # A store made with other preprocessing (rate) is refused by probe, embed and resume.
    other = prepare(MimicEcgReader(synth_dir), tmp_path / "s250", Preprocessing(fs=250, window_s=2.0),
                    progress=False, limit=30)
    with pytest.raises(LamaeError, match="differs from the checkpoint"):
        run_probe(tiny_run, other.path, tmp_path / "p", progress=False)
    from lamae.embed import embed_dataset
    with pytest.raises(LamaeError, match="differs from the checkpoint"):
        embed_dataset(tiny_run, other.path, tmp_path / "e.npy", progress=False)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(LamaeError, match="cannot resume"):
        pretrain(PretrainConfig(store=str(other.path), out=str(run), steps=40, batch_size=8,
                                model={"n_latents": 4}), resume=True, progress=False)
    # Weights that do not fit the configuration.
    ck = run / json.loads((run / "latest.json").read_text())["path"]
    cfg = json.loads((ck / "config.json").read_text())
    cfg["model"]["dim"] = 32
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LamaeError, match="weights do not match"):
        load_checkpoint(ck)
    (ck / "config.json").write_text("{not json")
    with pytest.raises(LamaeError, match="config.json"):
        load_checkpoint(ck)


def test_damaged_store_is_detected_on_open(store, tmp_path, monkeypatch):
    copy = tmp_path / "s"
    shutil.copytree(store.path, copy)
    EcgStore(copy)  # intact
    sig = copy / "signals.npy"
    data = bytearray(sig.read_bytes())
    data[-100] ^= 0xFF  # flip bits in the last row
    sig.write_bytes(bytes(data))
    with pytest.raises(LamaeError, match=r"row 89 .* does not match its checksum"):
        EcgStore(copy)
    from lamae.cli import main
    assert main(["verify", str(copy)]) == 2
    # Above the full-check size, opening checks a sample that always includes the last row.
    monkeypatch.setattr(EcgStore, "FULL_VERIFY_BYTES", 0)
    with pytest.raises(LamaeError, match="row 89"):
        EcgStore(copy)
    sig.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(LamaeError, match="signals.npy"):
        EcgStore(copy)
    shutil.copy(store.path / "signals.npy", sig)
    idx = copy / "index.parquet"
    idx.write_bytes(idx.read_bytes() + b"\0")
    with pytest.raises(LamaeError, match="index.parquet: checksum does not match"):
        EcgStore(copy)
