"""Patient-level splits: no patient's ECGs appear in two splits."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def patient_split(patient_ids, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> np.ndarray:
    """Assign each record a split by shuffling *patients* (not records) with ``seed``.

    Returns an array of "train"/"val"/"test" aligned with ``patient_ids``. The record-level
    fractions are close to ``fractions`` when patients have similar numbers of ECGs.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or len(fractions) != 3:
        raise ValueError(f"fractions must be three numbers summing to 1, got {fractions}")
    pids = np.asarray([str(p) for p in patient_ids])
    uniq = np.unique(pids)
    order = np.random.default_rng(seed).permutation(len(uniq))
    bounds = np.round(np.cumsum(fractions) * len(uniq)).astype(int)
    split_of = np.empty(len(uniq), dtype=object)
    ranks = np.empty(len(uniq), dtype=int)
    ranks[order] = np.arange(len(uniq))
    split_of[ranks < bounds[0]] = "train"
    split_of[(ranks >= bounds[0]) & (ranks < bounds[1])] = "val"
    split_of[ranks >= bounds[1]] = "test"
    pos = np.searchsorted(uniq, pids)
    return split_of[pos].astype(str)
