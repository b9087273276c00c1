"""The MIMIC-ICD scenario semantics on a hand-made labels file, with exact expected label sets."""

import io

import pandas as pd
import pytest

from lamae.errors import LabelError
from lamae.labels.mimic_icd import Scenario, build_scenario, cardiac_summary, transform_codes

CSV = """study_id,subject_id,fold,ecg_taken_in_ed,ecg_taken_in_hosp,ecg_no_within_stay,ed_diag_ed,all_diag_hosp,all_diag_all
1,10,0,True,False,0,"['I2510']","[]","['I2510', 'E785']"
2,10,0,True,False,1,"['I2510']","[]","['I2510']"
3,11,5,False,True,0,"[]","['I4891', 'S0190XA']","['I4891', 'S0190XA']"
4,12,17,True,True,0,"['R079']","['I4891']","['I4891', 'R079']"
5,13,17,False,False,0,"[]","[]","['Z87891']"
6,14,18,True,False,0,"['I2510']","[]","['I2510', 'I10']"
7,15,19,True,False,0,"['E785']","[]","['E785']"
8,15,19,True,False,1,"['I2510']","[]","['I2510']"
9,16,19,False,True,0,"[]","['N179']","['N179']"
"""


@pytest.fixture
def labels():
    return pd.read_csv(io.StringIO(CSV))


def test_truncation_strips_x_and_adds_ancestors():
    assert transform_codes(["I2510"], 3, False) == ["I25"]
    assert transform_codes(["I2510"], 4, False) == ["I251"]
    assert transform_codes(["I2510"], 5, True) == ["I25", "I251", "I2510"]
    assert transform_codes(["S0190XA"], 5, False) == ["S0190"]
    assert transform_codes(["T8X"], 5, False) == []  # "T8" after stripping: too short to be a code
    assert transform_codes(["S01X"], 4, True) == ["S01"]


def test_scenario_all_all_all_all_min1_5A(labels):
    s = build_scenario(labels, "mimic_all_all_all_all_1_5A")
    train = dict(zip(s["train"]["study_id"], s["train"]["labels"]))
    assert train == {
        1: ["E78", "E785", "I25", "I251", "I2510"],
        2: ["I25", "I251", "I2510"],
        3: ["I48", "I489", "I4891", "S01", "S019", "S0190"],
        4: ["I48", "I489", "I4891", "R07", "R079"],
        5: ["Z87", "Z878", "Z8789"],
    }
    assert dict(zip(s["val"]["study_id"], s["val"]["labels"])) == {6: ["I25", "I251", "I2510"]}  # I10 unseen in train
    test = dict(zip(s["test"]["study_id"], s["test"]["labels"]))
    assert test == {7: ["E78", "E785"], 8: ["I25", "I251", "I2510"]}  # N179 unseen: ECG 9 dropped


def test_min_count_is_counted_on_training_labels_only(labels):
    s = build_scenario(labels, "mimic_all_all_all_all_2_3")
    assert s["codes"] == ["I25", "I48"]  # E78 once in train (it is in test too: not counted)
    assert dict(zip(s["test"]["study_id"], s["test"]["labels"])) == {8: ["I25"]}


def test_ed_subsets_and_label_sets(labels):
    s = build_scenario(labels, "mimic_ed_ed_edfirst_all_1_3")
    assert list(s["train"]["study_id"]) == [1, 2, 4]  # ECGs taken in the ED, folds 0-17
    assert dict(zip(s["train"]["study_id"], s["train"]["labels"])) == {1: ["I25"], 2: ["I25"], 4: ["R07"]}
    # test: first ECG of an ED stay, all_diag_all labels; E78 never in train labels -> dropped
    assert list(s["test"]["study_id"]) == []
    s = build_scenario(labels, "mimic_ed_all_edfirst_all_1_3")
    assert dict(zip(s["test"]["study_id"], s["test"]["labels"])) == {7: ["E78"]}


def test_bad_scenarios_are_clear_errors():
    with pytest.raises(LabelError, match="does not read as"):
        Scenario.parse("mimic_all_all_2000")
    with pytest.raises(LabelError, match="subset 'icu'"):
        Scenario.parse("mimic_icu_all_all_all_10_5A")


def test_cardiac_summary():
    r = cardiac_summary(["I25", "I48", "E78", "N17"], [0.9, 0.7, 0.85, None])
    assert r == {"cardiac_macro": pytest.approx(0.8), "n_cardiac": 2, "noncardiac_macro": 0.85,
                 "n_noncardiac": 1, "n_above_0.8": 2}
