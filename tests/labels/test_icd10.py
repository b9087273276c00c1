import numpy as np
import pytest

from lamae.errors import LabelError
from lamae.labels.icd10 import ancestors, build_targets, parse_code_list


def test_ancestors_of_I071():
    assert [n for _, n in ancestors("I071")] == ["I071", "I07", "I05-I09", "IX"]
    assert [lv for lv, _ in ancestors("I07.1")] == ["subcategory", "category", "block", "chapter"]
    assert ancestors("NOTACODE") == ()


def test_positive_child_makes_every_ancestor_positive():
    t = build_targets([["I071"], ["I10"], []], min_prevalence=0, min_count=1)
    row = dict(zip(t.nodes, t.y[0]))
    assert row["I071"] == row["I07"] == row["I05-I09"] == row["IX"] == 1
    assert row["I10-I1A"] == 0
    assert dict(zip(t.nodes, t.y[1]))["IX"] == 1  # hypertension is also chapter IX
    assert t.y[2].sum() == 0
    assert set(t.levels) == {"chapter", "block", "category", "subcategory"}


def test_prevalence_threshold_counts_training_records_only():
    codes = [["I4891"]] * 5 + [["E785"]] * 1 + [[]] * 4 + [["E785"]] * 10
    train = np.array([True] * 10 + [False] * 10)
    t = build_targets(codes, train, min_prevalence=0.2, min_count=1)
    assert "I4891" in t.nodes and "E785" not in t.nodes  # E785 is common only outside train


def test_unknown_codes_are_counted_not_fatal():
    t = build_targets([["I4891", "ZZZ99"]], min_prevalence=0, min_count=1)
    assert t.unknown_codes == {"ZZZ99": 1}


def test_code_lists_are_parsed_literally_never_evaluated():
    assert parse_code_list("['I2510', 'E785']") == ["I2510", "E785"]
    assert parse_code_list("['I25.10']") == ["I2510"]
    assert parse_code_list("[]") == [] and parse_code_list(float("nan")) == []
    with pytest.raises(LabelError, match="row 7"):
        parse_code_list("__import__('os').system('echo pwned')", source="f.csv row 7")
    with pytest.raises(LabelError, match="cannot parse"):
        parse_code_list("['I10'", source="f.csv")
    with pytest.raises(LabelError, match="list of code strings"):
        parse_code_list("[1, 2]")
