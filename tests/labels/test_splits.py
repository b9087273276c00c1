import numpy as np
import pytest

from lamae.labels.splits import patient_split


def test_no_patient_in_two_splits_and_fractions_close():
    rng = np.random.default_rng(0)
    pids = rng.integers(0, 2000, 8000)
    split = patient_split(pids, seed=1)
    for s1 in ("train", "val", "test"):
        for s2 in ("train", "val", "test"):
            if s1 < s2:
                assert not set(pids[split == s1]) & set(pids[split == s2])
    n_pat = {s: len(set(pids[split == s])) for s in ("train", "val", "test")}
    total = len(set(pids))
    assert abs(n_pat["train"] / total - 0.7) < 0.01 and abs(n_pat["test"] / total - 0.15) < 0.01


def test_split_is_deterministic_and_seeded():
    pids = [f"p{i % 50}" for i in range(300)]
    assert (patient_split(pids, seed=3) == patient_split(pids, seed=3)).all()
    assert (patient_split(pids, seed=3) != patient_split(pids, seed=4)).any()
    with pytest.raises(ValueError):
        patient_split(pids, fractions=(0.5, 0.5, 0.5))


def test_store_split_is_patient_disjoint(store):
    g = store.index.groupby("patient_id")["split"].nunique()
    assert (g == 1).all()
