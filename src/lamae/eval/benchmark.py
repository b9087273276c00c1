"""``lamae benchmark ptbxl``: the PTB-XL tasks under the standard protocol, three modes.

Protocol (Wagner et al. 2020; Strodthoff et al. 2021): strat_fold 1-8 train, 9 validation,
10 test; records with no statement of a task are left out of that task; macro AUROC over
the task's labels present in both classes of the test fold, with a bootstrap 95% CI.

Modes: LP (frozen encoder, linear probe), Frozen (frozen encoder, one-hidden-layer MLP),
FT (the whole model fine-tuned from the checkpoint). Every (task, mode) result is written
as it finishes and reused when the command runs again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..data.preprocess import Preprocessing
from ..data.sources import PTBXL_TASKS, PtbXlReader
from ..data.store import atomic_write_text, prepare
from ..errors import LamaeError
from ..labels.icd10 import build_flat_targets
from ..train.pretrain import PretrainConfig, pretrain
from .bootstrap import macro_auroc_ci
from .probe import embed_store, fit_linear_probe
from .supervised import predict_scratch, train_mlp_head, train_scratch

MODES = ("lp", "frozen", "ft")
MODE_NAMES = {"lp": "LP", "frozen": "Frozen", "ft": "FT"}

# Best published macro AUROC on the full PTB-XL (21,799 records), anchors.md.
PUBLISHED = {
    "all": {"FT": 0.949, "LP": 0.940, "scratch": 0.941},
    "diagnostic": {"FT": 0.951, "LP": 0.947, "scratch": 0.943},
    "subdiagnostic": {"FT": 0.943, "LP": 0.945, "scratch": 0.938},
    "superdiagnostic": {"FT": 0.935, "LP": 0.924, "scratch": 0.932},
    "form": {"FT": 0.934, "LP": 0.908, "scratch": 0.919},
    "rhythm": {"FT": 0.965, "LP": 0.969, "scratch": 0.957},
}


@dataclass
class BenchmarkConfig:
    data: str = ""
    out: str = "results/ptbxl"
    checkpoint: str | None = None
    tasks: list = field(default_factory=lambda: list(PTBXL_TASKS))
    modes: list = field(default_factory=lambda: list(MODES))
    pretrain: dict = field(default_factory=lambda: {"steps": 1000, "batch_size": 32, "base_lr": 0.024,
                                                    "warmup_steps": 50, "model": {"n_latents": 8}})
    finetune: dict = field(default_factory=lambda: {"steps": 300, "batch_size": 32, "base_lr": 0.004,
                                                    "warmup_steps": 20})
    n_boot: int = 1000
    device: str = "auto"


def run_ptbxl_benchmark(cfg: BenchmarkConfig, progress: bool = True) -> dict:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    bad = [t for t in cfg.tasks if t not in PTBXL_TASKS] + [m for m in cfg.modes if m not in MODES]
    if bad:
        raise ValueError(f"unknown tasks/modes {bad}; tasks {PTBXL_TASKS}, modes {MODES}")
    prep = (Preprocessing.from_dict(load_checkpoint(cfg.checkpoint)[1]["preprocessing"]) if cfg.checkpoint
            else Preprocessing(fs=100.0, window_s=10.0))
    rate = 100 if prep.fs <= 100 else 500
    (out / "results").mkdir(exist_ok=True)
    stores = {t: prepare(PtbXlReader(cfg.data, task=t, rate=rate), out / "stores" / t, prep, progress=progress)
              for t in cfg.tasks}
    checkpoint = cfg.checkpoint
    if checkpoint is None:  # pretrain one on the training folds' signals (labels unused)
        run = out / "pretrain"
        pcfg = PretrainConfig(**{**cfg.pretrain, "store": str(stores[cfg.tasks[0]].path), "out": str(run),
                                 "device": cfg.device})
        latest = run / "latest.json"
        if not latest.exists() or json.loads(latest.read_text())["step"] < pcfg.steps:
            pretrain(pcfg, resume=True, progress=progress)
        checkpoint = str(run)
    model, config = load_checkpoint(checkpoint)
    results = {}
    for task in cfg.tasks:
        store = stores[task]
        rows = store.rows(labeled=True)
        splits = store.index["split"].to_numpy()[rows]
        targets = build_flat_targets(store.codes(rows), splits == "train", min_prevalence=0.0, min_count=1)
        y = targets.y.astype(np.float64)
        tr, va, te = (np.flatnonzero(splits == s) for s in ("train", "val", "test"))
        scored = [j for j in range(y.shape[1]) if 0 < y[te, j].sum() < len(te)]
        feats = None
        for mode in cfg.modes:
            path = out / "results" / f"{task}-{mode}.json"
            if path.exists():
                results[(task, mode)] = json.loads(path.read_text())
                continue
            if mode in ("lp", "frozen") and feats is None:
                feats, _ = embed_store(model, store, rows, progress=False)
            if mode == "lp":
                p = fit_linear_probe(feats[tr], y[tr], feats[va], y[va]).predict(feats[te])
            elif mode == "frozen":
                p = train_mlp_head(feats[tr], y[tr], feats[va], y[va])(feats[te])
            else:
                fcfg = PretrainConfig(**{**cfg.finetune, "store": str(store.path), "out": str(out / "ft"),
                                         "device": cfg.device})
                ft_model, head, _ = train_scratch(model.cfg, store, rows[tr], y[tr], fcfg, init=model,
                                                  progress=progress)
                p = predict_scratch(ft_model, head, store, rows[te])
            ci = macro_auroc_ci(y[te], p, scored, n_boot=cfg.n_boot)
            res = {"task": task, "mode": mode, "n_labels": len(targets.nodes), "n_scored_labels": len(scored),
                   "n_train": len(tr), "n_val": len(va), "n_test": len(te), **ci}
            atomic_write_text(path, json.dumps(res, indent=2))
            results[(task, mode)] = res
    report = {"checkpoint": config["path"], "data": cfg.data, "rate": rate,
              "preprocessing": prep.to_dict(), "results": list(results.values())}
    atomic_write_text(out / "benchmark.json", json.dumps(report, indent=2))
    atomic_write_text(out / "benchmark.md", benchmark_markdown(report, cfg))
    return report


def benchmark_markdown(report: dict, cfg: BenchmarkConfig) -> str:
    res = {(r["task"], r["mode"]): r for r in report["results"]}
    lines = ["# PTB-XL benchmark", "",
             f"- checkpoint: `{report['checkpoint']}`; data `{report['data']}` read at {report['rate']} Hz",
             "- strat_fold 1-8 train, 9 val, 10 test; macro AUROC over labels with both classes in the test "
             f"fold, 95% bootstrap CI ({cfg.n_boot} resamples of test records)",
             "- published: best macro AUROC on the full PTB-XL (21,799 records) from the literature "
             "(Al-Masud et al. 2026 and the papers it benchmarks); not comparable to runs on a subset", "",
             "| task | labels (scored) | train / val / test | " + " | ".join(MODE_NAMES[m] for m in cfg.modes)
             + " | published FT | published LP |",
             "|---|---|---|" + "---|" * len(cfg.modes) + "---|---|"]
    for task in cfg.tasks:
        first = next((res[(task, m)] for m in cfg.modes if (task, m) in res), None)
        if first is None:
            continue
        cells = []
        for m in cfg.modes:
            r = res.get((task, m))
            cells.append("n/a" if r is None or not np.isfinite(r["auroc"])
                         else f"{r['auroc']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]")
        pub = PUBLISHED[task]
        lines.append(f"| {task} | {first['n_labels']} ({first['n_scored_labels']}) | "
                     f"{first['n_train']} / {first['n_val']} / {first['n_test']} | " + " | ".join(cells)
                     + f" | {pub['FT']:.3f} | {pub['LP']:.3f} |")
    return "\n".join(lines) + "\n"


def check_data(path: str) -> None:
    if not (Path(path) / "ptbxl_database.csv").exists():
        raise LamaeError(f"{path}: not a PTB-XL folder (ptbxl_database.csv is missing)")
