import numpy as np
import pandas as pd

from lamae.data.sources import MimicEcgReader, read_ext_icd_labels
from lamae.data.synth import CONDITION_CODES
from lamae.leads import STANDARD_LEADS


def test_layout_matches_mimic(synth_dir):
    rl = pd.read_csv(synth_dir / "record_list.csv")
    assert list(rl.columns) == ["subject_id", "study_id", "file_name", "ecg_time", "path"]
    for _, r in rl.head(5).iterrows():
        parts = r.path.split("/")
        assert parts[0] == "files" and parts[1] == f"p{str(r.subject_id)[:4]}"
        assert parts[2] == f"p{r.subject_id}" and parts[3] == f"s{r.study_id}" and parts[4] == str(r.study_id)
        assert (synth_dir / (r.path + ".hea")).exists() and (synth_dir / (r.path + ".dat")).exists()
    assert rl.groupby("subject_id").size().max() > 1  # several ECGs per patient
    lab = pd.read_csv(synth_dir / "records_w_diag_icd10.csv")
    for col in ["file_name", "study_id", "subject_id", "ed_diag_ed", "all_diag_all", "fold", "strat_fold"]:
        assert col in lab.columns
    assert (lab.groupby("subject_id")["fold"].nunique() == 1).all()  # folds are patient-grouped
    assert lab["all_diag_all"].str.startswith("[").all()
    assert (lab["all_diag_all"] == "[]").any()


def test_reader_yields_canonical_leads_and_labels(synth_dir):
    reader = MimicEcgReader(synth_dir)
    items = reader.items()
    assert len(items) == 90
    codes = [c for it in items for c in (it.codes or [])]
    assert set(CONDITION_CODES.values()) & set(codes)
    assert all("." not in c for c in codes)
    rec = reader.read(items[0])
    assert set(rec.leads) == set(STANDARD_LEADS) and rec.fs == 500.0 and rec.signal.shape == (12, 5000)


def test_some_records_carry_nan_samples(tmp_path):
    from lamae.data.synth import synthesize_mimic

    root = synthesize_mimic(tmp_path, 40, seed=1, nan_fraction=0.5, progress=False)
    reader = MimicEcgReader(root)
    n_nan = sum(np.isnan(reader.read(it).signal).any() for it in reader.items())
    assert 5 < n_nan < 40


def test_labels_are_parsed_literally(tmp_path, synth_dir):
    lab = read_ext_icd_labels(synth_dir / "records_w_diag_icd10.csv")
    assert all(isinstance(c, list) for c in lab["codes"])


def test_reader_walks_files_when_record_list_is_absent(synth_dir, tmp_path):
    import shutil

    root = tmp_path / "walk"
    shutil.copytree(synth_dir, root)
    (root / "record_list.csv").unlink()
    walked = {(it.record_id, it.patient_id, it.path, it.codes) for it in MimicEcgReader(root).items()}
    listed = {(it.record_id, it.patient_id, it.path, it.codes) for it in MimicEcgReader(synth_dir).items()}
    assert walked == listed
