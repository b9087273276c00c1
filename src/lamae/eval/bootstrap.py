"""Bootstrap confidence intervals for AUROC (per node and macro), resampling test records."""

from __future__ import annotations

import numpy as np

from .metrics import macro_auroc


def _macro(y: np.ndarray, p: np.ndarray, cols: list, idx: np.ndarray) -> float:
    """Mean AUROC over ``cols`` on the records ``idx``, leaving out columns with a single class."""
    return macro_auroc(y[idx], p[idx], cols)


def macro_auroc_ci(y: np.ndarray, p: np.ndarray, columns=None, *, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """Point estimate and percentile CI of the macro AUROC over ``columns`` (default: all).

    Each replicate resamples test records with replacement; nodes with a single class in a
    replicate are left out of that replicate's mean.
    """
    y, p = np.asarray(y), np.asarray(p)
    cols = list(range(y.shape[1])) if columns is None else list(columns)
    point = _macro(y, p, cols, np.arange(len(y)))
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        m = _macro(y, p, cols, rng.integers(0, len(y), len(y)))
        if np.isfinite(m):
            reps.append(m)
    alpha = (1 - level) / 2
    lo, hi = (np.quantile(reps, [alpha, 1 - alpha]) if reps else (np.nan, np.nan))
    return {"auroc": float(point), "lo": float(lo), "hi": float(hi), "n_boot": len(reps), "level": level}


def paired_macro_difference(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, columns=None, *,
                            n_boot: int = 1000, seed: int = 0) -> dict:
    """Macro AUROC of ``p_a`` minus that of ``p_b`` on the same records, with its bootstrap SE.

    Each replicate resamples test records once and scores both on it (a paired bootstrap), so
    the standard error is that of the difference, not of either macro alone.
    """
    y, p_a, p_b = np.asarray(y), np.asarray(p_a), np.asarray(p_b)
    cols = list(range(y.shape[1])) if columns is None else list(columns)
    every = np.arange(len(y))
    point = _macro(y, p_a, cols, every) - _macro(y, p_b, cols, every)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        d = _macro(y, p_a, cols, idx) - _macro(y, p_b, cols, idx)
        if np.isfinite(d):
            reps.append(d)
    se = float(np.std(reps, ddof=1)) if len(reps) > 1 else float("nan")
    return {"difference": float(point), "se": se, "n_boot": len(reps)}
