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
from ..data.store import prepare
from ..files import atomic_write_text, claim_output
from ..errors import LamaeError
from ..labels.icd10 import build_flat_targets
from ..train.pretrain import PretrainConfig, ensure_pretrained
from ..config import from_dict
from ..train.supervised import SupervisedConfig, predict_supervised, train_mlp_head, train_supervised
from .bootstrap import macro_auroc_ci
from ..embedding import embed_store
from .probe import fit_linear_probe

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
    out = claim_output(cfg.out, "benchmark", writes=("benchmark.json", "benchmark.md", "results", "stores", "runs"))
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
        ensure_pretrained(pcfg, progress=progress)
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
        cache = {}
        for mode in cfg.modes:
            path = out / "results" / f"{task}-{mode}.json"
            if path.exists():
                results[(task, mode)] = json.loads(path.read_text())
                continue
            p = predict_mode(mode, model, store, rows, y, tr, va, te, cfg.finetune, cfg.device, out, cache,
                             progress)
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


def predict_mode(mode, model, store, rows, y, tr, va, te, finetune: dict, device: str, out: Path, cache: dict,
                 progress: bool = True) -> np.ndarray:
    """Test-set probabilities for one evaluation mode (LP, Frozen or FT); ``cache`` keeps the
    frozen embeddings between modes. Indices ``tr``/``va``/``te`` point into ``rows``/``y``."""
    if mode in ("lp", "frozen"):
        if "feats" not in cache:
            cache["feats"] = embed_store(model, store, rows, progress=False)[0]
        feats = cache["feats"]
        if mode == "lp":
            return fit_linear_probe(feats[tr], y[tr], feats[va], y[va]).predict(feats[te])
        return train_mlp_head(feats[tr], y[tr], feats[va], y[va])(feats[te])
    fcfg = from_dict(SupervisedConfig, {**finetune, "device": device})
    ft_model, head, _ = train_supervised(model.cfg, store, rows[tr], y[tr], fcfg, init=model, progress=progress)
    return predict_supervised(ft_model, head, store, rows[te])


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


@dataclass
class MimicBenchmarkConfig:
    data: str = ""
    out: str = "results/mimic-icd"
    scenario: str = "mimic_all_all_all_all_2000_5A"
    checkpoint: str | None = None
    modes: list = field(default_factory=lambda: ["lp"])
    pretrain: dict = field(default_factory=lambda: {"steps": 1000, "batch_size": 64, "base_lr": 0.012,
                                                    "warmup_steps": 50, "model": {"n_latents": 8}})
    finetune: dict = field(default_factory=lambda: {"steps": 300, "batch_size": 64, "base_lr": 0.004,
                                                    "warmup_steps": 20})
    n_boot: int = 1000
    device: str = "auto"


def run_mimic_benchmark(cfg: MimicBenchmarkConfig, progress: bool = True) -> dict:
    """The MIMIC-ICD protocol (Strodthoff et al.) for a checkpoint: macro AUROC over cardiac
    (chapter IX) and non-cardiac codes, codes with AUROC > 0.8, and a CI on the macro."""
    import pandas as pd

    from ..data.sources import MimicEcgReader
    from ..labels.mimic_icd import Scenario, build_scenario, cardiac_summary
    from .metrics import node_aurocs

    sc = Scenario.parse(cfg.scenario)
    out = claim_output(cfg.out, "benchmark", writes=("benchmark.json", "benchmark.md", "results", "stores", "runs"))
    (out / "results").mkdir(parents=True, exist_ok=True)
    labels_path = Path(cfg.data) / "records_w_diag_icd10.csv"
    if not labels_path.exists():
        raise LamaeError(f"{labels_path}: MIMIC-IV-ECG-Ext-ICD labels are needed for the MIMIC-ICD protocol")
    prep = (Preprocessing.from_dict(load_checkpoint(cfg.checkpoint)[1]["preprocessing"]) if cfg.checkpoint
            else Preprocessing(fs=100.0, window_s=10.0))
    store = prepare(MimicEcgReader(cfg.data), out / "store", prep, progress=progress)
    checkpoint = cfg.checkpoint
    if checkpoint is None:  # pretrain on the scenario's training folds only (signals, no labels)
        run = out / "pretrain"
        pcfg = PretrainConfig(**{**cfg.pretrain, "store": str(store.path), "out": str(run), "split": None,
                                 "folds": list(range(18)), "device": cfg.device})
        ensure_pretrained(pcfg, progress=progress)
        checkpoint = str(run)
    model, config = load_checkpoint(checkpoint)
    split = build_scenario(pd.read_csv(labels_path), sc, source=str(labels_path))
    codes = split["codes"]
    if not codes:
        raise LamaeError(f"{cfg.scenario}: no code reaches {sc.min_count} training occurrences")
    row_of = dict(zip(store.index["record_id"], store.index["row"]))
    parts = {}
    for name in ("train", "val", "test"):
        frame = split[name]
        frame = frame[frame["study_id"].astype(str).isin(row_of)]  # records prepare skipped drop out
        parts[name] = frame
    rows = np.concatenate([[row_of[str(s)] for s in parts[n]["study_id"]] for n in ("train", "val", "test")])
    col = {c: j for j, c in enumerate(codes)}
    y = np.zeros((len(rows), len(codes)))
    labels = [lab for n in ("train", "val", "test") for lab in parts[n]["labels"]]
    for i, lab in enumerate(labels):
        y[i, [col[c] for c in lab]] = 1
    n_tr, n_va = len(parts["train"]), len(parts["val"])
    tr, va, te = np.arange(n_tr), np.arange(n_tr, n_tr + n_va), np.arange(n_tr + n_va, len(rows))
    scored = [j for j in range(len(codes)) if 0 < y[te, j].sum() < len(te)]
    results, cache = [], {}
    for mode in cfg.modes:
        path = out / "results" / f"{cfg.scenario}-{mode}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
            continue
        p = predict_mode(mode, model, store, rows, y, tr, va, te, cfg.finetune, cfg.device, out, cache, progress)
        aucs = node_aurocs(y[te], p)
        cardiac = [j for j in scored if codes[j].startswith("I")]
        other = [j for j in scored if not codes[j].startswith("I")]
        res = {"scenario": cfg.scenario, "mode": mode, "n_codes": len(codes), "n_scored_codes": len(scored),
               "n_train": len(tr), "n_val": len(va), "n_test": len(te),
               **cardiac_summary(codes, aucs), "macro": macro_auroc_ci(y[te], p, scored, n_boot=cfg.n_boot),
               "cardiac_ci": macro_auroc_ci(y[te], p, cardiac, n_boot=cfg.n_boot) if cardiac else None,
               "noncardiac_ci": macro_auroc_ci(y[te], p, other, n_boot=cfg.n_boot) if other else None,
               "codes": {c: (float(a) if np.isfinite(a) else None) for c, a in zip(codes, aucs)}}
        atomic_write_text(path, json.dumps(res, indent=2))
        results.append(res)
    report = {"checkpoint": config["path"], "data": cfg.data, "scenario": cfg.scenario, "results": results}
    atomic_write_text(out / "benchmark.json", json.dumps(report, indent=2))
    lines = ["# MIMIC-ICD benchmark", "", f"- scenario `{cfg.scenario}`; checkpoint `{config['path']}`",
             "- folds 0-17 train, 18 val, 19 test; AUROC over codes with both classes in the test fold", "",
             "| mode | codes (scored) | train / val / test | cardiac macro [95% CI] (n) | "
             "non-cardiac macro [95% CI] (n) | codes > 0.8 | macro [95% CI] |", "|---|---|---|---|---|---|---|"]
    for r in results:
        def f(v):
            return "n/a" if v is None else f"{v:.3f}"
        def ci(c):
            return "n/a" if c is None else f"{f(c['auroc'])} [{f(c['lo'])}, {f(c['hi'])}]"

        lines.append(f"| {MODE_NAMES[r['mode']]} | {r['n_codes']} ({r['n_scored_codes']}) | {r['n_train']} / "
                     f"{r['n_val']} / {r['n_test']} | {ci(r['cardiac_ci'])} ({r['n_cardiac']}) | "
                     f"{ci(r['noncardiac_ci'])} ({r['n_noncardiac']}) | {r['n_above_0.8']} | {ci(r['macro'])} |")
    atomic_write_text(out / "benchmark.md", "\n".join(lines) + "\n")
    return report
