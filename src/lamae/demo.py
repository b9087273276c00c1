"""``lamae demo``: the whole path on built-in synthetic data, in minutes on a laptop CPU.

Every stage resumes: run it again after an interruption and finished work is reused.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .data.preprocess import Preprocessing
from .data.sources import MimicEcgReader
from .data.store import prepare
from .data.synth import CONDITION_CODES, NO_SIGNATURE_CODES, synthesize_mimic
from .eval.bootstrap import paired_macro_difference
from .eval.probe import run_probe
from .train.pretrain import PretrainConfig, ensure_pretrained

# The demo's model and schedule: LAMAE at the "tiny" size, 100 Hz, with its recommended
# pretraining (lead dropout 0.25, filled in by pretrain); tuned to learn within minutes.
DEMO_MODEL: dict = {}


# The default run fits in five minutes on a 2-core CPU; --full is the longer run it replaced.
QUICK = {"records": 2000, "steps": 300}
FULL = {"records": 2000, "steps": 1000}


def run_demo(out: str | Path = "lamae-demo", *, records: int = QUICK["records"], steps: int = QUICK["steps"],
             workers: int = 2, progress: bool = True, window_s: float = 10.0) -> dict:
    """synth -> prepare -> pretrain (tiny LAMAE) -> probe on built-in synthetic data, printing the
    probe's tables and the sanity check: on the synthetic codes with an ECG signature the
    pretrained encoder must beat its random initialisation by more than 5 paired standard errors,
    and on the codes without one both must stay at chance."""
    for name, value in (("records", records), ("steps", steps), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    from .files import claim_output

    out = claim_output(out, "demo", writes=("data", "store", "run", "probe"))
    timings = {}

    def stage(name, fn):
        print(f"\n== {name} ==", flush=True)
        t = time.time()
        result = fn()
        timings[name] = round(time.time() - t, 1)
        return result

    data = out / "data"
    if not (data / "record_list.csv").exists():
        stage("synth", lambda: synthesize_mimic(data, records, seed=0, workers=workers, progress=progress))
    store = stage("prepare", lambda: prepare(MimicEcgReader(data), out / "store", Preprocessing(window_s=window_s),
                                             workers=workers, progress=progress))
    cfg = PretrainConfig(store=str(out / "store"), out=str(out / "run"), size="tiny", model=DEMO_MODEL,
                         steps=steps, batch_size=64, base_lr=0.012, warmup_steps=max(1, steps // 20),
                         checkpoint_every=max(1, steps // 4), log_every=10)
    stage("pretrain", lambda: ensure_pretrained(cfg, progress=progress))
    report = stage("probe", lambda: run_probe(out / "run", out / "store", out / "probe", progress=progress))
    print("\n" + (out / "probe" / "probe.md").read_text())
    print(signature_summary(report, out / "probe" / "probe_scores.npz"))
    verdict = sanity_check(report, out / "probe" / "probe_scores.npz")
    if verdict:
        print(verdict)
    print(f"stage seconds: {timings}")
    print(f"files: {out / 'run' / 'loss.png'}, {out / 'probe' / 'probe.md'}, {out / 'probe' / 'roc.png'}")
    return {"timings": timings, "report": report, "store_rows": len(store)}


def sanity_check(report: dict, scores: str | Path) -> str | None:
    """One line saying whether the demo's check held: pretrained minus random on the signature
    codes above 5 standard errors, and within 3 on the codes without a signature."""
    if not Path(scores).exists():
        return None
    diff = np.load(scores)
    nodes = list(diff["nodes"])
    rows = {r["node"] for r in report["nodes"] if r["in_macro"]}
    out = []
    for codes in (sorted(set(CONDITION_CODES.values())), list(NO_SIGNATURE_CODES)):
        cols = [nodes.index(c) for c in codes if c in rows and c in nodes]
        if not cols:
            return None
        d = paired_macro_difference(diff["y_test"], diff["p_test"][0], diff["p_test"][1], cols)
        out.append(d["difference"] / d["se"] if d["se"] > 0 else float("inf"))
    ok = out[0] > 5 and abs(out[1]) < 3
    return (f"sanity check {'PASSED' if ok else 'FAILED'}: on the codes with an ECG signature pretraining beats random "
            f"initialisation by {out[0]:.1f} standard errors (needs > 5); on the codes without one the difference "
            f"is {out[1]:+.1f} standard errors (needs to stay within 3)")


def signature_summary(report: dict, scores: str | Path | None = None) -> str:
    """Macro AUROC over the synthetic codes that have an ECG signature and over those that don't.

    The generator knows the truth: a representation worth having is high on the first group;
    every representation must be near 0.5 on the second. With ``scores`` (the probe's
    ``probe_scores.npz``), the pretrained-minus-random difference on each group is added with
    its paired bootstrap standard error over test ECGs.
    """
    rows = {r["node"]: r for r in report["nodes"] if r["in_macro"]}
    groups = (("with an ECG signature", sorted(set(CONDITION_CODES.values()))),
              ("without one (chance expected)", list(NO_SIGNATURE_CODES)))
    names = list(report["macro"])
    diff = None
    if scores is not None and Path(scores).exists() and names[:2] == ["LAMAE", "random init"]:
        diff = np.load(scores)
    lines = ["| synthetic codes | codes | " + " | ".join(names) + (" | difference ± SE |" if diff is not None else " |"),
             "|---|---|" + "---|" * (len(names) + (diff is not None))]
    for title, codes in groups:
        kept = [c for c in codes if c in rows]
        cells = []
        for name in names:
            vals = [rows[c][name] for c in kept if rows[c][name] is not None]
            cells.append(f"{sum(vals) / len(vals):.4f}" if vals else "n/a")
        if diff is not None:
            nodes = list(diff["nodes"])
            cols = [nodes.index(c) for c in kept]
            d = paired_macro_difference(diff["y_test"], diff["p_test"][0], diff["p_test"][1], cols)
            cells.append(f"{d['difference']:+.4f} ± {d['se']:.4f}" if cols else "n/a")
        lines.append(f"| {title} | {len(kept)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
