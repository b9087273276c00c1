"""The hostile corpus, round 3 (issue 26): no command deletes what lamae did not write, no record is
stored wrong without a word, no result that looks valid is not, and no input ends in a traceback
or a hang. Each case is built here, on small synthetic data."""

import json
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

import lamae
from lamae.data.store import EcgStore, meta_digest
from lamae.data.wfdb_io import write_wfdb
from lamae.errors import LamaeError
from lamae.files import check_removable
from lamae.leads import STANDARD_LEADS

from .test_hostile import assert_named, cli

TWELVE = list(STANDARD_LEADS)


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the body takes longer than ``seconds``."""
    def fire(*_):
        raise TimeoutError(f"still running after {seconds} s: a hang")
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def ecg(seconds: float, fs: float = 100.0, seed: int = 0, leads: int = 12) -> np.ndarray:
    """A beating, noisy ECG-like signal in mV, (leads, samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    beat = np.exp(-((t % 0.8) - 0.3) ** 2 / 0.0008)
    return (beat[None] * rng.uniform(0.3, 1.5, (leads, 1)) + 0.05 * rng.standard_normal((leads, len(t)))).astype(np.float64)


def tree(base: Path) -> Path:
    """A small dataset to damage: 8 synthetic MIMIC-IV-ECG records with labels."""
    from lamae.data.synth import synthesize_mimic

    return synthesize_mimic(base, 8, seed=5, progress=False)


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# =========================================================================== 1. data loss
def test_overwrite_refuses_the_input_and_folders_around_or_inside_it(tmp_path, capsys):
    data = tree(tmp_path / "data")
    before = snapshot(data)
    for out, words in ((data, "input dataset"), (data / "store", "inside it"), (tmp_path, "contains it")):
        rc, _, err = cli(capsys, "prepare", data, "--out", out, "--overwrite", "--window", "2")
        assert_named(rc, err, str(out))
        assert words in err, err
    assert snapshot(data) == before  # not a byte lost


def test_overwrite_refuses_a_folder_of_the_users_own_files(tmp_path, capsys):
    data = tree(tmp_path / "data")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    rc, _, err = cli(capsys, "prepare", data, "--out", mine, "--overwrite", "--window", "2")
    assert_named(rc, err, "thesis.tex", "did not write")
    assert (mine / "thesis.tex").read_text() == "years of work"
    # a store lamae made is replaced as asked
    rc, _, err = cli(capsys, "prepare", data, "--out", tmp_path / "s", "--window", "2")
    assert rc == 0, err
    rc, _, err = cli(capsys, "prepare", data, "--out", tmp_path / "s", "--window", "4", "--overwrite")
    assert rc == 0, err
    assert EcgStore(tmp_path / "s").preprocessing.window_s == 4


def test_overwrite_accepts_every_name_a_real_store_holds_and_never_a_run(store, tiny_run, tmp_path):
    """--overwrite (prepare's) removes a finished store, with a file caught mid-write, and nothing
    beside it; a pretraining run is never a store it may remove (issue 38)."""
    copy = tmp_path / "store"
    shutil.copytree(store.path, copy)
    (copy / "meta.json.tmp").write_text("half")
    assert check_removable(copy) == copy.resolve()
    (copy / "notes.txt").write_text("mine")
    with pytest.raises(LamaeError, match="notes.txt"):
        check_removable(copy)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(LamaeError, match="pretraining run"):
        check_removable(run)


def test_overwrite_refuses_the_current_home_and_root_folders(tmp_path, capsys, monkeypatch):
    data = tree(tmp_path / "data")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("keep")
    monkeypatch.chdir(work)
    for out in ("", "."):
        rc, _, err = cli(capsys, "prepare", data, "--out", out, "--overwrite", "--window", "2")
        assert rc == 2 and "Traceback" not in err, err
    assert (work / "notes.txt").read_text() == "keep"
    # the guard itself, for places a test must never hand to prepare
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for out, words in (("/", "is the root folder"), (tmp_path / "home", "home"), (tmp_path, "home"), (work, "current directory"),
                       (work.parent, "home folder or contains it")):
        with pytest.raises(LamaeError, match=words):
            check_removable(out)


def test_no_command_writes_into_a_store_or_a_checkpoint(store, tiny_run, synth_dir, tmp_path, capsys):
    s = tmp_path / "s"
    shutil.copytree(store.path, s)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ck = run / json.loads((run / "latest.json").read_text())["path"]
    before = snapshot(s), snapshot(ck)
    rec = tmp_path / "rec"
    rec.mkdir()
    write_wfdb("r", rec, ecg(3), TWELVE, 100)
    cases = [
        ("embed", synth_dir, "--format", "mimic", "--checkpoint", run, "--out", s / "signals.npy"),
        ("embed", synth_dir, "--format", "mimic", "--checkpoint", run, "--out", ck / "emb.parquet"),
        ("reconstruct", s, "--checkpoint", run, "--hide", "V1", "--out", s),
        ("reconstruct", rec / "r", "--checkpoint", run, "--hide", "V1", "--out", ck),
        ("explain", rec / "r", "--checkpoint", run, "--out", s / "plots"),
        ("probe", "--checkpoint", run, "--store", s, "--out", s),
        ("compare", "--store", s, "--out", s / "compare"),
        ("pretrain", "--store", s, "--out", s / "run"),
        ("prepare", synth_dir, "--out", ck, "--window", "2"),
    ]
    for argv in cases:
        rc, _, err = cli(capsys, *argv)
        assert_named(rc, err, "writing there would damage it")
    assert (snapshot(s), snapshot(ck)) == before
    # and the API's writers
    model = lamae.load(run)
    with pytest.raises(LamaeError, match="lamae store"):
        model.explain(ecg(3), 100, TWELVE, s / "x")
    with pytest.raises(LamaeError, match="lamae checkpoint"):
        model.reconstruct(ecg(3), 100, TWELVE, hide=["V1"]).save(ck)
    from lamae.hub import export_checkpoint

    with pytest.raises(LamaeError, match="lamae store"):
        export_checkpoint(model, s)
    assert (snapshot(s), snapshot(ck)) == before


# =========================================================================== 2. wrong data stored silently
def _report(store_dir: Path) -> dict:
    return json.loads((store_dir / "report.json").read_text())


def _skipped(store_dir: Path) -> dict:
    return {r["record_id"]: r["problem"] for r in _report(store_dir)["skipped"]}


def test_records_far_shorter_than_the_window_are_skipped_and_named(tmp_path, capsys):
    data = tmp_path / "wfdb"
    data.mkdir()
    write_wfdb("long", data, ecg(10), TWELVE, 100)
    for name, seconds in (("s003", 0.03), ("s02", 0.2), ("s12", 1.2)):
        write_wfdb(name, data, ecg(seconds), TWELVE, 100)
    rc, out, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "st", "--window", "4")
    assert rc == 0, err
    skipped = _skipped(tmp_path / "st")
    assert set(skipped) == {"s003", "s02", "s12"} and "shorter than the minimum of 2 s" in skipped["s12"]
    assert list(EcgStore(tmp_path / "st").index["record_id"]) == ["long"]
    # the minimum is the user's to set
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "st1", "--window", "4",
                     "--min-length", "1")
    assert rc == 0 and set(_skipped(tmp_path / "st1")) == {"s003", "s02"}, err


def _code15(folder: Path, rows: list[dict], lengths: dict) -> Path:
    folder.mkdir()
    for exam, n in lengths.items():
        x = np.zeros((4096, 12), np.float32)
        x[100:100 + n] = ecg(n / 400, fs=400, seed=int(exam)).T[:n]
        scipy.io.savemat(folder / f"code_15_{exam}.mat", {"feats": x})
    pd.DataFrame(rows).to_csv(folder / "meta.csv", index=False)
    return folder


def test_code15_a_12_sample_exam_is_skipped_and_repeated_rows_store_one_ecg(tmp_path, capsys):
    rows = [{"exam_id": e, "patient_id": p, "AF": af, "RBBB": "False", "1dAVb": "False", "LBBB": "False",
             "SB": "False", "ST": "False"} for e, p, af in
            (("1", "10", "False"), ("2", "20", "True"), ("2", "20", "True"), ("3", "30", "True"),
             ("3", "30", "False"), ("4", "40", "False"))]
    data = _code15(tmp_path / "c15", rows, {"1": 3600, "2": 3600, "3": 3600, "4": 12})
    rc, out, err = cli(capsys, "prepare", data, "--format", "code15", "--out", tmp_path / "st", "--window", "8")
    assert rc == 0, err
    st = EcgStore(tmp_path / "st")
    assert sorted(st.index["record_id"]) == ["1", "2", "3"]  # exam 2 once, the 12-sample exam 4 skipped
    assert "12 samples" in _skipped(tmp_path / "st")["4"]
    labelled = st.index.set_index("record_id")["has_labels"]
    assert labelled["2"] and not labelled["3"]  # conflicting rows: unlabelled, not the later row's labels
    problems = {(t["row"], t["action"]) for t in _report(tmp_path / "st")["table_problems"]}
    assert (4, "row ignored (the record is stored once)") in problems and (6, "record stored unlabelled") in problems
    # meta.csv without the columns that name exams and patients: named, not a KeyError
    for column in ("exam_id", "patient_id"):
        pd.DataFrame(rows).drop(columns=column).to_csv(data / "meta.csv", index=False)
        rc, _, err = cli(capsys, "prepare", data, "--format", "code15", "--out", tmp_path / f"x{column}")
        assert_named(rc, err, "meta.csv", column)


def test_a_short_edf_is_skipped(tmp_path, capsys):
    from .data.test_hospital_formats import _write_edf

    folder = tmp_path / "edf"
    folder.mkdir()
    _write_edf(folder / "short.edf", fs=500, seconds=1, extra=())
    _write_edf(folder / "long.edf", fs=500, seconds=10, extra=())
    rc, _, err = cli(capsys, "prepare", folder, "--format", "edf", "--out", tmp_path / "st", "--window", "10")
    assert rc == 0, err
    assert "shorter than the minimum" in _skipped(tmp_path / "st")["short"]


def _header_edit(folder: Path, name: str, edit) -> None:
    hea = folder / f"{name}.hea"
    hea.write_text(edit(hea.read_text()))


def test_wfdb_headers_with_no_rate_a_negative_rate_or_other_units_are_read_right(tmp_path, capsys):
    data = tmp_path / "wfdb"
    data.mkdir()
    x = ecg(10)
    for name in ("good", "norate", "negative", "mmhg", "uv", "microvolt"):
        write_wfdb(name, data, x, TWELVE, 100)
    first = lambda text, new: "\n".join([new] + text.splitlines()[1:]) + "\n"  # noqa: E731
    _header_edit(data, "norate", lambda t: first(t, "norate 12"))
    _header_edit(data, "negative", lambda t: first(t, "negative 12 -100 1000"))
    _header_edit(data, "mmhg", lambda t: t.replace("/mV", "/mmHg", 1))
    # the same numbers declared in microvolts: 1000 times smaller in mV
    _header_edit(data, "uv", lambda t: t.replace("/mV", "/uV"))
    _header_edit(data, "microvolt", lambda t: t.replace("/mV", "/microvolt"))
    from lamae.data.wfdb_io import read_wfdb

    for name, words in (("norate", "no sampling rate"), ("negative", "not a positive number"), ("mmhg", "mmHg")):
        with pytest.raises(LamaeError, match=words):
            read_wfdb(data / name)
    good = read_wfdb(data / "good").signal
    for name in ("uv", "microvolt"):
        np.testing.assert_allclose(read_wfdb(data / name).signal, good / 1000, rtol=1e-6)
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "st", "--window", "4")
    assert rc == 0, err
    assert set(_skipped(tmp_path / "st")) == {"norate", "negative", "mmhg"}


def test_a_huge_baseline_that_float16_cannot_hold_is_refused(tmp_path, capsys):
    data = tmp_path / "wfdb"
    data.mkdir()
    write_wfdb("ok", data, ecg(10), TWELVE, 100)
    write_wfdb("offset", data, ecg(10) + 150.0, TWELVE, 100, gain=20)  # a 150 mV baseline (format 16 holds it)
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "raw", "--window", "4",
                     "--no-bandpass", "--normalize", "none")
    assert rc == 0, err
    assert "precision" in _skipped(tmp_path / "raw")["offset"]
    # with the band-pass, which removes the baseline, the record is stored
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "bp", "--window", "4",
                     "--normalize", "none")
    assert rc == 0 and len(EcgStore(tmp_path / "bp")) == 2, err


def test_a_dicom_with_its_median_beat_first_gives_the_rhythm_strip(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    from lamae.data.hospital import DicomEcgReader

    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    groups = list(ds.WaveformSequence)
    assert [g.MultiplexGroupLabel for g in groups] == ["RHYTHM", "MEDIAN BEAT"]
    folder = tmp_path / "dcm"
    folder.mkdir()
    ds.WaveformSequence = pydicom.sequence.Sequence([groups[1], groups[0]])  # the median beat first
    ds.save_as(folder / "median_first.dcm")
    for g in ds.WaveformSequence:  # unlabelled: the longer group, the rhythm strip, wins
        del g.MultiplexGroupLabel
    ds.save_as(folder / "unlabelled.dcm")
    ds.WaveformSequence = pydicom.sequence.Sequence([groups[1]])
    ds.WaveformSequence[0].MultiplexGroupLabel = "MEDIAN BEAT"
    ds.save_as(folder / "median_only.dcm")
    reader = DicomEcgReader(folder)
    items = {i.record_id: i for i in reader.items()}
    for name in ("median_first", "unlabelled"):
        rec = reader.read(items[name])
        assert rec.signal.shape == (12, 10000) and rec.fs == 1000.0, name
    with pytest.raises(LamaeError, match="median or representative beat"):
        reader.read(items["median_only"])


def test_repeated_and_conflicting_rows_of_the_mimic_tables(tmp_path, capsys):
    data = tree(tmp_path / "data")
    rl = pd.read_csv(data / "record_list.csv", dtype=str)
    pd.concat([rl, rl.iloc[[0, 0]]]).to_csv(data / "record_list.csv", index=False)  # listed three times
    lab = pd.read_csv(data / "records_w_diag_icd10.csv", dtype=str, keep_default_na=False)
    same, other = lab.iloc[[1]].copy(), lab.iloc[[2]].copy()
    other["all_diag_all"] = "['Z000']" if other["all_diag_all"].iat[0] != "['Z000']" else "['I10']"
    pd.concat([lab, same, other]).to_csv(data / "records_w_diag_icd10.csv", index=False)
    rc, _, err = cli(capsys, "prepare", data, "--out", tmp_path / "st", "--window", "2")
    assert rc == 0, err
    st = EcgStore(tmp_path / "st")
    assert len(st) == 8 and not st.index["record_id"].duplicated().any()
    labelled = st.index.set_index("record_id")["has_labels"]
    assert labelled[str(lab["study_id"].iat[1])] and not labelled[str(lab["study_id"].iat[2])]
    actions = [t["action"] for t in _report(tmp_path / "st")["table_problems"]]
    assert actions.count("row ignored (the record is stored once)") == 3 and "record stored unlabelled" in actions


def test_a_five_second_run_of_nan_makes_the_lead_absent_with_a_word(tmp_path, capsys, tiny_run):
    data = tmp_path / "wfdb"
    data.mkdir()
    x = ecg(10)
    x[3, 200:700] = np.nan  # 5 s of aVR missing
    x[4, 300:340] = np.nan  # a 0.4 s gap in aVL: interpolated
    write_wfdb("gappy", data, x, TWELVE, 100)
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "st", "--window", "2")
    assert rc == 0, err
    dropped = _report(tmp_path / "st")["dropped_leads"]
    assert [d["lead"] for d in dropped] == ["aVR"] and "5 s run of NaN" in dropped[0]["problem"]
    assert EcgStore(tmp_path / "st").lead_mask([0])[0].tolist() == [lead not in ("aVR",) for lead in TWELVE]
    with pytest.warns(UserWarning, match="aVR a 5 s run of NaN"):
        lamae.load(tiny_run).embed(x, 100, TWELVE)


# =========================================================================== 3. results that look valid
def test_hiding_every_lead_or_an_unusable_one_is_refused(store, tiny_run, tmp_path, capsys):
    rc, _, err = cli(capsys, "reconstruct", store.path, "--checkpoint", tiny_run, "--hide", *TWELVE,
                     "--out", tmp_path / "r")
    assert_named(rc, err, "cannot hide all 12 leads")
    rc, _, err = cli(capsys, "ablate", store.path, "--checkpoint", f"L={tiny_run}", "--hide", *TWELVE,
                     "--out", tmp_path / "a")
    assert_named(rc, err, "cannot hide all 12 leads")
    rec = tmp_path / "rec"
    rec.mkdir()
    x = ecg(3)
    x[8] = 0.2  # V3 flat
    write_wfdb("flat", rec, x, TWELVE, 100)
    rc, _, err = cli(capsys, "reconstruct", rec / "flat", "--checkpoint", tiny_run, "--hide", "V3", "V1",
                     "--out", tmp_path / "f")
    assert_named(rc, err, "cannot hide V3", "unusable")
    rc, out, err = cli(capsys, "reconstruct", rec / "flat", "--checkpoint", tiny_run, "--hide", "V1",
                       "--out", tmp_path / "f")
    assert rc == 0 and "nan" not in out and out.count("V3") == 1, out  # V3 rebuilt once, as missing


def test_settings_that_were_misread_are_named(store, synth_dir, tiny_run, tmp_path, capsys):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (tmp_path / "bomb.yaml").write_text(bomb)
    for name, text in (("seeds", "seeds: []\n"), ("models", "models: []\n"), ("pretrain", "pretrain: 5\n")):
        (tmp_path / f"{name}.yaml").write_text(text)
    pre = ("pretrain", "--store", store.path)
    cases = [
        ((*pre, "--out", tmp_path / "r1", "--set", "compile=maybe"), "'compile' must be true or false"),
        ((*pre, "--out", tmp_path / "r2", "--set", "steps.x=5"), "steps is 1000"),
        ((*pre, "--out", tmp_path / "r3", "--set", "store=123"), "'store' must be text"),
        ((*pre, "--out", tmp_path / "r4", "--set", "out=[1,2]"), "'out' must be text"),
        ((*pre, "--out", tmp_path / "r5", "--config", tmp_path / "bomb.yaml"), "expands to more than"),
        (("compare", tmp_path / "seeds.yaml", "--store", store.path, "--out", tmp_path / "c1"), "seeds must be"),
        (("compare", tmp_path / "models.yaml", "--store", store.path, "--out", tmp_path / "c2"), "models must be"),
        (("compare", tmp_path / "pretrain.yaml", "--store", store.path, "--out", tmp_path / "c3"), "pretrain"),
        (("embed", synth_dir, "--format", "mimic", "--checkpoint", tiny_run, "--out", tmp_path / "e.parquet",
          "--limit", "-1"), "limit must be a positive integer"),
        (("embed", synth_dir, "--format", "mimic", "--checkpoint", tiny_run, "--out", tmp_path / "e.parquet",
          "--chunk-size", "0"), "chunk_size must be a positive integer"),
        (("embed", synth_dir, "--format", "mimic", "--checkpoint", tiny_run, "--out", tmp_path / "e.parquet",
          "--device", "nope"), "not a device name"),
        (("probe", "--checkpoint", tiny_run, "--store", store.path, "--out", tmp_path / "p", "--device", "nope"),
         "not a device name"),
        # read as "not given" once, so the whole default demo ran instead
        (("demo", "--out", tmp_path / "d", "--steps", "0"), "steps must be a positive integer"),
        (("demo", "--out", tmp_path / "d", "--records", "0"), "records must be a positive integer"),
    ]
    for argv, words in cases:
        with deadline(60):
            rc, _, err = cli(capsys, *argv)
        assert_named(rc, err, words)
    with pytest.raises(LamaeError, match="not a device name"):
        lamae.load(tiny_run, device="nope")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(LamaeError, match="no CUDA GPU"):
            lamae.load(tiny_run, device="cuda")
        rc, _, err = cli(capsys, "probe", "--checkpoint", tiny_run, "--store", store.path, "--out", tmp_path / "p",
                         "--device", "cuda")
        assert_named(rc, err, "no CUDA GPU")


def test_a_latest_json_claiming_more_steps_than_its_checkpoint_is_named(store, tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    info = json.loads((run / "latest.json").read_text())
    (run / "latest.json").write_text(json.dumps({**info, "step": 999}))
    rc, out, err = cli(capsys, "pretrain", "--store", store.path, "--out", run, "--steps", "20", "--resume",
                       "--set", "model.n_latents=4")
    assert_named(rc, err, "says step 999", f"saved at step {info['step']}", info["path"])
    assert "finished" not in out
    with pytest.raises(LamaeError, match="says step 999"):
        lamae.load(run)


def test_verify_catches_an_edited_meta_json(store, tmp_path, capsys):
    copy = tmp_path / "s"
    shutil.copytree(store.path, copy)
    good = json.loads((copy / "meta.json").read_text())
    # edited by hand: the normalisation claimed is not the one the rows were made with
    (copy / "meta.json").write_text(json.dumps({**good, "preprocessing": {**good["preprocessing"], "normalize": "none"}}))
    rc, _, err = cli(capsys, "verify", copy)
    assert_named(rc, err, "meta.json", "checksum")
    # edited and re-signed, but contradicting the array
    for edit, words in (({"preprocessing": {**good["preprocessing"], "window_s": 4.0}}, "samples per lead"),
                        ({"shape": [good["shape"][0], 12, 400]}, "does not match meta.json"),
                        ({"n_source_records": good["n_source_records"] + 5}, "does not match meta.json")):
        meta = {**good, **edit}
        meta["meta_sha256"] = meta_digest(meta)
        (copy / "meta.json").write_text(json.dumps(meta))
        rc, _, err = cli(capsys, "verify", copy)
        assert_named(rc, err, words)
    (copy / "meta.json").write_text(json.dumps(good))
    rc, out, err = cli(capsys, "verify", copy)
    assert rc == 0 and "meta.json, index and every row match" in out, err


def test_api_leads_given_in_no_order_are_refused(tiny_run):
    model = lamae.load(tiny_run)
    x = ecg(3, leads=2)
    for leads in ({"I", "II"}, frozenset({"I", "II"})):
        with pytest.raises(LamaeError, match="no order"):
            model.embed(x, 100, leads)
    assert model.embed(x, 100, ["I", "II"]).shape == (model.dim,)


# =========================================================================== 4. tracebacks and hangs
def test_a_100000_character_label_cell_costs_one_row(tmp_path, capsys):
    data = tree(tmp_path / "data")
    lab = pd.read_csv(data / "records_w_diag_icd10.csv", dtype=str, keep_default_na=False)
    lab.loc[0, "all_diag_all"] = "[" * 100_000
    lab.to_csv(data / "records_w_diag_icd10.csv", index=False)
    rc, _, err = cli(capsys, "prepare", data, "--out", tmp_path / "st", "--window", "2")
    assert rc == 0, err
    st = EcgStore(tmp_path / "st")
    assert len(st) == 8 and not st.index.set_index("record_id")["has_labels"][str(lab["study_id"].iat[0])]
    problem = _report(tmp_path / "st")["table_problems"][0]
    assert "100,000 characters" in problem["problem"] and len(problem["cell"]) <= 80
    from lamae.finetune import read_label_csv

    (tmp_path / "labels.csv").write_text(f"record_id,labels\na,{'[' * 100_000}\nb,['AF']\n")
    t = read_label_csv(tmp_path / "labels.csv")
    assert list(t["record_id"]) == ["b"] and "characters" in t.attrs["bad_cells"][0]["problem"]


def test_a_damaged_trainer_state_is_named_on_resume(store, tiny_run, tmp_path, capsys):
    import torch

    marker = tmp_path / "pwned"

    class Payload:  # loading it would create a folder: a side effect no output capture can miss
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    trainer = run / json.loads((run / "latest.json").read_text())["path"] / "trainer.pt"
    good = trainer.read_bytes()
    damage = {
        "truncated": lambda: trainer.write_bytes(good[: len(good) // 2]),
        "plain text": lambda: trainer.write_text("not a checkpoint"),
        "code": lambda: torch.save({"optimizer": Payload()}, trainer),
        "no optimizer": lambda: torch.save({"step": 20}, trainer),
        "a foreign optimizer": lambda: torch.save({"optimizer": {"state": {}, "param_groups": [{"params": [0]}]}},
                                                  trainer),
    }
    for name, write in damage.items():
        write()
        rc, out, err = cli(capsys, "pretrain", "--store", store.path, "--out", run, "--steps", "21", "--resume",
                           "--set", "model.n_latents=4", "--batch-size", "16")
        assert_named(rc, err, "trainer.pt")
        assert not marker.exists(), name


def test_api_outputs_and_checkpoints_that_are_not_what_they_should_be(tiny_run, tmp_path):
    model = lamae.load(tiny_run)
    (tmp_path / "file").write_text("x")
    for out, words in ((tmp_path / "file", "is a file"), ("/proc/lamae-test", "pseudo file system")):
        with pytest.raises(LamaeError, match=words):
            model.explain(ecg(3), 100, TWELVE, out)
    with pytest.raises(LamaeError, match="path of a checkpoint"):
        lamae.load(None)
    ck = tmp_path / "ck"
    shutil.copytree(tiny_run / json.loads((tiny_run / "latest.json").read_text())["path"], ck)
    (ck / "model.safetensors").unlink()
    (ck / "model.safetensors").mkdir()
    with pytest.raises(LamaeError, match="model.safetensors: is not a file"):
        lamae.load(ck)
    hub = pytest.importorskip("lamae.hub")
    pytest.importorskip("huggingface_hub")
    with pytest.raises(LamaeError, match="is a file"):
        hub.LamaeHub(model).save_pretrained(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_a_header_that_is_a_named_pipe_does_not_hang_prepare(tmp_path, capsys):
    data = tmp_path / "wfdb"
    data.mkdir()
    write_wfdb("good", data, ecg(10), TWELVE, 100)
    os.mkfifo(data / "pipe.hea")
    for fmt in ("wfdb", "challenge"):
        with deadline(120):
            rc, _, err = cli(capsys, "prepare", data, "--format", fmt, "--out", tmp_path / f"st-{fmt}", "--window", "4")
        assert rc == 0, err
        assert "not a regular file" in _skipped(tmp_path / f"st-{fmt}")["pipe"]


# =========================================================================== 5. messages
def test_write_errors_name_the_real_cause(store, tmp_path, capsys, monkeypatch):
    rc, _, err = cli(capsys, "probe", "--checkpoint", "x", "--store", store.path, "--out", "/proc/lamae-out")
    assert_named(rc, err, "/proc/lamae-out", "pseudo file system")
    assert "disk is full" not in err
    # the disk fills while a checkpoint is written: the partial files hold the last megabytes, so
    # the free space must be read before they are removed
    import lamae.checkpoint as ck
    import lamae.files as files

    real_save = ck.torch.save

    def save_until_full(obj, path, *a, **k):
        real_save(obj, path, *a, **k)
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4480 vs 4374")

    def usage(p):
        partial = list(Path(tmp_path / "run" / "checkpoints").glob("*.tmp"))
        return shutil._ntuple_diskusage(10 ** 9, 10 ** 9 - (0 if partial else 10 ** 8), 0 if partial else 10 ** 8)

    monkeypatch.setattr(ck.torch, "save", save_until_full)
    monkeypatch.setattr(files.shutil, "disk_usage", usage)
    rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", tmp_path / "run", "--steps", "2",
                     "--batch-size", "8", "--set", "warmup_steps=1", "--set", "model.n_latents=2")
    assert_named(rc, err, "step-0000002", "the disk is full")
    assert "unexpected pos" not in err


# =========================================================================== acceptance: embed resumes
def test_embed_killed_after_its_first_saved_chunk_resumes_to_the_same_table(synth_dir, tiny_run, tmp_path,
                                                                             monkeypatch):
    import lamae.embed as emb

    whole = emb.embed_dataset(tiny_run, synth_dir, tmp_path / "whole.parquet", fmt="mimic", chunk_size=32,
                              progress=False)
    real = emb._rows_from_source
    calls = []

    def dies_on_the_second_chunk(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between chunks leaves it: the first chunk is on disk
        return real(*a, **k)

    monkeypatch.setattr(emb, "_rows_from_source", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        emb.embed_dataset(tiny_run, synth_dir, tmp_path / "resumed.parquet", fmt="mimic", chunk_size=32,
                          progress=False)
    assert (tmp_path / "resumed.parquet.parts" / "part-000000.parquet").exists()
    calls.clear()
    monkeypatch.setattr(emb, "_rows_from_source", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = emb.embed_dataset(tiny_run, synth_dir, tmp_path / "resumed.parquet", fmt="mimic", chunk_size=32,
                                progress=False)
    assert len(calls) == 2  # chunks 2 and 3 of 90 records: the first was not redone
    assert resumed["n_records"] == whole["n_records"]
    a, b = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "resumed.parquet")
    pd.testing.assert_frame_equal(a.drop(columns="embedding"), b.drop(columns="embedding"))
    np.testing.assert_array_equal(np.stack(a["embedding"]), np.stack(b["embedding"]))


def test_a_labels_csv_that_lists_a_record_twice_costs_only_that_record(tmp_path):
    from lamae.finetune import read_label_csv

    (tmp_path / "labels.csv").write_text("record_id,labels\na,['AF']\nb,['LBBB']\na,['AF']\nc,['AF']\nc,[]\nd,[]\n")
    t = read_label_csv(tmp_path / "labels.csv")
    assert list(t["record_id"]) == ["a", "b", "d"] and list(t["labels"]) == [["AF"], ["LBBB"], []]
    problems = [(b["row"], b["action"]) for b in t.attrs["bad_cells"]]
    assert problems == [(4, "row ignored"), (6, "record left out")]  # c's rows disagree: c is left out
