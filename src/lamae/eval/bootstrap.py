"""Bootstrap confidence intervals for AUROC (per node and macro), resampling test records."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC from ranks (ties averaged); NaN when only one class is present."""
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc_ci(y: np.ndarray, p: np.ndarray, columns=None, *, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """Point estimate and percentile CI of the macro AUROC over ``columns`` (default: all).

    Each replicate resamples test records with replacement; nodes with a single class in a
    replicate are left out of that replicate's mean.
    """
    y, p = np.asarray(y), np.asarray(p)
    cols = list(range(y.shape[1])) if columns is None else list(columns)
    point = np.nanmean([auroc(y[:, j], p[:, j]) for j in cols]) if cols else np.nan
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        vals = [auroc(y[idx, j], p[idx, j]) for j in cols]
        vals = [v for v in vals if np.isfinite(v)]
        if vals:
            reps.append(np.mean(vals))
    alpha = (1 - level) / 2
    lo, hi = (np.quantile(reps, [alpha, 1 - alpha]) if reps else (np.nan, np.nan))
    return {"auroc": float(point), "lo": float(lo), "hi": float(hi), "n_boot": len(reps), "level": level}
