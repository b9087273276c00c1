
import pandas as pd
import pytest

from lamae.data.preprocess import Preprocessing
from lamae.data.sources import PtbXlReader, ptbxl_labels
from lamae.data.store import prepare
from tests.conftest import shared


def test_superdiagnostic_labels_and_official_split():
    root = shared("ptb-xl-500")
    items = PtbXlReader(root, task="superdiagnostic", rate=100).items()
    db = pd.read_csv(root / "ptbxl_database.csv")
    assert len(items) == len(db) == 500
    first = {it.record_id: it for it in items}
    assert first["1"].codes == ("NORM",) and first["1"].path == "records100/00000/00001_lr"
    counts = pd.Series([c for it in items for c in it.codes]).value_counts()
    # the data README's superclass counts for these 500 records
    assert counts.to_dict() == {"NORM": 297, "STTC": 96, "CD": 78, "MI": 73, "HYP": 40}
    folds = pd.Series([it.extra["fold"] for it in items]).value_counts().sort_index()
    assert folds.tolist() == [58, 51, 34, 42, 47, 33, 44, 44, 81, 66]
    assert {it.extra["split"] for it in items if it.extra["fold"] == 10} == {"test"}


def test_task_mappings_follow_scp_statements():
    st = pd.read_csv(shared("ptb-xl-500") / "scp_statements.csv", index_col=0)
    codes = {"IMI": 100.0, "SR": 0.0, "LVOLT": 0.0}
    assert ptbxl_labels(codes, st, "superdiagnostic") == ["MI"]
    assert ptbxl_labels(codes, st, "subdiagnostic") == ["IMI"]
    assert ptbxl_labels(codes, st, "rhythm") == ["SR"]
    assert ptbxl_labels(codes, st, "form") == ["LVOLT"]
    assert ptbxl_labels(codes, st, "all") == ["IMI", "LVOLT", "SR"]


@pytest.fixture(scope="module")
def ptbxl_store(tmp_path_factory):
    root = shared("ptb-xl-500")
    return prepare(PtbXlReader(root, rate=100), tmp_path_factory.mktemp("ptbxl") / "s",
                   Preprocessing(fs=100, window_s=10), progress=False, workers=2)


def test_ptbxl_store_keeps_official_split_and_folds(ptbxl_store):
    idx = ptbxl_store.index
    assert len(idx) == 500 and ptbxl_store.meta["split"] == "official"
    assert ptbxl_store.meta["label_kind"] == "flat"
    assert (idx.loc[idx["fold"] == 10, "split"] == "test").all()
    assert (idx.loc[idx["fold"] <= 8, "split"] == "train").all()


def test_cross_validated_compare_on_ptbxl(ptbxl_store, tmp_path):
    from lamae.eval.compare import CompareConfig, run_compare

    cfg = CompareConfig(store=str(ptbxl_store.path), out=str(tmp_path / "cmp"), models=["LAMAE", "Random", "Scratch"],
                        seeds=[0], cv=True, pretrain={"steps": 2, "batch_size": 16, "warmup_steps": 1})
    r = run_compare(cfg, progress=False)
    assert r["nodes"] == ["CD", "HYP", "MI", "NORM", "STTC"] and set(r["levels"]) == {"label"}
    assert "10-fold cross-validation" in r["evaluation"]
    # every record is scored once out of fold, and a frozen random encoder carries real signal
    assert r["hierarchy"]["Random"]["all"]["mean"] > 0.6
    assert r["hierarchy"]["Scratch"]["all"]["n"] == 1  # trained once per fold, scored out of fold
    assert {c["model"]: c for c in r["controls"]}["Scratch"]["flops_per_step"] > 0
