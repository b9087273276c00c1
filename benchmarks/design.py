"""Design measurements: which LAMAE variant, readout, masking and normalisation, on one store.

For every variant x seed: pretrain (resumable; finished runs are reused), then

- probe every readout of the frozen encoder (the router latents' mean, the CLS-position
  latents, the patch-position latents, the mean of the lead CLS tokens = LAMAE_E), with
  linear probes cross-validated over the store's folds (PTB-XL) or on its split; the member's
  own pooled readout also with 1% and 10% of the training patients' labels (``lamae compare``'s
  label efficiency: the same patients drawn for the same seed);
- reconstruct withheld leads (III, aVF, V2, V5 together) on the held-out split (nMSE, r);
- ablate the latents (zero / shuffle) and report the change in hidden-lead and same-lead error.

A variant is NAME[:key=value,...] where NAME is a family member and keys are model settings
(``router_latents=4``) or the pretraining's ``lead_dropout``/``limb_dropout`` (0 unless named,
whatever the member recommends):

    python benchmarks/design.py --store STORE --out /tmp/design --seeds 0 1 \\
        --variant LAMAE --variant LAMAE:router_every=2 --variant LAMAE-global:n_latents=8

``--pretrain-store`` pretrains on another store than the one probed (the held-out check: an
encoder probed on ECGs it never saw, as a user's own data would be); ``--pretrain-folds`` then
selects that store's folds. ``--runs`` takes the pretraining runs from another design folder (any
missing are trained there), so one set of runs is probed on a second store without retraining.
``--size`` (default ``tiny``, the comparisons' budget) and ``--device`` (default ``cpu``; ``cuda``
or ``auto`` on a GPU machine) set where and how large every variant trains; a finished run is
reused only if its settings, size included, are the ones asked for.

Prints, for the variants named (mean ± std over seeds): every readout's probe with the withheld
leads' nMSE and r; the pooled readout with fewer labels, the hidden leads' mean nMSE and the
pretraining's seconds; and, over two seeds or more, each variant paired with the first (the
difference, the paired t-test, and in how many seeds the variant's figure is the higher). Writes
design.json with every variant x seed finished in --out (each also keeps its own result.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lamae.api import load
from lamae.data.store import EcgStore
from lamae.eval.compare import CompareConfig, Comparison, _level_macro, _patient_subset
from lamae.eval.crosslead import crosslead_ablation, has_latents
from lamae.eval.metrics import node_aurocs
from lamae.embedding import embed_store
from lamae.errors import LamaeError
from lamae.eval.probe import fit_linear_probe
from lamae.models.config import SIZES
from lamae.eval.reconstruction import reconstruction_errors
from lamae.train.pretrain import PretrainConfig, check_finished_run, ensure_pretrained
from _cli import positive_int, run  # benchmarks/, the folder this script runs from

TRAIN_KEYS = {"lead_dropout", "limb_dropout"}
HIDE = ["III", "aVF", "V2", "V5"]
FRACTIONS = ("0.01", "0.1")  # label fractions probed for the pooled readout (100% is "probe")
POOLED = ("latents", "pooled")  # the readout that is a member's own pooled output (see ``pooled``)


def parse_variant(spec: str) -> tuple[str, dict, dict]:
    """``NAME:key=value,...`` (equal_config.py's parser) -> (member, model settings, training settings)."""
    from equal_config import parse_variant as parse

    name, over = parse(spec)
    train = {k: over.pop(k) for k in list(over) if k in TRAIN_KEYS}
    return name, over, train


def probe_cv(cmp: Comparison, feats: np.ndarray, fraction: float = 1.0, seed: int = 0) -> float:
    """Macro AUROC of linear probes over the comparison's plans (pooled out-of-fold predictions),
    each fitted on the labels of ``fraction`` of its training patients (drawn as ``lamae compare``
    draws them for ``seed``)."""
    y = cmp.targets.y.astype(np.float64)
    oof = np.full(y.shape, np.nan)
    scored = np.zeros(len(y), bool)
    for tr, va, te in cmp.plans:
        if fraction < 1:
            tr = tr[_patient_subset(cmp.store, cmp.rows[tr], fraction, seed)]
        probe = fit_linear_probe(feats[tr], y[tr], feats[va], y[va])
        oof[te] = probe.predict(feats[te])
        scored[te] = True
    aucs = node_aurocs(y[scored], oof[scored])
    return _level_macro(aucs, cmp.targets.levels, cmp.supported)["all"]


def readouts(model) -> dict[str, tuple[str, str | None]]:
    """name -> (pooling, readout) to probe for this model."""
    if model.model.cfg.encoder == "s4":
        return {"pooled": ("latent", None)}  # CPC, S4-MAE: the encoder's mean over time, their only readout
    if model.model.cfg.encoder == "router":
        return {"latents": ("latent", "latents"), "cls_latents": ("latent", "cls_latents"),
                "patch_latents": ("latent", "patch_latents"), "lead_cls": ("leads", None)}
    return {"pooled": ("latent", None), "lead_cls": ("leads", None)}


def run_one(args, store: EcgStore, cmp: Comparison, spec: str, seed: int) -> dict:
    name, model_over, train_over = parse_variant(spec)
    train_over.setdefault("lead_dropout", 0.0)  # explicit: a variant names its lead dropout, or has none
    cell = Path(spec.replace(":", "__").replace(",", "_").replace("=", "-")) / f"seed-{seed}"
    folder = Path(args.out) / cell
    result_path = folder / "result.json"
    pretrain_on = args.pretrain_store or str(store.path)  # the probe's store unless another is named
    runs = Path(args.runs or args.out) / cell / "pretrain"  # --runs: another folder's pretraining, reused
    cfg = PretrainConfig(store=pretrain_on, out=str(runs), size=args.size, architecture=name,
                         model=model_over, steps=args.steps, batch_size=args.batch_size, base_lr=args.base_lr,
                         warmup_steps=args.warmup, checkpoint_every=max(1, args.steps // 4), seed=seed, device=args.device,
                         folds=args.pretrain_folds, **train_over)
    if result_path.exists():
        check_finished_run(cfg)  # a member's default may have changed since the run
        res = json.loads(result_path.read_text())
        if "fractions" not in res:  # a result from before the label fractions: add them
            model = load(runs, device=args.device)
            feats, _ = embed_store(model.model, store, cmp.rows, pooling="latent", device=model.device, progress=False)
            res["fractions"] = fraction_probes(cmp, feats, seed)
            result_path.write_text(json.dumps(res, indent=2))
        return res
    ensure_pretrained(cfg, progress=False)
    model = load(runs, device=args.device)
    res = {"variant": spec, "seed": seed, "probe": {},
           "pretrain_seconds": model.config.get("training", {}).get("seconds")}
    for label, (pooling, readout) in readouts(model).items():
        if readout is not None:
            model.model.aggregator.readout = readout
        feats, _ = embed_store(model.model, store, cmp.rows, pooling=pooling, device=model.device, progress=False)
        res["probe"][label] = probe_cv(cmp, feats)
        if label in POOLED:  # the member's own pooled readout: also with fewer labels
            res["fractions"] = fraction_probes(cmp, feats, seed)
    if model.model.cfg.encoder == "router":
        model.model.aggregator.readout = model.model.cfg.readout
    if model.model.cfg.objective == "mae":  # CPC rebuilds no lead
        rec = reconstruction_errors(model, store, HIDE, split=args.split)
        res["recon"] = {h: {"nmse": v["nmse"], "corr": v["corr"]} for h, v in rec.items()}
    if has_latents(model.model):
        abl = crosslead_ablation(model, store, HIDE, split=args.split)
        res["ablation"] = {c: {"hidden_nmse": v["hidden_nmse"], "same_nmse": v["same_lead"]["nmse"]}
                           for c, v in abl["conditions"].items()}
    folder.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(res, indent=2))
    return res


def fraction_probes(cmp: Comparison, feats: np.ndarray, seed: int) -> dict[str, float]:
    """The pooled readout's features probed with ``FRACTIONS`` of the training patients' labels."""
    return {f: probe_cv(cmp, feats, float(f), seed) for f in FRACTIONS}


def ms(vals) -> str:
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "-"
    return f"{np.mean(vals):.3f}" + (f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--size", default="tiny", choices=list(SIZES))
    ap.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (pretraining and evaluation)")
    ap.add_argument("--steps", type=positive_int, default=800)
    ap.add_argument("--batch-size", type=positive_int, default=32)
    ap.add_argument("--base-lr", type=float, default=0.024)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--cv", action="store_true", help="cross-validate probes over the store's folds (PTB-XL)")
    ap.add_argument("--split", default="test", help="split for reconstruction and ablation")
    ap.add_argument("--pretrain-folds", type=int, nargs="+", help="pretrain only on these folds (PTB-XL: 1-8)")
    ap.add_argument("--runs", help="the folder whose pretraining runs (RUNS/VARIANT/seed-N/pretrain) to use, "
                    "training any missing there; default --out. Probes one set of runs on another store")
    ap.add_argument("--pretrain-store", help="pretrain on this store (prepared as --store was) and probe --store, "
                    "so the probes and rebuilt leads are on ECGs the encoder never saw")
    args = ap.parse_args(argv)
    store = EcgStore(args.store)
    if args.pretrain_store:
        other = EcgStore(args.pretrain_store, verify=False).preprocessing  # pretraining verifies its rows
        if other != store.preprocessing:  # the encoder would be probed on other inputs than it learned
            raise LamaeError(f"{args.pretrain_store} was prepared with {other}, {args.store} with "
                             f"{store.preprocessing}; prepare both alike to pretrain on one and probe the other")
    cmp = Comparison(CompareConfig(store=args.store, out=args.out, models=["LAMAE"], cv=args.cv), progress=False)
    results = [run_one(args, store, cmp, v, s) for v in args.variant for s in args.seeds]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    # design.json collects every variant x seed finished in this folder, earlier invocations' too
    everything = [json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*/seed-*/result.json"))]
    (Path(args.out) / "design.json").write_text(json.dumps(everything, indent=2))
    if args.pretrain_store:
        print(f"pretrained on {args.pretrain_store}" + (f" (folds {args.pretrain_folds})" if args.pretrain_folds else ""))
    print(f"store {args.store}; seeds {args.seeds}; {args.size}, {args.steps} steps x {args.batch_size}\n")
    print("| variant | readout | probe macro AUROC | " + " | ".join(f"{h} nMSE / r" for h in HIDE)
          + " | hidden nMSE: intact / zero / shuffle | same-lead nMSE: intact / zero / shuffle |")
    print("|---|---|---|" + "---|" * len(HIDE) + "---|---|")
    fractions = []
    for v in args.variant:
        rs = [r for r in results if r["variant"] == v]
        for label in rs[0]["probe"]:
            rec = (" | ".join(f"{ms([r['recon'][h]['nmse'] for r in rs])} / {ms([r['recon'][h]['corr'] for r in rs])}"
                              for h in HIDE) if "recon" in rs[0] else " | ".join("-" for _ in HIDE))
            if "ablation" in rs[0]:
                hid = " / ".join(ms([r["ablation"][c]["hidden_nmse"] for r in rs]) for c in ("none", "zero", "shuffle"))
                same = " / ".join(ms([r["ablation"][c]["same_nmse"] for r in rs]) for c in ("none", "zero", "shuffle"))
            else:
                hid = same = "-"
            print(f"| {v} | {label} | {ms([r['probe'][label] for r in rs])} | {rec} | {hid} | {same} |")
        fractions.append(f"| {v} | " + " | ".join(ms([r["fractions"][f] for r in rs]) for f in FRACTIONS)
                         + f" | {ms([pooled(r) for r in rs])} | {ms([hidden_nmse(r) for r in rs])}"
                         + f" | {ms([r.get('pretrain_seconds') for r in rs])} |")
    print("\nthe pooled readout with fewer labels (fractions of the training patients), the withheld leads' "
          "mean nMSE and the pretraining's seconds\n")
    print("| variant | " + " | ".join(f"{float(f):.0%}" for f in FRACTIONS) + " | 100% | hidden nMSE | pretraining s |")
    print("|---|" + "---|" * (len(FRACTIONS) + 3))
    print("\n".join(fractions))
    if len(args.variant) > 1 and len(args.seeds) > 1:
        print_paired(args.variant, results)


def pooled(r: dict) -> float:
    """A result's pooled probe: the router latents' mean for the router members, else the pooled readout."""
    return next((r["probe"][k] for k in POOLED if k in r["probe"]), np.nan)


def hidden_nmse(r: dict) -> float:
    """A result's hidden-lead error: the mean nMSE of the leads withheld together (``HIDE``), for
    every member that rebuilds leads (the latents' ablation reports the same mean for its intact
    condition); NaN for CPC, which rebuilds none."""
    return float(np.mean([v["nmse"] for v in r["recon"].values()])) if r.get("recon") else np.nan


def print_paired(variants: list[str], results: list[dict]) -> None:
    """Each variant minus the first, seed by seed: the pooled probe (each member's own pooled
    representation: the router latents' mean for the router members, the pooled readout of the
    others, so LAMAE pairs with IndS too), the lead CLS readout and the hidden-lead nMSE, with
    the paired t-test over the seeds both ran."""
    from lamae.eval.stats import paired_tests

    def measure(r, what):
        if what == "hidden nMSE":
            return hidden_nmse(r)
        if what == "pooled":
            return pooled(r)
        if what in FRACTIONS:
            return r["fractions"][what]
        return r["probe"].get(what, np.nan)

    first = {r["seed"]: r for r in results if r["variant"] == variants[0]}
    whats = ["pooled", *FRACTIONS, "lead_cls", "hidden nMSE"]
    print(f"\npaired against {variants[0]} (difference of the means over the same seeds; t, p of the paired t-test; "
          "in how many of those seeds the variant's figure is the higher)\n")
    heads = {"pooled": "pooled", "0.01": "pooled, 1% of labels", "0.1": "pooled, 10%"}
    print("| variant | seeds | " + " | ".join(heads.get(w, w) for w in whats) + " |")
    print("|---|---|" + "---|" * len(whats))
    for v in variants[1:]:
        rs = {r["seed"]: r for r in results if r["variant"] == v and r["seed"] in first}
        cells = []
        for what in whats:
            a = np.array([measure(rs[s], what) for s in sorted(rs)], float)
            b = np.array([measure(first[s], what) for s in sorted(rs)], float)
            ok = np.isfinite(a) & np.isfinite(b)
            t = paired_tests(a[ok], b[ok])
            cells.append(f"{t['mean_diff']:+.3f} (t {t['t']:.2f}, p {t['p_ttest']:.2g}; higher in {int((a[ok] > b[ok]).sum())}/{ok.sum()})"
                         if ok.sum() > 1 else "-")
        print(f"| {v} | {len(rs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    run(main)  # a run that cannot be reused or read: its message, not a traceback
