"""The metrics every evaluation reports, each written once.

- ``auroc``: the area under the ROC curve from ranks (ties averaged), equal to scikit-learn's
  ``roc_auc_score`` to 1e-12 (tested); NaN when a label has one class only.
- ``scorable``: the one rule for "this label can be scored on these records": both classes
  present.
- ``node_aurocs`` / ``macro_auroc``: per label, and their mean over the scorable labels.
- ``lead_error``: a rebuilt lead against the original (MSE, the MSE of predicting zeros, the
  correlation), for the API's ``reconstruct`` and the store-wide reconstruction tables alike.

Bootstrap intervals and paired differences are in ``bootstrap.py``; tests across seeds in
``stats.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def scorable(y) -> bool:
    """Whether a label column has both classes (AUROC is defined)."""
    y = np.asarray(y).astype(bool)
    return 0 < int(y.sum()) < len(y)


def auroc(y, p) -> float:
    """AUROC from ranks (ties averaged); NaN unless :func:`scorable`."""
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def node_aurocs(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUROC of every label column of (records, labels) arrays; NaN where not scorable."""
    return np.array([auroc(y[:, j], p[:, j]) for j in range(y.shape[1])])


def macro_auroc(y: np.ndarray, p: np.ndarray, columns=None) -> float:
    """Mean AUROC over ``columns`` (default: all) that are scorable; NaN when none is."""
    cols = range(y.shape[1]) if columns is None else columns
    vals = [v for v in (auroc(y[:, j], p[:, j]) for j in cols) if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def lead_error(original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
    """MSE of a reconstructed lead, MSE of predicting zeros (its mean), and the correlation."""
    o, r = np.asarray(original, np.float64), np.asarray(reconstruction, np.float64)
    corr = float(np.corrcoef(o, r)[0, 1]) if o.std() > 0 and r.std() > 0 else 0.0
    return {"mse": float(np.mean((o - r) ** 2)), "mse_zeros": float(np.mean(o ** 2)), "corr": corr}
