"""Reduced lead sets: probe AUROC with 1 (I), 2 (I, II), 3 (I, II, V2), 6 (limb), 8 and 12 leads.

Each checkpoint is probed once per lead set: the other leads are hidden from the model for
the training, validation and test embeddings alike, a linear probe is fitted on the training
split and scored on the test split (macro AUROC over labels with enough test positives).
Records that have none of a set's leads are left out of that set. A model pretrained once
should hold up as leads are removed; compare LAMAE (per-lead encoder + latent attention,
optionally pretrained with lead dropout) with the joint model here.

A name given several checkpoints (its pretraining seeds) is reported as the mean and standard
deviation over them, with each one's AUROC kept in ``leads.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..data.store import EcgStore
from ..files import atomic_write_text, output_dir
from ..errors import LamaeError
from ..labels.icd10 import build_label_targets
from ..leads import LEAD_SETS, lead_indices
from ..plots import save_figure
from .bootstrap import macro_auroc_ci
from ..embedding import embed_store
from .probe import fit_linear_probe


def reduced_lead_eval(checkpoints: dict[str, str | list[str]], store_path, out_dir, *, lead_sets=None,
                      min_test_positives: int = 5, pooling: str = "latent", device: str = "cpu",
                      progress: bool = True) -> dict:
    """``checkpoints``: display name -> checkpoint or run folder, or a list of them (seeds: the
    name's result is their mean and standard deviation). Writes leads.md/json/png."""
    from ..train.common import pick_device

    device = pick_device(str(device))
    store = EcgStore(store_path)
    sets = {k: LEAD_SETS[k] for k in (lead_sets or LEAD_SETS)}
    all_rows = store.rows(labeled=True)
    if len(all_rows) == 0:
        raise LamaeError(f"{store.path}: no labelled records")
    have = store.lead_mask(all_rows)
    label_kind = store.meta.get("label_kind", "icd10")
    checkpoints = {name: [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
                   for name, paths in checkpoints.items()}
    # What a lead set's probe needs besides the embeddings, worked out once for every checkpoint:
    # its records, their labels and splits, the labels scored
    plans = {}
    for key, leads in sets.items():
        rows = all_rows[have[:, lead_indices(leads)].any(axis=1)]
        splits = store.index["split"].to_numpy()[rows]
        y = build_label_targets(label_kind, store.codes(rows), splits == "train").y.astype(np.float64)
        tr, va, te = (splits == s for s in ("train", "val", "test"))
        pos = y[te].sum(0)
        cols = [j for j in range(y.shape[1]) if min_test_positives <= pos[j] <= te.sum() - min_test_positives]
        plans[key] = (leads, rows, y, tr, va, te, cols)

    def probe_sets(path: str, label: str) -> dict:
        """One checkpoint probed on every lead set."""
        model, config = load_checkpoint(path)
        store.require_preprocessing(config["preprocessing"], str(path))
        result = {}
        for key, (leads, rows, y, tr, va, te, cols) in plans.items():
            feats, _ = embed_store(model, store, rows, pooling=pooling, device=device, progress=progress,
                                   desc=f"{label} {key} lead(s)", lead_set=leads)
            probe = fit_linear_probe(feats[tr], y[tr], feats[va], y[va])
            ci = macro_auroc_ci(y[te], probe.predict(feats[te]), cols, n_boot=500) if cols else None
            result[key] = {"leads": list(leads), "n_test": int(te.sum()), "n_labels": len(cols),
                           "auroc": None if ci is None else round(ci["auroc"], 4),
                           "ci": None if ci is None else [round(ci["lo"], 4), round(ci["hi"], 4)]}
        return result

    results = {}
    for name, paths in checkpoints.items():
        runs = [probe_sets(path, name if len(paths) == 1 else f"{name} #{i + 1}") for i, path in enumerate(paths)]
        results[name] = runs[0] if len(runs) == 1 else _over_seeds(runs)
    out = output_dir(out_dir, "leads", writes=("leads.json", "leads.md", "leads.png"))
    report = {"store": str(store.path),
              "checkpoints": {n: p[0] if len(p) == 1 else p for n, p in checkpoints.items()},
              "pooling": pooling, "results": results}
    atomic_write_text(out / "leads.json", json.dumps(report, indent=2))
    atomic_write_text(out / "leads.md", leads_markdown(report))
    plot_leads(report, out / "leads.png")
    return report


def _over_seeds(runs: list[dict]) -> dict:
    """Per lead set: the mean and standard deviation of the runs' AUROCs, and each run's."""
    out = {}
    for key, first in runs[0].items():
        values = [r[key]["auroc"] for r in runs]
        ok = [v for v in values if v is not None]
        out[key] = {"leads": first["leads"], "n_test": first["n_test"], "n_labels": first["n_labels"],
                    "auroc": round(float(np.mean(ok)), 4) if ok else None,
                    "sd": round(float(np.std(ok, ddof=1)), 4) if len(ok) > 1 else None,
                    "runs": values, "ci": None}
    return out


def leads_markdown(report: dict) -> str:
    names = list(report["results"])
    keys = list(next(iter(report["results"].values())))
    lines = ["# Probe AUROC with reduced lead sets", "", f"- store: `{report['store']}`",
             *[f"- {n}: `{p}`" if isinstance(p, str) else f"- {n}: {len(p)} runs: " + ", ".join(f"`{q}`" for q in p)
               for n, p in report["checkpoints"].items()],
             "- macro AUROC on the test split [95% bootstrap CI], or for a name given several runs (seeds) "
             "their mean ± standard deviation (n runs); the probe is fitted and scored with the same lead set", "",
             "| leads | which | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for k in keys:
        first = report["results"][names[0]][k]
        cells = []
        for n in names:
            r = report["results"][n][k]
            if r["auroc"] is None:
                cells.append("n/a")
            elif "runs" in r:
                sd = "" if r["sd"] is None else f" ± {r['sd']:.3f}"
                cells.append(f"{r['auroc']:.3f}{sd} ({sum(v is not None for v in r['runs'])})")
            else:
                cells.append(f"{r['auroc']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]")
        lines.append(f"| {k} | {', '.join(first['leads']) if len(first['leads']) < 12 else 'all'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_leads(report: dict, path: Path) -> None:
    from ..plots import _plt

    plt = _plt()

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, res in report["results"].items():
        ks = [k for k in res if res[k]["auroc"] is not None]
        x = [len(res[k]["leads"]) for k in ks]
        y = [res[k]["auroc"] for k in ks]
        # the bootstrap interval of one run, or the standard deviation over a name's runs
        lo = [res[k]["auroc"] - res[k]["ci"][0] if res[k]["ci"] else res[k].get("sd") or 0.0 for k in ks]
        hi = [res[k]["ci"][1] - res[k]["auroc"] if res[k]["ci"] else res[k].get("sd") or 0.0 for k in ks]
        ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xticks([1, 2, 3, 6, 8, 12])
    ax.set_xticklabels(["1", "2", "3", "6", "8", "12"])
    ax.set_xlabel("number of leads")
    ax.set_ylabel("probe macro AUROC (test)")
    ax.set_title("Reduced lead sets")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
