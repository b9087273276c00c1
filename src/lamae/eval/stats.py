"""Paired comparisons over seeds: t-test, Wilcoxon signed-rank, effect size."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired_tests(a, b) -> dict:
    """Compare paired scores ``a`` and ``b`` (same seeds). Positive ``mean_diff`` favours ``a``.

    ``cohens_dz`` is the mean difference over its standard deviation. With fewer than two
    pairs, or no variation in the differences, the tests are undefined and reported as NaN.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same length, got {a.shape} and {b.shape}")
    d = a - b
    out = {"n": int(len(d)), "mean_diff": float(d.mean()) if len(d) else math.nan,
           "t": math.nan, "p_ttest": math.nan, "w": math.nan, "p_wilcoxon": math.nan,
           "cohens_dz": math.nan}
    if len(d) < 2:
        return out
    sd = d.std(ddof=1)
    if sd > 1e-9:
        out["cohens_dz"] = float(d.mean() / sd)
        t = stats.ttest_rel(a, b)
        out["t"], out["p_ttest"] = float(t.statistic), float(t.pvalue)
    if np.any(np.abs(d) > 1e-12):
        w = stats.wilcoxon(a, b)
        out["w"], out["p_wilcoxon"] = float(w.statistic), float(w.pvalue)
    return out
