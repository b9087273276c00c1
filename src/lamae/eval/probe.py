"""Linear probing of a frozen encoder on ICD-10-CM hierarchy nodes.

Embeddings come from the frozen model on unmasked input; a multi-label logistic regression
(one linear layer, L2 penalty chosen on the validation split) is fitted on the training
patients and scored on the test patients: AUROC per node and macro AUROC per level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_curve

from ..checkpoint import load_checkpoint
from ..embedding import embed_store
from ..data.store import EcgStore
from ..files import atomic_write_text, output_dir
from ..errors import LamaeError
from ..labels.icd10 import build_label_targets, describe, target_levels
from ..leads import STANDARD_LEADS
from ..modelcard import record_evaluation
from ..models.family import make_model
from ..plots import save_figure
from .metrics import auroc, macro_auroc, node_aurocs, scorable


@dataclass
class LinearProbe:
    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    weight_decay: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        return 1 / (1 + np.exp(-(z @ self.weight.T + self.bias)))


def _fit_one(x: torch.Tensor, y: torch.Tensor, wd: float, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    lin = torch.nn.Linear(x.shape[1], y.shape[1], dtype=torch.float64)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(lin(x), y) + wd * lin.weight.pow(2).sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    return lin.weight.detach(), lin.bias.detach()


def fit_linear_probe(x_train, y_train, x_val, y_val, *, weight_decays=(1e-4, 1e-3, 1e-2, 1e-1),
                     max_iter: int = 300) -> LinearProbe:
    """Multi-label logistic regression on standardised features; L2 weight picked on val macro AUROC."""
    mean = x_train.mean(0)
    std = x_train.std(0) + 1e-6
    xt = torch.from_numpy((x_train - mean) / std).double()
    yt = torch.from_numpy(y_train).double()
    best = None
    for wd in weight_decays:
        w, b = _fit_one(xt, yt, wd, max_iter)
        probe = LinearProbe(w.numpy(), b.numpy(), mean, std, wd)
        score = macro_auroc(y_val, probe.predict(x_val)) if len(x_val) else -wd
        if best is None or score > best[0]:
            best = (score, probe)
    return best[1]


def probe_features(feats: dict[str, np.ndarray], targets, splits: np.ndarray, *,
                   min_test_positives: int = 5) -> dict:
    """Fit a probe per feature set (name -> features aligned with ``splits``); AUROC per node.

    Macro averages use only nodes with at least ``min_test_positives`` positives and as many
    negatives in the test split: an AUROC from two positives is mostly noise.
    """
    y = targets.y.astype(np.float64)
    tr, va, te = (splits == s for s in ("train", "val", "test"))
    pos = y[te].sum(0)
    supported = (pos >= min_test_positives) & (te.sum() - pos >= min_test_positives)
    results = {}
    for name, x in feats.items():
        probe = fit_linear_probe(x[tr], y[tr], x[va], y[va])
        p_test = probe.predict(x[te])
        aucs = node_aurocs(y[te], p_test)
        in_macro = np.where(supported, aucs, np.nan)
        per_level = {}
        for level in target_levels(targets):
            cols = [j for j, lv in enumerate(targets.levels) if lv == level and np.isfinite(in_macro[j])]
            per_level[level] = float(np.mean(in_macro[cols])) if cols else float("nan")
        finite = in_macro[np.isfinite(in_macro)]
        results[name] = {"auroc": aucs, "per_level": per_level, "in_macro": supported,
                         "macro": float(finite.mean()) if len(finite) else float("nan"),
                         "weight_decay": probe.weight_decay, "p_test": p_test}
    return results


def run_probe(checkpoint, store_path, out_dir, *, min_prevalence: float = 0.01, min_count: int = 5,
              min_test_positives: int = 5, pooling: str = "latent", random_baseline: bool = True, batch_size: int = 256,
              device: str = "cpu", progress: bool = True) -> dict:
    """Embed the store's labelled records, probe every ICD-10 node, write Markdown/JSON/ROC plot."""
    from ..train.common import pick_device

    device = pick_device(str(device))
    model, config = load_checkpoint(checkpoint)
    store = EcgStore(store_path)
    store.require_preprocessing(config["preprocessing"], str(checkpoint))
    rows = store.rows(labeled=True)
    if len(rows) == 0:
        raise LamaeError(f"{store.path}: no records with diagnosis codes; prepare with a labels file")
    splits = store.index["split"].to_numpy()[rows]
    label_kind = store.meta.get("label_kind", "icd10")
    targets = build_label_targets(label_kind, store.codes(rows), splits == "train",
                                  min_prevalence=min_prevalence, min_count=min_count)
    if not targets.nodes:
        raise LamaeError(f"{store.path}: no ICD-10 node reaches min_prevalence={min_prevalence} "
                         f"and min_count={min_count} among training records")
    feats = {}
    feats["LAMAE"], lead_w = embed_store(model, store, rows, batch_size=batch_size, pooling=pooling,
                                         device=device, progress=progress, desc="embed (pretrained)")
    if random_baseline:
        torch.manual_seed(0)
        random_model = make_model(model.cfg)
        feats["random init"], _ = embed_store(random_model, store, rows, batch_size=batch_size,
                                              pooling=pooling, device=device, progress=progress,
                                              desc="embed (random init)")
    results = probe_features(feats, targets, splits, min_test_positives=min_test_positives)
    out = output_dir(out_dir, "probe", writes=("probe.json", "probe.md", "roc.png"))
    y_test = targets.y[splits == "test"]
    y_train = targets.y[splits == "train"]
    report = {
        "checkpoint": config["path"], "store": str(store.path), "pooling": pooling,
        "label_kind": label_kind, "levels": [*target_levels(targets), "all"],
        "n_records": {s: int((splits == s).sum()) for s in ("train", "val", "test")},
        "min_prevalence": min_prevalence, "min_count": min_count, "min_test_positives": min_test_positives,
        "unknown_codes": targets.unknown_codes,
        "nodes": [{"node": n, "level": lv, "description": describe(n) if label_kind == "icd10" else "",
                   "train_positives": int(y_train[:, j].sum()), "test_positives": int(y_test[:, j].sum()),
                   "in_macro": bool(results["LAMAE"]["in_macro"][j]),
                   **{name: _num(r["auroc"][j]) for name, r in results.items()}}
                  for j, (n, lv) in enumerate(zip(targets.nodes, targets.levels))],
        "macro": {name: {**{lv: _num(v) for lv, v in r["per_level"].items()}, "all": _num(r["macro"]),
                         "weight_decay": r["weight_decay"]} for name, r in results.items()},
        "mean_lead_weights": dict(zip(STANDARD_LEADS, [round(float(v), 4) for v in lead_w.mean(0)])),
    }
    atomic_write_text(out / "probe.json", json.dumps(report, indent=2))
    # the test split's labels and scores, for intervals and paired comparisons (the demo's check)
    tmp = out / "probe_scores.tmp.npz"
    np.savez(tmp, nodes=np.array(targets.nodes), y_test=y_test, names=np.array(list(results)),
             p_test=np.stack([r["p_test"] for r in results.values()]))
    tmp.replace(out / "probe_scores.npz")
    atomic_write_text(out / "probe.md", probe_markdown(report))
    plot_roc(targets, y_test, results["LAMAE"]["p_test"], out / "roc.png")
    summary = {"test records": report["n_records"]["test"],
               **{f"macro AUROC ({lv}), {name}": _fmt(v.get(lv)) for name, v in report["macro"].items()
                  for lv in report["levels"]}}
    record_evaluation(config["path"], f"linear probe on {store.path}", summary, report=str(out / "probe.md"))
    return report


def _num(v: float):
    return None if not np.isfinite(v) else round(float(v), 4)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def probe_markdown(report: dict) -> str:
    names = list(report["macro"])
    n = report["n_records"]
    lines = [
        "# Linear probe" + (" on ICD-10-CM nodes" if report["label_kind"] == "icd10" else ""), "",
        f"- checkpoint: `{report['checkpoint']}`", f"- store: `{report['store']}`",
        f"- labelled records: train {n['train']}, val {n['val']}, test {n['test']} (patient-disjoint)",
        f"- representation: `{report['pooling']}` pooling; node kept if train prevalence >= "
        f"{report['min_prevalence']} and >= {report['min_count']} train positives",
        "- AUROC on the test split; n/a where the test split has no positive or no negative; "
        f"nodes marked * have fewer than {report['min_test_positives']} test positives (or negatives) "
        "and are left out of the macro averages", "",
        "## Macro AUROC per hierarchy level", "",
        "| level | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
    ]
    for level in report["levels"]:
        lines.append(f"| {level} | " + " | ".join(_fmt(report["macro"][m][level]) for m in names) + " |")
    lines += ["", "## AUROC per node", "",
              "| node | level | description | train pos | test pos | " + " | ".join(names) + " |",
              "|---|---|---|---|---|" + "---|" * len(names)]
    for r in report["nodes"]:
        mark = "" if r["in_macro"] else "*"
        lines.append(f"| {r['node']}{mark} | {r['level']} | {r['description']} | {r['train_positives']} | "
                     f"{r['test_positives']} | " + " | ".join(_fmt(r[m]) for m in names) + " |")
    return "\n".join(lines) + "\n"


def plot_roc(targets, y_test, p_test, path: Path) -> None:
    from ..plots import _plt

    plt = _plt()

    levels = target_levels(targets)
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 4.2), squeeze=False)
    for ax, level in zip(axes[0], levels):
        for j in [j for j, lv in enumerate(targets.levels) if lv == level][:10]:
            if scorable(y_test[:, j]):
                fpr, tpr, _ = roc_curve(y_test[:, j], p_test[:, j])
                ax.plot(fpr, tpr, lw=1.2, label=f"{targets.nodes[j]} ({auroc(y_test[:, j], p_test[:, j]):.2f})")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_title(level)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Linear-probe ROC per label node (test split)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
