"""The hostile corpus, round 4 (issue 38): a command writes only into a new or empty folder or
into its own earlier output (recognised by the marker lamae writes, never by file names alone);
--overwrite removes only what the same kind of command wrote; a result is reused only while its
inputs' content is the same. Each case is built here, on small synthetic data."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lamae
from lamae.errors import LamaeError
from lamae.files import MARKER

from .test_hostile import assert_named, cli
from .test_hostile_round3 import snapshot, tree


def users_folder(base: Path, files: dict) -> Path:
    """A folder of the user's own files (names lamae also writes), with their content."""
    base.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    return base


def untouched(folder: Path, before: dict) -> None:
    assert snapshot(folder) == before, "the user's files were changed"
    assert not (folder / MARKER).exists()


# =========================================================================== 1. data loss
@pytest.mark.parametrize("files", [
    {"loss.csv": "step,loss\n1,0.5\n2,0.4\n", "metrics.csv": "step,name,value\n1,acc,0.9\n",
     "pretrain_config.json": '{"my": "experiment"}'},
    {"metrics.csv": "step,name,value\n1,acc,0.9\n"},
    {"checkpoints/step-0000001/notes.txt": "mine", "checkpoints/step-0000003/notes.txt": "mine",
     "checkpoints/step-0000004/notes.txt": "mine"},
])
def test_pretrain_never_writes_into_a_folder_of_the_users_files(store, tmp_path, capsys, files):
    mine = users_folder(tmp_path / "U", files)
    before = snapshot(mine)
    rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", mine, "--steps", "5", "--size", "tiny",
                     "--batch-size", "8")
    assert_named(rc, err, str(mine), sorted(files)[0].split("/")[0])
    untouched(mine, before)


def test_a_run_whose_latest_json_is_gone_keeps_its_checkpoints(tiny_run, store, tmp_path, capsys):
    """Another run's checkpoints with no latest.json: nothing is pruned, nothing is started."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "latest.json").unlink()
    before = snapshot(run)
    rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", run, "--steps", "5", "--size", "tiny",
                     "--batch-size", "8")
    assert_named(rc, err, "checkpoints/step-0000020", "no latest.json")
    assert snapshot(run) == before


def test_finetune_never_writes_over_the_users_model_or_report(tiny_run, synth_dir, af_labels, tmp_path, capsys):
    for mode, files in (("finetune", {"model/weights.bin": "mine", "model.tmp/x": "mine"}),
                        ("probe", {"report.md": "# mine", "probe.npz": "mine", "roc.png": "mine",
                                   "metrics.csv": "step,name,value\n"})):
        mine = users_folder(tmp_path / mode, files)
        before = snapshot(mine)
        rc, _, err = cli(capsys, "finetune", synth_dir, "--labels", af_labels, "--checkpoint", tiny_run,
                         "--out", mine, "--mode", mode, "--steps", "2", "--min-count", "3")
        assert_named(rc, err, str(mine))
        untouched(mine, before)


@pytest.mark.parametrize("case", ["run", "logs", "checkpoints"])
def test_prepare_overwrite_removes_only_a_store(tiny_run, tmp_path, capsys, case):
    data = tree(tmp_path / "data")
    if case == "run":  # a pretraining run lamae made
        target = tmp_path / "run"
        shutil.copytree(tiny_run, target)
    elif case == "logs":
        target = users_folder(tmp_path / "logs", {"wandb/run-1/files.txt": "x", "tensorboard/events": "x"})
    else:
        target = users_folder(tmp_path / "exp", {"checkpoints/best.pt": "w", "checkpoints/last.pt": "w",
                                                 "metrics.csv": "a,b\n"})
    before = snapshot(target)
    rc, _, err = cli(capsys, "prepare", data, "--out", target, "--overwrite", "--window", "2")
    assert_named(rc, err, str(target))
    assert snapshot(target) == before


def test_prepare_overwrite_still_replaces_its_own_store(tmp_path, capsys):
    data = tree(tmp_path / "data")
    assert cli(capsys, "prepare", data, "--out", tmp_path / "s", "--window", "2")[0] == 0
    rc, out, err = cli(capsys, "prepare", data, "--out", tmp_path / "s", "--window", "4", "--overwrite")
    assert rc == 0, err
    assert lamae.data.store.EcgStore(tmp_path / "s").preprocessing.window_s == 4


def test_embed_never_replaces_the_users_files_beside_its_output(synth_dir, tiny_run, tmp_path, capsys):
    out = tmp_path / "O"
    users_folder(out, {"emb.parquet.parts/mine.txt": "mine", "emb.records.csv": "a\n1\n", "emb.skipped.csv": "b\n"})
    before = snapshot(out)
    for name, word in (("emb.parquet", "emb.parquet.parts"), ("emb.npy", "emb.records.csv")):
        rc, _, err = cli(capsys, "embed", synth_dir, "--checkpoint", tiny_run, "--out", out / name, "--limit", "4")
        assert_named(rc, err, word)
        assert snapshot(out) == before
    # a run that fails before any work (no such checkpoint) leaves nothing beside the output
    rc, _, err = cli(capsys, "embed", synth_dir, "--checkpoint", tmp_path / "nope", "--out", tmp_path / "F" / "emb.npy")
    assert rc == 2 and not any((tmp_path / "F").iterdir())
    # its own earlier output is replaced on a second run, with nothing else asked
    mine = tmp_path / "E" / "emb.npy"
    for _ in range(2):
        rc, _, err = cli(capsys, "embed", synth_dir, "--checkpoint", tiny_run, "--out", mine, "--limit", "4")
        assert rc == 0, err
    assert np.load(mine).shape[0] == 4


def test_synth_writes_only_a_new_folder_or_its_own(store, tiny_run, tmp_path, capsys):
    mimic = users_folder(tmp_path / "mimic", {"record_list.csv": "subject_id,study_id,path\n1,2,files/x\n",
                                              "records_w_diag_icd10.csv": "study_id,all_diag_all\n2,[]\n"})
    before = snapshot(mimic)
    rc, _, err = cli(capsys, "synth", mimic, "--records", "3")
    assert_named(rc, err, "record_list.csv")
    untouched(mimic, before)
    for target in (store.path, tiny_run, tiny_run / "checkpoints" / "step-0000020"):
        rc, _, err = cli(capsys, "synth", target, "--records", "3")
        assert_named(rc, err, str(target))
    assert cli(capsys, "synth", tmp_path / "new", "--records", "3")[0] == 0
    assert cli(capsys, "synth", tmp_path / "new", "--records", "3")[0] == 0  # its own: resumed


def test_reconstruct_explain_and_exports_never_replace_the_users_files(tiny_run, synth_dir, tmp_path, capsys):
    record = sorted(synth_dir.rglob("*.hea"))[0]
    model = lamae.load(tiny_run)
    for command, files in (("reconstruct", {"reconstruction.png": "mine", "errors.json": "{}"}),
                           ("explain", {"lead_weights.png": "mine", "ecg.png": "mine"})):
        mine = users_folder(tmp_path / command, files)
        before = snapshot(mine)
        extra = ["--hide", "V1"] if command == "reconstruct" else []
        rc, _, err = cli(capsys, command, record, "--checkpoint", tiny_run, "--out", mine, *extra)
        assert_named(rc, err, str(mine))
        untouched(mine, before)
    rec = lamae.read(record)
    r = model.reconstruct(rec.signal, rec.fs, rec.leads, hide=["V1"])
    mine = users_folder(tmp_path / "api", {"errors.json": "{}"})
    with pytest.raises(LamaeError, match="errors.json"):
        r.save(mine)
    assert (mine / "errors.json").read_text() == "{}"
    assert set(r.save(tmp_path / "fresh")) == {"plot", "errors"} and r.save(tmp_path / "fresh")  # its own, twice
    from lamae.hub import export_checkpoint

    mine = users_folder(tmp_path / "hub", {"README.md": "# my project", "config.json": '{"mine": 1}'})
    before = snapshot(mine)
    with pytest.raises(LamaeError, match="README.md|config.json"):
        export_checkpoint(model, mine)
    untouched(mine, before)
    assert (export_checkpoint(model, tmp_path / "exp") / "model.safetensors").exists()
    export_checkpoint(model, tmp_path / "exp")  # its own export, replaced
    try:
        from lamae.hub import LamaeHub

        hub = LamaeHub(model)
    except (ImportError, LamaeError):
        return
    with pytest.raises(LamaeError, match="README.md|config.json"):
        hub.save_pretrained(mine)
    untouched(mine, before)


def test_a_command_refuses_another_commands_folder(store, tiny_run, tmp_path, capsys):
    rc, _, err = cli(capsys, "probe", "--checkpoint", tiny_run, "--store", store.path, "--out", tiny_run)
    assert_named(rc, err, "pretraining run")


def test_probe_reruns_into_its_own_folder(store, tiny_run, tmp_path, capsys):
    for _ in range(2):
        rc, _, err = cli(capsys, "probe", "--checkpoint", tiny_run, "--store", store.path, "--out", tmp_path / "p",
                         "--no-random-baseline", "--min-count", "1")
        assert rc == 0, err


# =========================================================================== 2. reuse keyed on content
def test_prepare_into_the_same_folder_from_other_data_or_limit_is_refused(tmp_path, capsys):
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    pd.read_csv(b / "record_list.csv").iloc[:5].to_csv(b / "record_list.csv", index=False)
    s = tmp_path / "s"
    assert cli(capsys, "prepare", a, "--out", s, "--window", "2")[0] == 0
    rc, _, err = cli(capsys, "prepare", b, "--out", s, "--window", "2")
    assert_named(rc, err, "other input", "number of records")
    s2 = tmp_path / "s2"
    assert cli(capsys, "prepare", a, "--out", s2, "--window", "2", "--limit", "3")[0] == 0
    rc, _, err = cli(capsys, "prepare", a, "--out", s2, "--window", "2", "--limit", "6")
    assert_named(rc, err, "number of records 3, now 6")
    # the same data again: the finished store is returned
    rc, out, _ = cli(capsys, "prepare", a, "--out", s2, "--window", "2", "--limit", "3")
    assert rc == 0 and "3 records stored" in out


def test_prepare_notices_edited_labels(tmp_path, capsys):
    a = tree(tmp_path / "a")
    s = tmp_path / "s"
    assert cli(capsys, "prepare", a, "--out", s, "--window", "2")[0] == 0
    labels = pd.read_csv(a / "records_w_diag_icd10.csv", dtype=str, keep_default_na=False)
    labels.loc[0, "all_diag_all"] = "['Z000']"
    labels.to_csv(a / "records_w_diag_icd10.csv", index=False)
    rc, _, err = cli(capsys, "prepare", a, "--out", s, "--window", "2")
    assert_named(rc, err, "other labels")


def test_finetune_with_other_labels_rebuilds_its_store(tiny_run, synth_dir, af_labels, tmp_path, capsys):
    out = tmp_path / "ft"
    args = ["finetune", synth_dir, "--checkpoint", tiny_run, "--out", out, "--min-count", "3"]
    assert cli(capsys, *args, "--labels", af_labels)[0] == 0
    table = pd.read_csv(af_labels)
    table["labels"] = [repr(["LVH"]) if "LVH" in x else repr(["AF"]) if i % 2 else "[]"
                       for i, x in enumerate(table["labels"])]
    other = tmp_path / "other.csv"
    table.to_csv(other, index=False)
    rc, _, err = cli(capsys, *args, "--labels", other)
    assert rc == 0, err
    report = json.loads((out / "report.json").read_text())
    store = lamae.data.store.EcgStore(out / "store")
    positives = sum("AF" in c for c in store.codes(store.rows()))
    assert positives == sum("AF" in x for x in table["labels"])  # the new labels, not the old
    assert report["labels"] == str(other)


def test_pretrain_resume_with_fewer_steps_names_the_steps_trained(tiny_run, store, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    rc, out, err = cli(capsys, "pretrain", "--store", store.path, "--out", run, "--resume", "--steps", "2",
                       "--set", "model.n_latents=4", "--batch-size", "16", "--base-lr", "0.05",
                       "--set", "warmup_steps=3", "--checkpoint-every", "1000")
    assert rc == 0, err
    assert "20 steps trained" in out and "--steps 2 asks for fewer" in out


def test_a_finished_run_is_not_reused_on_a_rebuilt_store(tiny_run, store, tmp_path):
    """ensure_pretrained (compare, benchmark, demo) checks the data a run was trained on by content."""
    from lamae.train.pretrain import PretrainConfig, ensure_pretrained

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    other = tmp_path / "store"
    shutil.copytree(store.path, other)
    cfg = PretrainConfig(store=str(store.path), out=str(run), steps=20, batch_size=16, base_lr=0.05,
                         warmup_steps=3, checkpoint_every=1000, model={"n_latents": 4})
    assert ensure_pretrained(cfg, progress=False) is False  # the same data, moved or not: reused
    meta = json.loads((other / "meta.json").read_text())
    meta["split_seed"] = 7  # other content, same path
    from lamae.data.store import meta_digest

    meta["meta_sha256"] = meta_digest(meta)
    (other / "meta.json").write_text(json.dumps(meta))
    cfg.store = str(other)
    with pytest.raises(LamaeError, match="other data"):
        ensure_pretrained(cfg, progress=False)


# =========================================================================== 3. wrong data with no word
def test_a_file_naming_one_lead_twice_is_skipped_and_named(tmp_path):
    """A MUSE export with V1 labelled I, and a 14-channel EDF whose extra channels repeat lead I:
    refused per file (as WFDB refuses repeated names), never stored with a channel dropped unseen."""
    pytest.importorskip("ecgdatakit", reason="ecgdatakit is not installed (lamae[formats])")
    from .data.test_ecgfiles import EIGHT, muse_xml, signal

    leads = ["I", "II", "I", *EIGHT[3:]]  # V1 labelled I
    (tmp_path / "muse").mkdir()
    (tmp_path / "muse" / "a.xml").write_text(muse_xml(signal(EIGHT), leads))
    with pytest.raises(LamaeError, match="two channels are lead I"):
        lamae.read(tmp_path / "muse" / "a.xml")
    from .data.test_hospital_formats import _write_edf

    (tmp_path / "edf").mkdir()
    _write_edf(tmp_path / "edf" / "b.edf", extra=("ECG I", "Lead I"))
    with pytest.raises(LamaeError, match="two channels are lead I .*'ECG I'"):
        lamae.read(tmp_path / "edf" / "b.edf")
    from .data.test_ecgfiles import mortara_xml

    (tmp_path / "mortara").mkdir()  # three channels named I
    (tmp_path / "mortara" / "c.xml").write_text(mortara_xml(signal(["I", "I", "I", "V2"]), ["I", "I", "I", "V2"]))
    with pytest.raises(LamaeError, match="two channels are lead I"):
        lamae.read(tmp_path / "mortara" / "c.xml")
    pytest.importorskip("pydicom", reason="pydicom is not installed (lamae[formats])")
    import pydicom

    from .data.test_hospital_formats import _dicom_folder

    (tmp_path / "dcm").mkdir()
    folder = _dicom_folder(tmp_path / "dcm")
    ds = pydicom.dcmread(folder / "ecg.dcm")
    first, second = ds.WaveformSequence[0].ChannelDefinitionSequence[:2]
    second.ChannelSourceSequence[0].CodeValue = first.ChannelSourceSequence[0].CodeValue  # lead II coded as I
    second.ChannelSourceSequence[0].CodeMeaning = first.ChannelSourceSequence[0].CodeMeaning
    ds.save_as(folder / "ecg.dcm")
    with pytest.raises(LamaeError, match="two channels are lead I"):
        lamae.read(folder / "ecg.dcm")


def test_code15_two_exams_naming_one_file_store_the_ecg_once(tmp_path, capsys):
    from lamae.data.store import EcgStore

    from .test_hostile_round3 import _code15

    rows = [{"exam_id": e, "patient_id": e, "AF": af, "RBBB": "False", "1dAVb": "False", "LBBB": "False",
             "SB": "False", "ST": "False", "save_file": f} for e, af, f in
            (("1", "True", "code_15_1.mat"), ("2", "False", "code_15_1.mat"), ("3", "True", "code_15_3.mat"),
             ("4", "True", "code_15_3.mat"), ("5", "False", "code_15_5.mat"))]
    data = _code15(tmp_path / "c15", rows, {"1": 3600, "3": 3600, "5": 3600})
    rc, _, err = cli(capsys, "prepare", data, "--format", "code15", "--out", tmp_path / "st", "--window", "8")
    assert rc == 0, err
    st = EcgStore(tmp_path / "st")
    assert sorted(st.index["record_id"]) == ["1", "3", "5"]
    labelled = st.index.set_index("record_id")["has_labels"]
    assert not labelled["1"] and labelled["3"]  # two labels for one ECG: unlabelled; the same label: kept
    report = json.loads((tmp_path / "st" / "report.json").read_text())
    problems = [t["problem"] for t in report["table_problems"]]
    assert "exam 2 names the file of exam 1 with other labels" in problems
    assert "exam 4 names the file of exam 3" in problems


def test_settings_that_ran_silently_wrong_are_refused(tiny_run, synth_dir, af_labels, store, tmp_path, capsys):
    import torch

    if not torch.cuda.is_available():
        rc, _, err = cli(capsys, "finetune", synth_dir, "--labels", af_labels, "--checkpoint", tiny_run,
                         "--out", tmp_path / "ft", "--device", "cuda")
        assert_named(rc, err, "no CUDA GPU")
        assert not (tmp_path / "ft" / "store").exists()
    rc, _, err = cli(capsys, "leads", "--store", store.path, "--checkpoint", f"={tiny_run}", "--out", tmp_path / "l")
    assert_named(rc, err, "NAME=PATH")


def test_api_masked_arrays_generators_and_boolean_rates(tiny_run):
    model = lamae.load(tiny_run)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 400)) * 0.2
    leads = ["I", "II", "V1"]
    masked = np.ma.masked_array(x.copy(), mask=np.zeros_like(x, bool))
    masked.mask[2] = True  # V1 entirely masked: absent, as NaN would make it
    masked.data[2] = 1e6   # whatever lies beneath the mask is never read
    nan = x.copy()
    nan[2] = np.nan
    np.testing.assert_allclose(model.embed(masked, 100, leads), model.embed(nan, 100, leads), atol=1e-6)
    with pytest.raises(LamaeError):
        model.embed(np.ma.masked_all((3, 400)), 100, leads)
    weights = model.lead_weights(x, 100, (lead for lead in leads))
    assert list(weights) == leads and abs(sum(weights.values()) - 1) < 1e-4
    with pytest.raises(LamaeError, match="sampling rate must be a number"):
        model.embed(x, True, leads)


# =========================================================================== 4. tracebacks: the benchmark scripts
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script,argv,words", [
    ("lead_scaling", ["--size", "huge"], "invalid choice"),
    ("lead_scaling", ["--leads", "0", "13"], "at least 1"),
    ("lead_scaling", ["--leads", "1", "13"], "1 to 12 leads"),
    ("lead_scaling", ["--fs", "0"], "positive"),
    ("lead_scaling", ["--batch-size", "0"], "at least 1"),
    ("throughput", ["--sizes", "huge"], "invalid choice"),
    ("throughput", ["--rates", "0"], "positive"),
    ("throughput", ["--steps", "0"], "at least 1"),
    ("store_read", ["--records", "0"], "at least 1"),
    ("store_read", ["--batches", "-1"], "at least 1"),
    ("prepare_scale", ["--sizes", "0"], "at least 1"),
    ("lead_field_ceiling", [], "--store"),
    ("lead_field_ceiling", ["--store", "x", "--hide", "V7"], "unknown lead name 'V7'"),
    ("design", ["--store", "s", "--out", "o", "--variant", "LAMAE", "--steps", "0"], "at least 1"),
    ("pass_time", ["--ecgs", "-5"], "at least 1"),
    ("kernels", ["--bogus"], "unrecognized arguments"),
    ("against_commit", ["no-such-commit-xyz"], "no-such-commit-xyz"),
    ("lead_field_ceiling", ["--store", "/nonexistent/store"], "/nonexistent/store"),
    ("contrastive_term", ["/nonexistent/run", "--store", "s"], "/nonexistent/run"),
    ("contrastive_term", ["r", "--store", "s", "--batch-size", "0"], "at least 1"),
])
def test_benchmark_scripts_name_bad_flags(script, argv, words, monkeypatch, capsys):
    """Each user-facing benchmark script ends a bad flag or input in one named line, exit 2."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as stop:
        module.run(module.main)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and words in err, err


def test_the_contrastive_term_script_names_a_run_without_the_term(tiny_run, store, monkeypatch, capsys):
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("contrastive_term")
    monkeypatch.setattr(sys, "argv", ["contrastive_term.py", str(tiny_run), "--store", str(store.path)])
    with pytest.raises(SystemExit) as stop:
        module.run(module.main)
    assert stop.value.code == 2 and "has no contrastive term" in capsys.readouterr().err


# =========================================================================== 4. tracebacks: commands
@pytest.mark.parametrize("text,words", [
    ("pretrain: {foo: 3}\n", "unknown setting(s) foo"),
    ("size: huge\n", "size must be one of tiny, small, base"),
    ("pretrain: {steps: 0}\n", "steps must be an integer >= 1"),
    ("model: {bogus: 1}\n", "model: unknown setting(s) bogus"),
    ("min_count: 0\n", "min_count must be a positive integer"),
])
def test_a_compare_config_is_checked_whole_before_any_work(store, tmp_path, capsys, text, words):
    config = tmp_path / "c.yaml"
    config.write_text(f"store: {store.path}\n" + text)
    rc, _, err = cli(capsys, "compare", config, "--out", tmp_path / "cmp")
    assert_named(rc, err, words)
    assert not (tmp_path / "cmp" / "runs").exists()


def test_a_diverging_run_ends_in_the_documented_message(store, tmp_path, capsys):
    rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", tmp_path / "r", "--size", "tiny",
                     "--steps", "30", "--batch-size", "8", "--base-lr", "1e6", "--set", "model.n_latents=4")
    assert_named(rc, err, "loss became nan at step", "No checkpoint had been saved yet")


# =========================================================================== 5. the right cause, and files that exist
def test_24_and_32_bit_wfdb_records_are_read(tmp_path):
    wfdb = pytest.importorskip("wfdb")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 3)) * 2
    for fmt in ("24", "32"):
        wfdb.wrsamp(f"r{fmt}", fs=500, units=["mV"] * 3, sig_name=["I", "II", "V1"], p_signal=x, fmt=[fmt] * 3,
                    adc_gain=[1000.0] * 3, baseline=[0] * 3, write_dir=str(tmp_path))
        rec = lamae.read(tmp_path / f"r{fmt}.hea")
        assert rec.leads == ("I", "II", "V1") and np.abs(rec.signal - x.T).max() <= 5e-4


def test_everything_skipped_names_a_file_that_exists(tiny_run, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.hea").write_text("a 12 100 1000\n")  # a header with no signal lines
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "st", "--window", "2")
    assert_named(rc, err, "every record was skipped", "report.json")
    assert (tmp_path / "st" / "report.json").is_file()
    rc, _, err = cli(capsys, "embed", data, "--format", "wfdb", "--checkpoint", tiny_run, "--out", tmp_path / "e.parquet")
    assert_named(rc, err, "every record was skipped", "e.skipped.csv")
    assert len(pd.read_csv(tmp_path / "e.skipped.csv")) == 1


@pytest.mark.parametrize("case,words", [
    ("swapped", "look swapped"), ("mmhg", "'MMHG', not a voltage unit"),
    ("nan", "scale is nan"), ("huge", "more than 100 mV a step"),
])
def test_damaged_muse_exports_are_named_by_their_real_cause(tmp_path, case, words):
    pytest.importorskip("ecgdatakit", reason="ecgdatakit is not installed (lamae[formats])")
    import warnings

    from .data.test_ecgfiles import EIGHT, muse_xml, signal

    x = signal(EIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writer's own cast of a NaN scale
        text = {"swapped": lambda: muse_xml(x, EIGHT).replace("Median<", "TMP<").replace("Rhythm<", "Median<")
                .replace("TMP<", "Rhythm<"),
                "mmhg": lambda: muse_xml(x, EIGHT).replace("MICROVOLTS", "MMHG"),
                "nan": lambda: muse_xml(x, EIGHT, uv_per_bit=float("nan")),
                "huge": lambda: muse_xml(x, EIGHT, uv_per_bit=1e308)}[case]()
    (tmp_path / "a.xml").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no raw RuntimeWarning on the way
        with pytest.raises(LamaeError, match=words):
            lamae.read(tmp_path / "a.xml")


def test_a_500_khz_record_is_named_by_its_rate(tmp_path, capsys):
    from lamae.data.wfdb_io import write_wfdb

    from .test_hostile_round3 import TWELVE, ecg

    data = tmp_path / "w"
    data.mkdir()
    write_wfdb("fast", data, ecg(0.01, fs=500_000), TWELVE, 500_000)
    write_wfdb("ok", data, ecg(10), TWELVE, 100)
    rc, _, err = cli(capsys, "prepare", data, "--format", "wfdb", "--out", tmp_path / "st", "--window", "2")
    assert rc == 0, err
    report = json.loads((tmp_path / "st" / "report.json").read_text())
    assert "500000 Hz" in report["skipped"][0]["problem"] and "s of signal" not in report["skipped"][0]["problem"]


def test_settings_are_read_as_numbers_and_named_by_the_right_cause(store, synth_dir, tiny_run, tmp_path, capsys):
    from lamae.config import build_config
    from lamae.train.pretrain import PretrainConfig

    cfg = build_config(PretrainConfig, flags={"store": "s"}, overrides=["steps=1e3", "model.decode_ratio=1e-9"])
    assert cfg.steps == 1000 and isinstance(cfg.steps, int) and cfg.model["decode_ratio"] == 1e-9
    pre = ("pretrain", "--store", store.path)
    (tmp_path / "folder").mkdir()
    cases = [
        ((*pre, "--out", tmp_path / "r1", "--lead-dropout", "1"), "below 1"),
        ((*pre, "--out", tmp_path / "r2", "--config", tmp_path / "folder"), "is a folder"),
        (("prepare", tmp_path / "folder" / ".." / "folder", "--out", tmp_path / "s1", "--fs", "nan"), "fs must be a finite"),
        (("embed", synth_dir / "record_list.csv", "--checkpoint", tiny_run, "--out", tmp_path / "e.npy",
          "--format", "mimic"), "is a file, not a dataset folder"),
        (("prepare", synth_dir / "record_list.csv", "--out", tmp_path / "s2"), "is a file, not a dataset folder"),
    ]
    for argv, words in cases:
        rc, _, err = cli(capsys, *argv)
        assert_named(rc, err, words)
    model = lamae.load(tiny_run)
    x = np.random.default_rng(0).standard_normal((3, 400)) * 0.2
    r = model.reconstruct(x, 100, ["I", "II", "V1"], hide="II")
    assert r.hidden == ["II"]


def test_folders_an_older_lamae_wrote_are_recognised_by_their_content(store, tiny_run, synth_dir, tmp_path, capsys):
    """A store and a run made before the marker existed are still resumed and reused."""
    from lamae.data.sources import MimicEcgReader
    from lamae.data.store import prepare

    from .conftest import TEST_PREP

    old_store, old_run = tmp_path / "store", tmp_path / "run"
    shutil.copytree(store.path, old_store)
    shutil.copytree(tiny_run, old_run)
    for folder in (old_store, old_run):
        (folder / MARKER).unlink()
    assert prepare(MimicEcgReader(synth_dir), old_store, TEST_PREP, chunk_size=32, progress=False).path == old_store
    rc, out, err = cli(capsys, "pretrain", "--store", old_store, "--out", old_run, "--resume", "--steps", "20",
                       "--set", "model.n_latents=4", "--batch-size", "16", "--base-lr", "0.05",
                       "--set", "warmup_steps=3", "--checkpoint-every", "1000")
    assert rc == 0 and "already finished" in out, err


def test_embed_recognises_an_older_lamaes_unfinished_parts_by_their_content(synth_dir, tiny_run, tmp_path, capsys):
    """A .parts folder an older lamae left (no manifest) is its own when its progress file is one;
    a folder of that name holding anything else is the user's."""
    out = tmp_path / "emb.parquet"
    parts = tmp_path / "emb.parquet.parts"
    parts.mkdir()
    (parts / "progress.json").write_text(json.dumps({"fingerprint": {"pooling": "latent", "n": -1}, "done": 0}))
    rc, _, err = cli(capsys, "embed", synth_dir, "--checkpoint", tiny_run, "--out", out, "--limit", "4")
    assert_named(rc, err, "an unfinished run with other settings")  # taken as embed's own, then refused as stale
    mine = tmp_path / "mine" / "emb.parquet.parts"
    mine.mkdir(parents=True)
    (mine / "progress.json").write_text(json.dumps({"my": "notes"}))
    rc, _, err = cli(capsys, "embed", synth_dir, "--checkpoint", tiny_run, "--out", mine.parent / "emb.parquet",
                     "--limit", "4")
    assert_named(rc, err, "emb.parquet.parts", "not written by an earlier `lamae embed`")
    assert (mine / "progress.json").read_text() == json.dumps({"my": "notes"})
