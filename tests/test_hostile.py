"""A hostile user's corpus (round 2), built here: every bad input ends in a named error (from the
command line: one line on stderr, exit 2; from the API: a LamaeError naming the input and the
problem) or in documented acceptance; never a raw traceback, never a silently wrong output, and
one bad row of a dataset never stops the run."""

import errno
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import lamae
from lamae.cli import main
from lamae.data.preprocess import Preprocessing, preprocess, resample, resample_ratio
from lamae.data.store import EcgStore, meta_digest
from lamae.errors import LamaeError, RecordError
from lamae.files import file_sha256


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_named(rc: int, err: str, *words: str) -> None:
    """A named failure: non-zero exit, one line, no traceback, not an internal error, the words."""
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and "internal error" not in err, err
    # one line from lamae (progress bars may have drawn on stderr before it)
    assert len([line for line in err.replace("\r", "\n").splitlines() if line.startswith("lamae ")]) == 1, err
    for w in words:
        assert w in err, (w, err)


# --------------------------------------------------------------------------- prepare, end to end
def _break_mimic(data: Path) -> dict:
    """Break records, record-list rows and label cells of a synthetic MIMIC-IV-ECG tree."""
    rl = pd.read_csv(data / "record_list.csv", dtype=str)
    labels = pd.read_csv(data / "records_w_diag_icd10.csv", dtype=str, keep_default_na=False)
    study = rl["study_id"].tolist()
    broken = {}
    # two records whose files are damaged
    dat = data / (rl["path"][0] + ".dat")
    dat.write_bytes(dat.read_bytes()[:500])
    broken[study[0]] = "truncated"
    hea = data / (rl["path"][1] + ".hea")
    lines = hea.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split()[2], "lots/mV", 1)
    hea.write_text("\n".join(lines) + "\n")
    broken[study[1]] = "gain"
    # a record-list row whose study id is not a number: that record is skipped and named
    rl.loc[2, "study_id"] = "s-oops"
    rl.to_csv(data / "record_list.csv", index=False)
    # label cells that cannot be parsed: those ECGs are stored unlabelled and named
    pos = {s: i for i, s in enumerate(labels["study_id"])}
    bad_cells = {study[3]: "not a list", study[4]: "['I10'", study[5]: "[1, 2]"}
    for s, cell in bad_cells.items():
        labels.loc[pos[s], "all_diag_all"] = cell
    labels.to_csv(data / "records_w_diag_icd10.csv", index=False)
    return {"broken": broken, "skipped_row": study[2], "bad_cells": bad_cells,
            "cell_rows": {s: pos[s] + 2 for s in bad_cells}}


def test_prepare_over_a_broken_mimic_tree_stores_every_good_record_and_names_every_broken_one(tmp_path, capsys):
    from lamae.data.synth import synthesize_mimic

    data = synthesize_mimic(tmp_path / "data", 16, seed=11, progress=False)
    what = _break_mimic(data)
    rc, out, err = cli(capsys, "prepare", data, "--out", tmp_path / "store", "--window", "2")
    assert rc == 0, err
    assert "rows of its tables not read" in out
    store = EcgStore(tmp_path / "store")
    stored = set(store.index["record_id"])
    gone = set(what["broken"]) | {what["skipped_row"]}
    all_ids = set(pd.read_csv(data / "records_w_diag_icd10.csv", dtype=str)["study_id"])
    assert stored == all_ids - gone  # every good record, and only those
    labelled = store.index.set_index("record_id")["has_labels"]
    for s in what["bad_cells"]:
        assert not labelled[s], s  # unlabelled: not an empty (all-negative) diagnosis list
    assert labelled[[s for s in stored if s not in what["bad_cells"]]].all()
    report = json.loads((tmp_path / "store" / "report.json").read_text())
    skipped = {r["record_id"]: r["problem"] for r in report["skipped"]}
    for s, word in what["broken"].items():
        assert word in skipped[s], skipped[s]
    tables = report["table_problems"]
    assert {(t["column"], t["cell"]) for t in tables} >= {("study_id", "s-oops")} | {
        ("all_diag_all", c) for c in what["bad_cells"].values()}
    rows = {t["cell"]: t["row"] for t in tables}
    for s, cell in what["bad_cells"].items():
        assert rows[cell] == what["cell_rows"][s]
    md = (tmp_path / "store" / "report.md").read_text()
    assert "not a list" in md and "record stored unlabelled" in md and "record skipped" in md


def test_a_bad_cell_in_a_finetune_labels_csv_skips_that_row(tmp_path):
    from lamae.finetune import finetune_markdown, read_label_csv

    (tmp_path / "lists.csv").write_text("record_id,labels\na,['AF']\nb,['AF'\nc,AF;LBBB\nd,[3.5]\n")
    t = read_label_csv(tmp_path / "lists.csv")
    assert list(t["record_id"]) == ["a", "c"] and list(t["labels"]) == [["AF"], ["AF", "LBBB"]]
    assert [(b["row"], b["column"], b["cell"]) for b in t.attrs["bad_cells"]] == [(3, "labels", "['AF'"),
                                                                                  (5, "labels", "[3.5]")]
    (tmp_path / "flags.csv").write_text("record_id,AF,LBBB\na,1,0\nb,yes,0\nc,0,1\n")
    t = read_label_csv(tmp_path / "flags.csv")
    assert list(t["record_id"]) == ["a", "c"] and list(t["labels"]) == [["AF"], ["LBBB"]]
    assert t.attrs["bad_cells"][0]["row"] == 3 and t.attrs["bad_cells"][0]["column"] == "AF"
    (tmp_path / "none.csv").write_text("record_id,labels\na,[\n")
    with pytest.raises(LamaeError, match="no label row could be read.*row 2"):
        read_label_csv(tmp_path / "none.csv")
    md = finetune_markdown({"labels": "x", "mode": "probe", "checkpoint": "c", "data": "d", "macro_auroc": None,
                            "n_records": {"train": 1, "val": 1, "test": 1}, "unmatched_label_rows": 0,
                            "skipped_records": 0, "labels_per_record": [],
                            "skipped_label_rows": [{"row": 3, "column": "AF", "cell": "yes",
                                                    "problem": "expected 0 or 1, got 'yes'"}]})
    assert "| 3 | AF | `yes` | expected 0 or 1, got 'yes' |" in md


def test_a_bad_cell_in_the_mimic_benchmark_labels_leaves_that_ecg_out():
    from lamae.labels.mimic_icd import build_scenario

    df = pd.DataFrame({"study_id": [1, 2, 3, 4], "subject_id": [1, 2, 3, 4], "fold": ["0", "0", "x", "19"],
                       "all_diag_all": ["['I10']", "not a list", "['I10']", "['I10']"]})
    out = build_scenario(df, "mimic_all_all_all_all_1_3")
    assert list(out["train"]["study_id"]) == [1] and list(out["test"]["study_id"]) == [4]
    assert {(b["row"], b["column"]) for b in out["bad_cells"]} == {(3, "all_diag_all"), (4, "fold")}


# --------------------------------------------------------------------------- the Python API
LEADS = ["I", "II", "V1"]


@pytest.fixture(scope="module")
def model(tiny_run):
    return lamae.load(tiny_run)


def _ecg(n=400, fs=100.0, seed=0):
    t = np.arange(n) / fs
    rng = np.random.default_rng(seed)
    return np.stack([np.sin(2 * np.pi * (1 + k) * t) + 0.1 * rng.standard_normal(n) for k in range(3)])


API_CASES = {
    "empty batch": (lambda m: m.embed(np.zeros((0, 3, 400)), 100, LEADS), "empty batch"),
    "no leads": (lambda m: m.embed(np.zeros((0, 400)), 100, []), "no leads"),
    "batch_size 0": (lambda m: m.embed(_ecg(), 100, LEADS, batch_size=0), "batch_size"),
    "batch_size -4": (lambda m: m.embed(_ecg(), 100, LEADS, batch_size=-4), "batch_size"),
    "batch_size 2.5": (lambda m: m.embed(_ecg(), 100, LEADS, batch_size=2.5), "batch_size"),
    "rate 1e6": (lambda m: m.embed(_ecg(), 1e6, LEADS), "1e+06 Hz is above"),
    "rate 1.5e5": (lambda m: m.embed(_ecg(), 1.5e5, LEADS), "above"),
    "complex": (lambda m: m.embed(_ecg() + 1j, 100, LEADS), "complex"),
    "object with None": (lambda m: m.embed(np.array([[None] * 400] * 3, dtype=object), 100, LEADS), "objects"),
    "numeric strings": (lambda m: m.embed(_ecg().astype(str), 100, LEADS), "text"),
    "boolean": (lambda m: m.embed(_ecg() > 0, 100, LEADS), "boolean"),
    "ragged lists": (lambda m: m.embed([[0.0] * 400, [0.0] * 300, [0.0] * 400], 100, LEADS), "numeric array"),
    "overflow 1e300": (lambda m: m.embed(_ecg() * 1e300, 100, LEADS), "overflow"),
    "reconstruct 1e300": (lambda m: m.reconstruct(_ecg() * 1e300, 100, LEADS, hide=["V1"]), "overflow"),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_bad_api_input_gets_a_named_error(model, case):
    call, words = API_CASES[case]
    with pytest.raises(LamaeError) as err:
        call(model)
    assert words in str(err.value), str(err.value)


def test_accepted_api_inputs_give_the_same_embedding(model):
    """Documented acceptance: a tensor (even one that requires grad, on any device), integer
    arrays and nested lists are read as their values."""
    x = _ecg()
    ref = model.embed(x, 100, LEADS)
    assert np.allclose(model.embed(torch.tensor(x, requires_grad=True), 100, LEADS), ref, atol=1e-6)
    assert np.allclose(model.embed(x.tolist(), 100, LEADS), ref, atol=1e-6)
    xi = np.round(x * 1000).astype(np.int32)  # microvolts as integers: same shape of signal
    assert np.isfinite(model.embed(xi, 100, LEADS)).all()


def test_resampling_is_exact_at_any_rate():
    """The bug: 1.5e5 -> 100 Hz was resampled by 1/1000 (a rational approximation bounded to
    denominators of 1000), so a 10 s record came out 15 s long. Now the exact ratio, or one within
    1e-5, or a named error."""
    assert resample_ratio(1.5e5, 100) == Fraction(1, 1500)
    assert resample_ratio(2e5, 100) == Fraction(1, 2000)
    for fs in (44_100.0, 17_000.0, 257.123, 1234.5, 360.0, 1000.0 / 3):
        n = int(round(8 * fs))
        t = np.arange(n) / fs
        y = resample(np.sin(2 * np.pi * 1.3 * t)[None], fs, 100.0)[0]
        assert abs(len(y) - 800) <= 1, (fs, len(y))
        ref = np.sin(2 * np.pi * 1.3 * np.arange(len(y)) / 100.0)
        assert np.abs(y - ref)[50:-50].max() < 0.01, fs  # the right rate: no drift over 8 s
    r = resample_ratio(np.pi * 1000, 100.0)  # no short exact ratio: the nearest within 1e-5
    assert abs(float(r) / (100.0 / (np.pi * 1000)) - 1) <= 1e-5 and max(r.numerator, r.denominator) <= 50_000


def test_preprocessing_refuses_overflow_in_every_normalisation():
    x = _ecg(1000) * 1e300
    for how in ("lead_zscore", "ecg_zscore", "none"):
        with pytest.raises(RecordError, match="millivolts"):
            preprocess(x, 100.0, Preprocessing(fs=100.0, window_s=2.0, normalize=how))


# --------------------------------------------------------------------------- checkpoints
def _checkpoint_copy(tiny_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def _edit_config(folder: Path, edit) -> Path:
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))
    return path


def _set(*keys_value):
    *keys, value = keys_value

    def edit(cfg):
        d = cfg
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


CONFIG_CASES = {
    "unknown preprocessing key": (_set("preprocessing", "gain_fudge", 2), "gain_fudge"),
    "patch_size 0": (_set("model", "patch_size", 0), "patch_size"),
    "patch_size -25": (_set("model", "patch_size", -25), "patch_size"),
    "width 10^6": (_set("model", "dim", 10 ** 6), "dim"),
    "depth 10^4": (_set("model", "depth", 10 ** 4), "depth"),
    "dim as text": (_set("model", "dim", "64"), "dim"),
    "fs as text": (_set("preprocessing", "fs", "100"), "fs"),
    "band-pass as text": (_set("preprocessing", "bandpass", "0.5-40"), "bandpass"),
    "mask_ratio null": (_set("model", "mask_ratio", None), "mask_ratio"),
    "model not a mapping": (_set("model", [1, 2]), "model"),
    "preprocessing rate disagrees with the model": (_set("preprocessing", "fs", 250.0), "contradicts"),
    "preprocessing window disagrees with the model": (_set("preprocessing", "window_s", 4.0), "contradicts"),
    # round 3
    "latent_depth as text": (_set("model", "latent_depth", "2"), "latent_depth"),
    "latent_depth 1.5": (_set("model", "latent_depth", 1.5), "latent_depth"),
    "latent_depth 20000": (_set("model", "latent_depth", 20000), "latent_depth"),
    "max_invalid_fraction -1": (_set("preprocessing", "max_invalid_fraction", -1), "max_invalid_fraction"),
    # 24 private ViT blocks of width 1024 with mlp_ratio 16: 1.1e10 parameters, which the bound
    # missed while it ignored mlp_ratio
    "a private encoder past 5e9 parameters": (lambda cfg: cfg["model"].update(
        encoder="private", aggregator="latent", lead_field=0, dim=1024, depth=24, mlp_ratio=16.0), "parameters"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_bad_checkpoint_config_is_named_before_anything_is_built(tiny_run, tmp_path, case, monkeypatch):
    from lamae.models import lamae as lamae_model

    run = _checkpoint_copy(tiny_run, tmp_path)
    ck = run / json.loads((run / "latest.json").read_text())["path"]
    edit, field = CONFIG_CASES[case]
    path = _edit_config(ck, edit)
    built = []
    monkeypatch.setattr(lamae_model.Lamae, "__init__", lambda self, cfg: built.append(cfg) or (_ for _ in ()).throw(
        AssertionError("a model was built from a bad config")))
    with pytest.raises(LamaeError) as err:
        lamae.load(run)
    assert str(path) in str(err.value) and field in str(err.value), str(err.value)
    assert not built


def test_damaged_checkpoint_files_are_named(tiny_run, tmp_path, capsys):
    run = _checkpoint_copy(tiny_run, tmp_path)
    latest = run / "latest.json"
    ck = run / json.loads(latest.read_text())["path"]
    weights = ck / "model.safetensors"
    good_latest, good_weights = latest.read_text(), weights.read_bytes()
    # config.json that is just a number
    cfg_text = (ck / "config.json").read_text()
    (ck / "config.json").write_text("123")
    with pytest.raises(LamaeError, match="config.json: not a lamae checkpoint config"):
        lamae.load(ck)
    (ck / "config.json").write_text(cfg_text)
    # latest.json empty, broken, of the wrong shape, or naming a missing folder
    for text, words in (("", "latest.json: not valid JSON"), ("{\"step\": 3", "latest.json: not valid JSON"),
                        ("[1, 2]", "latest.json: expected"), ('{"step": "x", "path": "a"}', "latest.json: expected"),
                        ('{"step": 3, "path": "checkpoints/step-9"}', "holds no model.safetensors")):
        latest.write_text(text)
        with pytest.raises(LamaeError, match=words):
            lamae.load(run)
        rc, _, err = cli(capsys, "explain", tmp_path / "rec", "--checkpoint", run, "--out", tmp_path / "ex")
        assert_named(rc, err, "latest.json")
    latest.write_text(good_latest)
    # one flipped byte in the weights: caught by the sha256 config.json records
    flipped = bytearray(good_weights)
    flipped[-7] ^= 0x01
    weights.write_bytes(bytes(flipped))
    with pytest.raises(LamaeError, match="sha256 does not match"):
        lamae.load(run)
    # integer and NaN weights, with a matching sha256 (a file written that way on purpose)
    weights.write_bytes(good_weights)
    state = load_file(str(weights))
    name = next(iter(state))
    for bad, words in ((state[name].to(torch.int32), "dtype torch.int32"),
                       (torch.full_like(state[name], float("nan")), "NaN or inf")):
        save_file({**state, name: bad}, str(weights))
        _edit_config(ck, _set("weights_sha256", file_sha256(weights)))
        with pytest.raises(LamaeError, match=words) as err:
            lamae.load(run)
        assert name in str(err.value)


def test_old_checkpoints_without_a_weights_checksum_still_load(tiny_run, tmp_path):
    run = _checkpoint_copy(tiny_run, tmp_path)
    ck = run / json.loads((run / "latest.json").read_text())["path"]
    cfg = json.loads((ck / "config.json").read_text())
    assert len(cfg.pop("weights_sha256")) == 64
    (ck / "config.json").write_text(json.dumps(cfg))
    assert lamae.load(run).dim == cfg["model"]["dim"]


# --------------------------------------------------------------------------- stores
def _store_copy(store, tmp_path) -> Path:
    copy = tmp_path / "s"
    shutil.copytree(store.path, copy)
    return copy


def test_verify_names_a_truncated_signal_file(store, tmp_path, capsys):
    copy = _store_copy(store, tmp_path)
    sig = copy / "signals.npy"
    sig.write_bytes(sig.read_bytes()[: sig.stat().st_size * 2 // 3])
    rc, _, err = cli(capsys, "verify", copy)
    assert_named(rc, err, "signals.npy", "truncated")


def test_verify_names_a_meta_json_without_preprocessing(store, tmp_path, capsys):
    copy = _store_copy(store, tmp_path)
    meta = json.loads((copy / "meta.json").read_text())
    del meta["preprocessing"]
    (copy / "meta.json").write_text(json.dumps(meta))
    rc, _, err = cli(capsys, "verify", copy)
    assert_named(rc, err, "meta.json", "'preprocessing' is missing")
    meta["preprocessing"] = {"fs": "fast"}
    meta["meta_sha256"] = meta_digest(meta)  # edited and re-signed: the field's own check names it
    (copy / "meta.json").write_text(json.dumps(meta))
    rc, _, err = cli(capsys, "verify", copy)
    assert_named(rc, err, "meta.json", "'preprocessing'", "fs")


def test_verify_checks_the_row_column_of_the_index(store, tmp_path, capsys):
    copy = _store_copy(store, tmp_path)
    idx = pd.read_parquet(copy / "index.parquet")
    idx.loc[5, "row"] = len(idx) + 40  # points past the signals
    idx.to_parquet(copy / "index.parquet")
    meta = json.loads((copy / "meta.json").read_text())
    meta["index_sha256"] = file_sha256(copy / "index.parquet")  # edited consistently: only the row is wrong
    meta["meta_sha256"] = meta_digest(meta)
    (copy / "meta.json").write_text(json.dumps(meta))
    rc, _, err = cli(capsys, "verify", copy)
    assert_named(rc, err, "index.parquet", "entry 5", f"has row {len(idx) + 40}")


# --------------------------------------------------------------------------- output locations
def test_an_output_path_that_is_a_file_is_refused_before_any_work(store, synth_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for argv in (("prepare", synth_dir, "--out", blocker),
                 ("pretrain", "--store", store.path, "--out", blocker, "--steps", "2"),
                 ("pretrain", "--store", store.path, "--out", blocker / "run", "--steps", "2")):
        rc, _, err = cli(capsys, *argv)
        assert_named(rc, err, str(blocker))
        assert blocker.read_text() == "mine"


def test_an_unwritable_output_folder_is_named(store, tmp_path, capsys, monkeypatch):
    """A read-only file system and a folder without permission, as the OS reports them (root
    ignores permissions, so the OS's answer is simulated)."""
    out = tmp_path / "ro"
    for code, words in ((errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")):
        def refuse(self, *a, code=code, **k):
            raise OSError(code, "simulated", str(self))
        monkeypatch.setattr(Path, "write_bytes", refuse)
        rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", out, "--steps", "2")
        assert_named(rc, err, str(out), words)
        monkeypatch.undo()
    assert not (out / "latest.json").exists()


def test_a_full_disk_while_checkpointing_is_named_and_leaves_nothing_half_written(store, tmp_path, capsys,
                                                                                   monkeypatch):
    import lamae.checkpoint as ck
    import lamae.files as files

    def full(*a, **k):  # what torch's zip writer raises when the disk fills up
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 4480 vs 4374")

    monkeypatch.setattr(ck.torch, "save", full)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 ** 9, 10 ** 9, 0))
    run = tmp_path / "run"
    rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", run, "--steps", "2", "--batch-size", "8",
                     "--set", "warmup_steps=1", "--set", "model.n_latents=2")
    assert_named(rc, err, "step-0000002", "the disk is full", "0.0 MB free")
    assert not (run / "latest.json").exists()
    assert not list((run / "checkpoints").glob("*")) if (run / "checkpoints").exists() else True


# --------------------------------------------------------------------------- resume bookkeeping
def test_a_resumed_run_accounts_for_the_whole_run_and_a_finished_one_says_so(store, tmp_path, capsys, monkeypatch):
    import lamae.train.pretrain as tp

    run = tmp_path / "run"
    argv = ["pretrain", "--store", store.path, "--out", run, "--steps", "12", "--batch-size", "8",
            "--set", "warmup_steps=2", "--set", "checkpoint_every=6", "--set", "log_every=1",
            "--set", "model.n_latents=2"]
    real = tp.lr_at

    def crash_at(n):
        def lr(step, cfg):
            if step == n:
                raise KeyboardInterrupt
            return real(step, cfg)
        return lr

    # stopped before its first checkpoint (3 rows logged), then again after it (at step 9)
    for n, resume in ((3, []), (9, ["--resume"])):
        monkeypatch.setattr(tp, "lr_at", crash_at(n))
        rc, _, err = cli(capsys, *argv, *resume)
        assert rc == 130 and "run the same command again" in err
        monkeypatch.undo()
    first = json.loads((run / "checkpoints" / "step-0000006" / "config.json").read_text())["training"]
    rc, out, err = cli(capsys, *argv, "--resume")
    assert rc == 0, err
    final = json.loads((run / "checkpoints" / "step-0000012" / "config.json").read_text())["training"]
    assert final["first_loss"] == first["first_loss"]
    assert final["seconds"] > first["seconds"] and final["ecgs"] == 12 * 8
    log = pd.read_csv(run / "loss.csv")
    assert list(log["step"]) == list(range(1, 13))
    assert (np.diff(log["seconds"]) >= 0).all() and log["seconds"].iloc[6] >= first["seconds"]
    rc, out, err = cli(capsys, *argv, "--resume")
    assert rc == 0 and "already finished" in out and "nan" not in out
    assert f"{final['last_loss']:.4f}" in out


# --------------------------------------------------------------------------- command-line settings
def _cli_cases(data, store, tmp):
    (tmp / "broken.yaml").write_text("a: [1,\n")
    return [
        (("prepare", data, "--out", tmp / "o1", "--chunk-size", "0"), "chunk_size"),  # looped forever
        (("prepare", data, "--out", tmp / "o2", "--limit", "-1"), "limit"),  # silently stored all but one
        (("prepare", data, "--out", tmp / "o3", "--workers", "0"), "workers"),
        (("prepare", data, "--out", tmp / "o4", "--window", "1e9"), "out of range"),
        (("pretrain", "--store", store, "--out", tmp / "r1", "--steps", "0"), "steps"),
        (("pretrain", "--store", store, "--out", tmp / "r2", "--batch-size", "0"), "batch_size"),
        (("pretrain", "--store", store, "--out", tmp / "r3", "--grad-accum", "0"), "grad_accum"),
        (("pretrain", "--store", store, "--out", tmp / "r4", "--set", "steps=abc"), "steps"),
        (("pretrain", "--store", store, "--out", tmp / "r5", "--base-lr", "nan"), "base_lr"),
        (("pretrain", "--store", store, "--out", tmp / "r6", "--device", "bogus"), "not a device name"),
        (("pretrain", "--store", store, "--out", tmp / "r7", "--config", tmp / "broken.yaml"), "not valid YAML"),
        (("pretrain", "--store", store, "--out", tmp / "r8", "--config", tmp / "none.yaml"), "does not exist"),
        (("synth", tmp / "s", "--records", "0"), "positive integer"),
    ]


def test_impossible_command_line_settings_are_named(store, synth_dir, tmp_path, capsys):
    for argv, words in _cli_cases(synth_dir, store.path, tmp_path):
        rc, _, err = cli(capsys, *argv)
        assert_named(rc, err, words)
    if not torch.cuda.is_available():
        rc, _, err = cli(capsys, "pretrain", "--store", store.path, "--out", tmp_path / "g", "--device", "cuda")
        assert_named(rc, err, "no CUDA GPU")
