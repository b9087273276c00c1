"""Figures people would rather look at than read: the 12-lead grid and lead weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .leads import LEAD_INDEX, STANDARD_LEADS

# The standard printed layout: three rows, four columns (limb, augmented, V1-V3, V4-V6).
GRID = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))


def save_figure(fig, path, **kwargs) -> None:
    """savefig to a temporary file, then rename: a killed run never leaves half a PNG."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, **kwargs)
    os.replace(tmp, path)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _paper(ax, seconds: float):
    """ECG-paper look: minor lines every 0.04 s, major every 0.2 s."""
    ax.set_xticks(np.arange(0, seconds + 1e-9, 0.2), minor=False)
    ax.set_xticks(np.arange(0, seconds + 1e-9, 0.04), minor=True)
    ax.grid(which="major", color="#f4a6a6", lw=0.6)
    ax.grid(which="minor", color="#fbe0e0", lw=0.3)
    ax.tick_params(labelbottom=False, labelleft=False, length=0, which="both")


def plot_ecg_grid(signal: np.ndarray, fs: float, path: str | os.PathLike, *, reconstruction=None,
                  highlight=(), errors=None, weights=None, title: str = "") -> None:
    """The 12 leads (12, samples, standard order; NaN rows = absent) on the 3 x 4 grid.

    ``reconstruction`` is drawn in red over the leads in ``highlight``; ``errors`` (lead ->
    {mse, mse_zeros, corr}) and ``weights`` (lead -> weight) are written in the panels.
    """
    plt = _plt()
    errors, weights = errors or {}, weights or {}
    n = signal.shape[1]
    t = np.arange(n) / fs
    fig, axes = plt.subplots(3, 4, figsize=(16, 7.5), sharex=True, sharey=True)
    finite = signal[np.isfinite(signal)]
    lim = float(np.percentile(np.abs(finite), 99.5)) * 1.2 if finite.size else 3.0
    for r, row in enumerate(GRID):
        for c, lead in enumerate(row):
            ax = axes[r, c]
            _paper(ax, n / fs)
            i = LEAD_INDEX[lead]
            if np.isfinite(signal[i]).any():
                ax.plot(t, signal[i], color="black", lw=0.7, label="original")
            if reconstruction is not None and lead in highlight:
                ax.plot(t, reconstruction[i], color="#d62728", lw=0.8, label="reconstruction")
            label = lead
            if lead in weights:
                label += f"  w={weights[lead]:.2f}"
            ax.text(0.01, 0.97, label, transform=ax.transAxes, va="top", fontsize=10, weight="bold")
            if lead in errors:
                e = errors[lead]
                ax.text(0.99, 0.03, f"MSE {e['mse']:.2f} (zeros {e['mse_zeros']:.2f}), r={e['corr']:.2f}",
                        transform=ax.transAxes, ha="right", fontsize=8, color="#d62728")
            elif lead in highlight and not np.isfinite(signal[i]).any():
                ax.text(0.99, 0.03, "absent: reconstructed", transform=ax.transAxes, ha="right",
                        fontsize=8, color="#d62728")
            ax.set_xlim(0, n / fs)
            ax.set_ylim(-lim, lim)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labels = h, lab
    if handles:
        fig.legend(handles, labels, loc="upper right")
    fig.suptitle(title or f"12-lead ECG ({n / fs:g} s at {fs:g} Hz; grid 0.2 s / 0.04 s)")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_lead_weights(weights: dict[str, float], path: str | os.PathLike, *, title: str = "") -> None:
    """Bar chart of one ECG's adaptive lead weights (leads it lacks are shown empty)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    vals = [weights.get(lead, 0.0) for lead in STANDARD_LEADS]
    colors = ["#1f77b4" if lead in weights else "#cccccc" for lead in STANDARD_LEADS]
    ax.bar(STANDARD_LEADS, vals, color=colors)
    ax.axhline(1 / max(1, len(weights)), color="gray", ls="--", lw=0.8, label="uniform")
    ax.set_ylabel("lead weight")
    ax.set_title(title or "latent attention over leads")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
