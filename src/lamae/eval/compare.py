"""``lamae compare``: the paper's comparison, with matched controls, seeds and significance.

For every model x seed on one store: pretrain (or train from scratch), embed the labelled
records with the frozen encoder, fit linear probes on 100% and on fractions of the training
patients, and score AUROC on the test patients. Each finished model/seed writes
``runs/MODEL/seed-S/result.json`` and is never recomputed; pretraining itself resumes from
its last checkpoint. The report has four parts:

(a) matched controls: parameters, masking ratio, optimizer, schedule, steps, epochs, batch,
    measured FLOPs per training step, wall-clock;
(b) macro AUROC per label level, mean and std over seeds;
(c) paired t-test and Wilcoxon over seeds of LAMAE against the strongest baseline, with
    the effect size;
(d) label efficiency: probe macro AUROC with 1%, 10% and 100% of the training patients.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..config import first_difference
from ..data.store import EcgStore
from ..files import atomic_write_text, claim_output
from ..errors import LamaeError
from ..labels.icd10 import build_label_targets, target_levels
from ..models.family import FAMILY, PRETRAINABLE, REFERENCE, count_parameters, make_model, match_parameters, model_config
from ..models.config import SIZES, LamaeConfig
from ..models.lamae import Lamae
from ..train.pretrain import PretrainConfig, ensure_pretrained, with_member_defaults
from ..train.supervised import SupervisedConfig, predict_supervised, train_supervised
from ..utils.flops import supervised_step_flops, training_step_flops
from ..plots import save_figure
from ..tracking import open_tracker
from .crosslead import crosslead_ablation, has_latents
from .metrics import node_aurocs
from ..embedding import embed_store
from .probe import fit_linear_probe
from .reconstruction import masked_span_errors, reconstruction_errors
from .stats import paired_tests

DEFAULT_MODELS = ["LAMAE", "LAMAE_E", "LAMAE-global", "LAMAE-mean", "IndS", "IndP", "MVMAE", "Joint", "Scratch", "Random"]


@dataclass
class CompareConfig:
    store: str = ""
    out: str = "results/compare"
    models: list = field(default_factory=lambda: list(DEFAULT_MODELS))
    seeds: list = field(default_factory=lambda: [0, 1, 2, 3, 4])
    size: str = "tiny"
    model: dict = field(default_factory=dict)      # shared LamaeConfig overrides
    pretrain: dict = field(default_factory=dict)   # shared PretrainConfig fields (steps, batch_size, ...)
    label_fractions: list = field(default_factory=lambda: [0.01, 0.1, 1.0])
    pairs: list = field(default_factory=list)  # "A:B": also paired tests of A against B, per label fraction
    match_parameters: bool = True
    parameter_tolerance: float = 0.10
    min_prevalence: float = 0.01
    min_count: int = 5
    min_test_positives: int = 5
    cv: bool = False          # cross-validation over the store's folds (PTB-XL strat_fold) instead of its split
    crosslead: bool = True    # (e): hidden-lead reconstruction per model, and the latent ablation
    crosslead_hide: list = field(default_factory=lambda: ["III", "aVF", "V2", "V5"])
    crosslead_split: str = "test"  # records never seen in pretraining
    device: str = "auto"
    tracker: str = "csv"      # csv | tensorboard | wandb: every pretraining run, and the results (lamae/tracking.py)

    def __post_init__(self):
        for name in ("models", "seeds", "label_fractions"):
            value = getattr(self, name)
            if not isinstance(value, list) or not value:
                raise ValueError(f"{name} must be a non-empty list, got {value!r}")
        if not all(isinstance(m, str) for m in self.models) or len(set(self.models)) != len(self.models):
            raise ValueError(f"models must name each model once, got {self.models!r}")
        if (not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds!r}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in self.label_fractions):
            raise ValueError(f"label_fractions must be fractions in (0, 1], got {self.label_fractions!r}")
        for pair in self.pairs:
            a, sep, b = pair.partition(":") if isinstance(pair, str) else ("", "", "")
            if not sep or a == b or a not in self.models or b not in self.models:
                raise ValueError(f"pairs: {pair!r} must be 'A:B', two different models of the comparison "
                                 f"({', '.join(self.models)})")
        for name in ("model", "pretrain"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a mapping of settings, got {getattr(self, name)!r}")
        self._check_settings()

    def _check_settings(self) -> None:
        """The whole configuration, checked before any work: a setting no member knows, a size
        that does not exist or a value out of range is named here, not by a run hours later."""
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        for name in ("min_prevalence", "parameter_tolerance"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")
        for name in ("min_count", "min_test_positives"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        known = {f.name for f in fields(PretrainConfig)} - {"store", "out", "size", "architecture", "model"}
        unknown = sorted(set(self.pretrain) - known)
        if unknown:
            raise ValueError(f"pretrain: unknown setting(s) {', '.join(map(str, unknown))}; pretrain takes "
                             f"{', '.join(sorted(known))}")
        PretrainConfig(**{**self.pretrain, "store": "-", "out": "-", "size": self.size})  # its own range checks
        known = {f.name for f in fields(LamaeConfig)}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ValueError(f"model: unknown setting(s) {', '.join(map(str, unknown))} (see LamaeConfig)")


def _targets(store: EcgStore, rows, train_mask, cfg: CompareConfig):
    t = build_label_targets(store.meta.get("label_kind", "icd10"), store.codes(rows), train_mask,
                            min_prevalence=cfg.min_prevalence, min_count=cfg.min_count)
    if not t.nodes:
        raise LamaeError(f"{store.path}: no label node reaches the prevalence threshold")
    return t


def _level_macro(aucs, levels, supported) -> dict:
    out = {}
    for level in [*dict.fromkeys(levels), "all"]:
        vals = [a for a, lv, ok in zip(aucs, levels, supported) if ok and np.isfinite(a) and level in (lv, "all")]
        out[level] = float(np.mean(vals)) if vals else None
    return out


def _patient_subset(store: EcgStore, rows, fraction: float, seed: int) -> np.ndarray:
    """Indices into ``rows`` of the records of a random ``fraction`` of their patients."""
    pids = store.index["patient_id"].to_numpy()[rows]
    uniq = np.unique(pids)
    k = max(1, int(round(fraction * len(uniq))))
    chosen = set(np.random.default_rng([seed, int(fraction * 1e6)]).choice(uniq, k, replace=False))
    return np.flatnonzero([p in chosen for p in pids])


class Comparison:
    def __init__(self, cfg: CompareConfig, progress: bool = True):
        unknown = [m for m in cfg.models if m not in FAMILY]
        if unknown:
            raise ValueError(f"unknown models {unknown}; choose from {sorted(FAMILY)}")
        for m in cfg.models:
            reuse = FAMILY[m].get("reuse")
            if reuse and reuse not in cfg.models:
                raise ValueError(f"{m} reads {reuse}'s pretrained encoder: add {reuse} to models")
        self.cfg, self.progress = cfg, progress
        self.out = Path(cfg.out)
        self.store = EcgStore(cfg.store)
        prep = self.store.preprocessing
        self.fixed = {"fs": prep.fs, "window_s": prep.window_s,
                      "input_scale": "rms" if prep.normalize == "ecg_zscore" else "none"}
        self.rows = self.store.rows(labeled=True)
        if len(self.rows) == 0:
            raise LamaeError(f"{self.store.path}: no labelled records to compare on")
        self.splits = self.store.index["split"].to_numpy()[self.rows]
        self.plans = self._plans()
        # Label set and thresholds from the training records (all records under cross-validation,
        # where every record is a training record in some fold).
        self.targets = _targets(self.store, self.rows, None if cfg.cv else self.splits == "train", cfg)
        self.level_names = [*target_levels(self.targets), "all"]
        scored = np.zeros(len(self.rows), bool)
        for _, _, te in self.plans:
            scored[te] = True
        y_test = self.targets.y[scored]
        pos = y_test.sum(0)
        self.supported = (pos >= cfg.min_test_positives) & (len(y_test) - pos >= cfg.min_test_positives)
        self.reference_params = count_parameters(model_config(REFERENCE, cfg.size, cfg.model, **self.fixed))
        self.model_cfgs = {}
        for name in cfg.models:
            mc = model_config(name, cfg.size, cfg.model, **self.fixed)
            matched = abs(count_parameters(mc) - self.reference_params) <= cfg.parameter_tolerance * self.reference_params
            if cfg.match_parameters and not matched:
                mc, matched = match_parameters(mc, self.reference_params, cfg.parameter_tolerance)
            self.model_cfgs[name] = (mc, matched)

    def _plans(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(train, val, test) index arrays into ``self.rows``: the split, or one per fold."""
        if not self.cfg.cv:
            return [tuple(np.flatnonzero(self.splits == s) for s in ("train", "val", "test"))]
        folds = self.store.index["fold"].to_numpy()[self.rows] if "fold" in self.store.index else None
        if folds is None or (folds < 0).any():
            raise LamaeError(f"{self.store.path}: cv needs a fold for every record (e.g. PTB-XL's strat_fold)")
        uniq = sorted(set(folds.tolist()))
        if len(uniq) < 3:
            raise LamaeError(f"{self.store.path}: cv needs at least 3 folds, found {uniq}")
        plans = []
        for i, k in enumerate(uniq):
            v = uniq[(i + 1) % len(uniq)]
            plans.append((np.flatnonzero((folds != k) & (folds != v)), np.flatnonzero(folds == v),
                          np.flatnonzero(folds == k)))
        return plans

    # ------------------------------------------------------------------ one model, one seed
    def pretrain_config(self, name: str, seed: int, out: Path) -> PretrainConfig:
        mc, _ = self.model_cfgs[name]
        overrides = {k: v for k, v in mc.to_dict().items() if k not in self.fixed}
        architecture = name if name in PRETRAINABLE else REFERENCE
        return PretrainConfig(**{**self.cfg.pretrain, "store": self.cfg.store, "out": str(out),
                                 "size": self.cfg.size, "architecture": architecture, "model": overrides,
                                 "seed": seed, "device": self.cfg.device, "tracker": self.cfg.tracker})

    def run_one(self, name: str, seed: int) -> dict:
        spec = FAMILY[name]
        folder = self.out / "runs" / name / f"seed-{seed}"
        result_path = folder / "result.json"
        settings = self.settings(name, seed)
        if result_path.exists():
            result = json.loads(result_path.read_text())
            stored = _as_current(result.get("settings", settings), settings)
            if stored.get("store") != settings["store"]:
                raise LamaeError(f"{result_path}: computed on other data than the store {self.store.path} holds now "
                                 "(the store's content digest differs, or the result predates digests); delete "
                                 f"{folder} to recompute it, or choose another --out")
            if stored != settings:
                raise LamaeError(f"{result_path}: computed with other settings than this comparison's "
                                 f"({first_difference(stored, settings)}); delete {folder} to "
                                 "recompute it, or choose another --out")
            if self._wants_crosslead(name) and "crosslead" not in result:  # a result from before (e) existed
                result["crosslead"] = self.crosslead(name, seed)
                atomic_write_text(result_path, json.dumps(result, indent=2))
            return result
        folder.mkdir(parents=True, exist_ok=True)
        y = self.targets.y.astype(np.float64)
        scored = np.zeros(len(self.rows), bool)
        seconds = 0.0
        if spec["kind"] == "scratch":
            oof = np.full(y.shape, np.nan)
            for k, (tr, va, te) in enumerate(self.plans):
                scfg = SupervisedConfig.like(self.pretrain_config(name, seed, folder / "pretrain"))
                model, head, secs = train_supervised(self.model_cfgs[name][0], self.store, self.rows[tr], y[tr],
                                                     scfg, pooling=spec["pooling"], progress=self.progress)
                seconds += secs
                oof[te] = predict_supervised(model, head, self.store, self.rows[te], pooling=spec["pooling"])
                scored[te] = True
            aucs = node_aurocs(y[scored], oof[scored])
            fractions = {"1.0": _level_macro(aucs, self.targets.levels, self.supported)["all"]}
        else:
            model = self._encoder(name, seed)
            if spec["kind"] == "mae":
                seconds = self._pretrain_seconds(spec.get("reuse", name), seed)
            feats, _ = embed_store(model, self.store, self.rows, pooling=spec["pooling"], progress=False,
                                   device=next(model.parameters()).device)
            fracs = sorted({*map(float, self.cfg.label_fractions), 1.0})
            oof = {f: np.full(y.shape, np.nan) for f in fracs}
            for tr, va, te in self.plans:
                scored[te] = True
                for frac in fracs:
                    sub = tr[_patient_subset(self.store, self.rows[tr], frac, seed)]
                    probe = fit_linear_probe(feats[sub], y[sub], feats[va], y[va])
                    oof[frac][te] = probe.predict(feats[te])
            per_frac = {f: node_aurocs(y[scored], oof[f][scored]) for f in fracs}
            aucs = per_frac[1.0]
            fractions = {str(f): _level_macro(per_frac[f], self.targets.levels, self.supported)["all"]
                         for f in map(float, self.cfg.label_fractions)}
        result = {
            "model": name, "seed": seed, "seconds": seconds, "settings": settings,
            "per_level": _level_macro(aucs, self.targets.levels, self.supported),
            "label_fractions": fractions,
            "nodes": {n: (None if not np.isfinite(a) else float(a)) for n, a in zip(self.targets.nodes, aucs)},
        }
        if self._wants_crosslead(name):
            result["crosslead"] = self.crosslead(name, seed)
        atomic_write_text(result_path, json.dumps(result, indent=2))
        return result

    def settings(self, name: str, seed: int) -> dict:
        """What a model/seed result depends on: its model and training settings and the
        evaluation's; a stored result made otherwise is not reused."""
        pcfg = with_member_defaults(self.pretrain_config(name, seed, Path("-")))
        train = {k: v for k, v in asdict(pcfg).items() if k not in _NOT_SETTINGS}
        evaluation = {k: getattr(self.cfg, k) for k in ("cv", "label_fractions", "min_prevalence", "min_count",
                                                         "min_test_positives")}
        # the store by its content digest, not its path: a store rebuilt with other data in the
        # same folder must not have its old results reused
        return {"model": self.model_cfgs[name][0].to_dict(), "train": train, "evaluation": evaluation,
                "store": self.store.digest}

    def _wants_crosslead(self, name: str) -> bool:
        spec = FAMILY[name]
        return (self.cfg.crosslead and spec["kind"] == "mae" and "reuse" not in spec
                and spec["model"].get("objective", "mae") == "mae")  # CPC rebuilds no lead

    def crosslead(self, name: str, seed: int) -> dict:
        """Hidden-lead reconstruction of a pretrained model on the held-out split; for models with
        latents, also with the latents zeroed and shuffled (``crosslead.py``)."""
        from ..api import load

        model = load(self.out / "runs" / name / f"seed-{seed}" / "pretrain")
        hide, split = list(self.cfg.crosslead_hide), self.cfg.crosslead_split
        if has_latents(model.model):
            abl = crosslead_ablation(model, self.store, hide, split=split)
            return {c: {"hidden_nmse": v["hidden_nmse"], "same_lead_nmse": v["same_lead"]["nmse"],
                        "per_lead": {h: {"nmse": e["nmse"], "corr": e["corr"]} for h, e in v["hidden"].items()}}
                    for c, v in abl["conditions"].items()}
        errs = reconstruction_errors(model, self.store, hide, split=split)
        same = masked_span_errors(model, self.store, split=split)
        return {"none": {"hidden_nmse": float(np.mean([e["nmse"] for e in errs.values()])),
                         "same_lead_nmse": same["nmse"],
                         "per_lead": {h: {"nmse": e["nmse"], "corr": e["corr"]} for h, e in errs.items()}}}

    def _encoder(self, name: str, seed: int) -> Lamae:
        spec = FAMILY[name]
        if spec["kind"] == "random":
            torch.manual_seed(seed)
            return make_model(self.model_cfgs[name][0])
        source = spec.get("reuse", name)
        run = self.out / "runs" / source / f"seed-{seed}" / "pretrain"
        cfg = self.pretrain_config(source, seed, run)
        ensure_pretrained(cfg, progress=self.progress)
        model, _ = load_checkpoint(run)
        return model

    def _pretrain_seconds(self, name: str, seed: int) -> float:
        import pandas as pd

        log = self.out / "runs" / name / f"seed-{seed}" / "pretrain" / "loss.csv"
        if not log.exists():
            return float("nan")
        df = pd.read_csv(log)
        # seconds restart from 0 in a resumed run: add up the segments
        segments = np.split(df["seconds"].to_numpy(), np.flatnonzero(np.diff(df["seconds"].to_numpy()) < 0) + 1)
        return float(sum(seg[-1] for seg in segments if len(seg)))

    # ------------------------------------------------------------------ report
    def controls(self, results: dict) -> list[dict]:
        rows = []
        n_train = int((self.store.index["split"] == "train").sum())
        for name in self.cfg.models:
            mc, matched = self.model_cfgs[name]
            pcfg = with_member_defaults(self.pretrain_config(name, 0, self.out))
            torch.manual_seed(0)
            model = make_model(mc)
            kind = FAMILY[name]["kind"]
            if kind == "mae":
                flops = training_step_flops(model, pcfg.batch_size)
            elif kind == "scratch":
                flops = supervised_step_flops(model, len(self.targets.nodes), pcfg.batch_size)
            else:
                flops = None
            secs = [r["seconds"] for r in results.get(name, []) if np.isfinite(r["seconds"])]
            rows.append({
                "model": name, "kind": kind, "parameters": count_parameters(mc),
                "parameter_ratio": count_parameters(mc) / self.reference_params, "matched": matched,
                "width": mc.dim, "mlp_ratio": mc.mlp_ratio,
                "mask_ratio": mc.mask_ratio if kind == "mae" and mc.objective == "mae" else None,  # CPC masks nothing
                "lead_dropout": pcfg.lead_dropout if kind == "mae" else None,
                "optimizer": f"AdamW(0.9, 0.95), wd {pcfg.weight_decay}, lr {pcfg.lr:.2e}",
                "schedule": f"{pcfg.warmup_steps} warmup + cosine", "steps": pcfg.steps,
                "epochs": round(pcfg.steps * pcfg.batch_size / max(1, n_train), 2), "batch": pcfg.batch_size,
                "flops_per_step": flops,
                "wall_clock_s": float(np.mean(secs)) if secs else None,
                "reads": FAMILY[name].get("reuse"),
            })
        return rows

    def run(self) -> dict:
        claim_output(self.out, "compare", writes=("compare.json", "compare.md", "compare.png", "runs"))
        results = {}
        for name in self.cfg.models:
            for seed in self.cfg.seeds:
                if self.progress:
                    print(f"== {name} seed {seed}", flush=True)
                results.setdefault(name, []).append(self.run_one(name, seed))
        report = self.summarise(results)
        self.write(report)
        self.track(results, report)
        return report

    def track(self, results: dict, report: dict) -> None:
        """Each model's macro AUROC per seed (logged at step = seed) and the means, to the tracker."""
        tracker = open_tracker(self.cfg.tracker, self.cfg.out, asdict(self.cfg), name="compare")
        try:
            for seed in self.cfg.seeds:
                tracker.log(seed, {f"{m}/macro_auroc": r["per_level"]["all"]
                                   for m, rs in results.items() for r in rs if r["seed"] == seed})
            tracker.summary({f"{m}/macro_auroc_mean": h["all"]["mean"] for m, h in report["hierarchy"].items()})
        finally:
            tracker.close()

    def summarise(self, results: dict) -> dict:
        def stat(vals):
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            return {"mean": float(np.mean(vals)) if vals else None,
                    "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None, "n": len(vals)}

        levels = self.level_names
        hierarchy = {m: {lv: stat([r["per_level"][lv] for r in rs]) for lv in levels} for m, rs in results.items()}
        fracs = [str(float(f)) for f in self.cfg.label_fractions]
        efficiency = {m: {f: stat([r["label_fractions"].get(f) for r in rs]) for f in fracs} for m, rs in results.items()}
        others = [m for m in results if m != REFERENCE and hierarchy[m]["all"]["mean"] is not None]
        baselines = [m for m in others if m != "LAMAE_E"]
        tests, all_tests = None, {}
        if REFERENCE in results and others:
            by_seed = {m: {r["seed"]: r["per_level"]["all"] for r in results[m]} for m in [REFERENCE, *others]}
            for m in others:
                seeds = [s for s in self.cfg.seeds if by_seed[REFERENCE].get(s) is not None
                         and by_seed[m].get(s) is not None]
                all_tests[m] = paired_tests([by_seed[REFERENCE][s] for s in seeds], [by_seed[m][s] for s in seeds])
            if baselines:
                strongest = max(baselines, key=lambda m: hierarchy[m]["all"]["mean"])
                tests = {"reference": REFERENCE, "baseline": strongest, "metric": "macro AUROC (all nodes)",
                         **all_tests[strongest]}
        pairs = {}
        for pair in self.cfg.pairs:  # e.g. CPC:S4-MAE, the encoder held and the objective changed
            a, b = pair.split(":")
            if a in results and b in results:
                per = {m: {r["seed"]: r["label_fractions"] for r in results[m]} for m in (a, b)}
                seeds = [s for s in self.cfg.seeds if s in per[a] and s in per[b]]
                pairs[pair] = {f: paired_tests([per[a][s][f] for s in seeds], [per[b][s][f] for s in seeds])
                               for f in fracs if all(per[m][s].get(f) is not None for m in (a, b) for s in seeds)}
        crosslead = {}
        for m, rs in results.items():
            cl = [r["crosslead"] for r in rs if r.get("crosslead")]
            if cl:
                crosslead[m] = {c: {"hidden_nmse": stat([x[c]["hidden_nmse"] for x in cl]),
                                    "same_lead_nmse": stat([x[c]["same_lead_nmse"] for x in cl]),
                                    "per_lead": {h: {"nmse": stat([x[c]["per_lead"][h]["nmse"] for x in cl]),
                                                     "corr": stat([x[c]["per_lead"][h]["corr"] for x in cl])}
                                                 for h in cl[0][c]["per_lead"]}}
                                for c in cl[0]}
        return {"config": asdict(self.cfg), "store": str(self.store.path),
                "n_records": {s: int((self.splits == s).sum()) for s in ("train", "val", "test")},
                "evaluation": (f"{len(self.plans)}-fold cross-validation over the store's folds, AUROC on the "
                               "pooled out-of-fold predictions" if self.cfg.cv else "the store's train/val/test split"),
                "nodes": self.targets.nodes, "levels": self.targets.levels,
                "supported_nodes": [n for n, ok in zip(self.targets.nodes, self.supported) if ok],
                "controls": self.controls(results), "hierarchy": hierarchy, "paired_test": tests,
                "paired_tests": all_tests, "pairs": pairs, "label_efficiency": efficiency, "crosslead": crosslead,
                "crosslead_hide": list(self.cfg.crosslead_hide), "results": results}

    def write(self, report: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "compare.json", json.dumps(report, indent=2, default=float))
        atomic_write_text(self.out / "compare.md", compare_markdown(report))
        plot_compare(report, self.out)


# where a run writes, on what, how many workers load it and where it logs: none changes a result
_NOT_SETTINGS = ("out", "device", "num_workers", "store", "tracker")


def _setting_defaults() -> dict:
    """Each model and training setting's value in a result stored before the setting existed, by
    name: its default, except where the default changed when it was added (the narrow routers
    of model format 3: results stored before them ran full-width routers)."""
    from dataclasses import fields

    from ..models.config import FORMAT_2_ROUTERS, LamaeConfig

    return {**{f.name: f.default for cls in (LamaeConfig, PretrainConfig) for f in fields(cls)
               if not callable(f.default_factory)}, **FORMAT_2_ROUTERS}


def _as_current(stored: dict, now: dict) -> dict:
    """``stored`` settings as lamae would write them today: a setting added since the result was
    stored (absent from it, present in ``now``) takes its default, which is what that run used,
    and the entries that change no result and are no longer recorded (``tracker``) are dropped.
    Compare the outcome with ``now``."""
    from ..models.config import FORMAT_2_ROUTERS

    defaults = _setting_defaults()

    def upgrade(a, b):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return a
        out = {k: upgrade(v, b.get(k)) for k, v in a.items() if k in b or k not in _NOT_SETTINGS}
        out.update({k: defaults[k] for k in b if k not in a and k in defaults})
        if "encoder" in out and out["encoder"] != "router":  # router settings change no other model
            out.update({k: b[k] for k in FORMAT_2_ROUTERS if k in b and k not in a})
        return out

    return upgrade(stored, now)


def _g4(v) -> str:
    """A test statistic to 4 significant digits; n/a where it is undefined."""
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.4g}"


def _ms(s: dict, digits: int = 4) -> str:
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s["std"] is not None else "")


def compare_markdown(r: dict) -> str:
    n = r["n_records"]
    models = list(r["hierarchy"])
    lines = ["# Model comparison", "",
             f"- store: `{r['store']}`; " + (
                 f"{sum(n.values())} labelled records, every one scored once out of fold"
                 if r["config"]["cv"] else
                 f"labelled records train {n['train']}, val {n['val']}, test {n['test']} (patient-disjoint)")
             + f"; seeds {r['config']['seeds']}",
             f"- evaluation: {r['evaluation']}",
             f"- {len(r['nodes'])} label nodes, {len(r['supported_nodes'])} with >= "
             f"{r['config']['min_test_positives']} test positives and negatives enter the macro averages",
             "- representation: frozen encoder + linear probe, except Scratch (trained end to end)", "",
             "## (a) Matched controls", "",
             "| model | params | vs LAMAE | matched | width / MLP ratio | mask | optimizer | schedule | steps | epochs | batch | GFLOPs/step | GFLOP/ECG | wall-clock s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["controls"]:
        fl = "-" if c["flops_per_step"] is None else f"{c['flops_per_step'] / 1e9:.2f}"
        per_ecg = "-" if c["flops_per_step"] is None else f"{c['flops_per_step'] / c['batch'] / 1e9:.3f}"
        wc = "-" if c["wall_clock_s"] is None else f"{c['wall_clock_s']:.0f}"
        note = f" (reads {c['reads']})" if c["reads"] else ""
        mask = ("-" if c["mask_ratio"] is None else f"{c['mask_ratio']}") + (
            f" + lead dropout {c['lead_dropout']}" if c.get("lead_dropout") else "")
        lines.append(f"| {c['model']}{note} | {c['parameters']:,} | {c['parameter_ratio']:.2f} | "
                     f"{'yes' if c['matched'] else 'no'} | {c['width']} / {c['mlp_ratio']} | "
                     f"{mask} | {c['optimizer']} | "
                     f"{c['schedule']} | {c['steps']} | {c['epochs']} | {c['batch']} | {fl} | {per_ecg} | {wc} |")
    levels = list(next(iter(r["hierarchy"].values())))
    lines += ["", "## (b) Macro AUROC per label level (mean ± std over seeds)", "",
              "| level | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for lv in levels:
        lines.append(f"| {lv} | " + " | ".join(_ms(r["hierarchy"][m][lv]) for m in models) + " |")
    lines += ["", "## (c) Paired tests over seeds", ""]
    t = r["paired_test"]
    if t is None:
        lines.append("Not available: LAMAE and at least one baseline are needed.")
    else:
        lines += [f"{t['reference']} against the strongest baseline by mean macro AUROC, **{t['baseline']}** "
                  f"({t['metric']}, {t['n']} paired seeds):", "",
                  "| mean difference | t | p (paired t) | W | p (Wilcoxon) | Cohen's d_z |", "|---|---|---|---|---|---|",
                  f"| {_g4(t['mean_diff'])} | {_g4(t['t'])} | {_g4(t['p_ttest'])} | {_g4(t['w'])} | "
                  f"{_g4(t['p_wilcoxon'])} | {_g4(t['cohens_dz'])} |", ""]
        if r.get("paired_tests"):
            lines += [f"{t['reference']} against every other model (positive: {t['reference']} higher):", "",
                      "| model | seeds | mean difference | t | p (paired t) | W | p (Wilcoxon) | Cohen's d_z |",
                      "|---|---|---|---|---|---|---|---|"]
            for m, u in r["paired_tests"].items():
                lines.append(f"| {m} | {u['n']} | {_g4(u['mean_diff'])} | {_g4(u['t'])} | {_g4(u['p_ttest'])} | "
                             f"{_g4(u['w'])} | {_g4(u['p_wilcoxon'])} | {_g4(u['cohens_dz'])} |")
            lines.append("")
        lines.append("With fewer than 6 seeds the two-sided Wilcoxon test cannot reach p < 0.05.")
    fracs = list(next(iter(r["label_efficiency"].values())))
    lines += ["", "## (d) Label efficiency: macro AUROC by fraction of training patients", "",
              "| model | " + " | ".join(f"{float(x):.0%}" for x in fracs) + " |", "|---|" + "---|" * len(fracs)]
    for m in models:
        lines.append(f"| {m} | " + " | ".join(_ms(r["label_efficiency"][m][x]) for x in fracs) + " |")
    lines += ["", "Scratch is trained on 100% of the training patients only. Fractions sample *patients* "
              "of the training split with each seed."]
    if r.get("pairs"):
        lines += ["", "Paired tests over seeds between the pairs asked for (`pairs`; positive: the first higher):", "",
                  "| pair | labels | seeds | mean difference | t | p (paired t) | p (Wilcoxon) |",
                  "|---|---|---|---|---|---|---|"]
        for pair, by_fraction in r["pairs"].items():
            for f, u in by_fraction.items():
                lines.append(f"| {pair.replace(':', ' - ')} | {float(f):.0%} | {u['n']} | {_g4(u['mean_diff'])} | "
                             f"{_g4(u['t'])} | {_g4(u['p_ttest'])} | {_g4(u['p_wilcoxon'])} |")
    if r.get("crosslead"):
        lines += crosslead_markdown(r)
    return "\n".join(lines) + "\n"


def crosslead_markdown(r: dict) -> list[str]:
    hide = r["crosslead_hide"]
    lines = ["", "## (e) Cross-lead reconstruction, and the latents ablated", "",
             f"Leads {', '.join(hide)} withheld together and rebuilt from the other leads, on the held-out "
             f"split (`{r['config']['crosslead_split']}`). nMSE = MSE / MSE of predicting zeros (1.0 = no better "
             "than zeros), r = correlation; mean ± std over seeds. For models with latents the rows "
             "*zero* and *shuffle* replace every latent a reader sees by zeros or by another ECG's "
             "(`lamae ablate`); *same lead*: patches masked at the same times in every lead, rebuilt "
             "from each lead's own visible patches.", "",
             "| model | latents | hidden nMSE | " + " | ".join(f"{h} nMSE / r" for h in hide) + " | same-lead nMSE |",
             "|---|---|---|" + "---|" * len(hide) + "---|"]
    for m, conds in r["crosslead"].items():
        for c, v in conds.items():
            cells = [f"{_ms(v['per_lead'][h]['nmse'], 3)} / {_ms(v['per_lead'][h]['corr'], 2)}" for h in hide]
            lines.append(f"| {m} | {c if c != 'none' else 'as trained' if len(conds) > 1 else '-'} | "
                         f"{_ms(v['hidden_nmse'], 3)} | " + " | ".join(cells) + f" | {_ms(v['same_lead_nmse'], 3)} |")
    return lines


def plot_compare(r: dict, out: Path) -> None:
    from ..plots import _plt

    plt = _plt()

    models = list(r["hierarchy"])
    levels = list(next(iter(r["hierarchy"].values())))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        means = [r["hierarchy"][m][lv]["mean"] or np.nan for lv in levels]
        stds = [r["hierarchy"][m][lv]["std"] or 0 for lv in levels]
        axes[0].bar(np.arange(len(levels)) + i * width, means, width, yerr=stds, label=m, capsize=2)
    axes[0].set_xticks(np.arange(len(levels)) + 0.4 - width / 2, levels)
    axes[0].axhline(0.5, color="k", lw=0.8, ls="--")
    axes[0].set_ylim(0.4, 1.0)
    axes[0].set_ylabel("macro AUROC (test)")
    axes[0].set_title("Linear probe by level (mean ± std over seeds)")
    axes[0].legend(fontsize=7, ncol=3)
    fracs = list(next(iter(r["label_efficiency"].values())))
    for m in models:
        xs = [float(f) for f in fracs if r["label_efficiency"][m][f]["mean"] is not None]
        ys = [r["label_efficiency"][m][f]["mean"] for f in fracs if r["label_efficiency"][m][f]["mean"] is not None]
        es = [r["label_efficiency"][m][f]["std"] or 0 for f in fracs if r["label_efficiency"][m][f]["mean"] is not None]
        if xs:
            axes[1].errorbar(xs, ys, yerr=es, marker="o", capsize=2, label=m)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("fraction of training patients")
    axes[1].set_ylabel("macro AUROC (test)")
    axes[1].set_title("Label efficiency")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, out / "compare.png", dpi=110)
    plt.close(fig)


def run_compare(cfg: CompareConfig, progress: bool = True) -> dict:
    """Pretrain every model of ``cfg`` for every seed (reusing runs already done), probe each,
    and write ``compare.md`` / ``compare.json`` and the plots into ``cfg.out``; returns the report."""
    t0 = time.time()
    report = Comparison(cfg, progress=progress).run()
    report["seconds"] = time.time() - t0
    return report
