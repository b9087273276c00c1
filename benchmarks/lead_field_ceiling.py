"""How well can a fixed linear map rebuild withheld leads from the others? The ceiling for LAMAE.

Every surface lead is close to a linear projection of a few cardiac sources (III = II - I
exactly), so one least-squares map per withheld lead, fitted on the training split's samples
and scored on the held-out split, says how much of a withheld lead the visible leads determine
linearly. It is computed on the store's own normalisation and, for comparison, after z-scoring
each lead of each ECG (which puts a per-ECG scale on every lead, so no fixed map is exact).
This motivated the lead field (``src/lamae/models/leadfield.py``); ``lamae reconstruct`` scores
the model the same way (mean over ECGs of nMSE and of the correlation).

    python benchmarks/lead_field_ceiling.py --store STORE                 # III, aVF, V2, V5 withheld
    python benchmarks/lead_field_ceiling.py --store STORE --hide V1 V2 V3 V4 V5 V6
"""

from __future__ import annotations

import argparse

import numpy as np

from lamae.data.preprocess import normalize
from lamae.data.store import EcgStore
from lamae.leads import STANDARD_LEADS, lead_indices
from _cli import lead_name, run  # benchmarks/, the folder this script runs from


def lead_zscore(x: np.ndarray) -> np.ndarray:
    """(n, 12, T) -> each lead of each ECG z-scored, as ``prepare --normalize lead_zscore`` does."""
    return np.stack([normalize(ecg, "lead_zscore") for ecg in x]).astype(np.float32)


def ceiling(train: np.ndarray, test: np.ndarray, hidden: list[int]) -> dict[str, tuple[float, float]]:
    """(n, 12, T) arrays -> {lead: (nMSE, r)} for a least-squares map from the other leads."""
    given = [i for i in range(train.shape[1]) if i not in hidden]
    a = train[:, given].transpose(0, 2, 1).reshape(-1, len(given))
    out = {}
    for h in hidden:
        w, *_ = np.linalg.lstsq(a, train[:, h].reshape(-1), rcond=None)
        pred, y = np.einsum("nlt,l->nt", test[:, given], w), test[:, h]
        nmse = float(np.mean(((pred - y) ** 2).mean(-1) / np.maximum((y ** 2).mean(-1), 1e-12)))
        r = float(np.mean([np.corrcoef(p, q)[0, 1] for p, q in zip(pred, y) if q.std() > 0 and p.std() > 0]))
        out[STANDARD_LEADS[h]] = (nmse, r)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--hide", nargs="+", type=lead_name, default=["III", "aVF", "V2", "V5"])
    ap.add_argument("--fit-split", default="train")
    ap.add_argument("--split", default="test")
    args = ap.parse_args(argv)
    store = EcgStore(args.store)
    hidden = lead_indices(args.hide)

    def complete(split):  # ECGs with all 12 leads
        rows = store.rows(split)
        return np.asarray(store.signals[rows[store.lead_mask(rows).all(1)]], dtype=np.float32)

    train, test = complete(args.fit_split), complete(args.split)
    if not len(train) or not len(test):
        raise SystemExit(f"{args.store}: no complete 12-lead ECGs in split {args.fit_split!r} or {args.split!r}")
    norm = store.meta["preprocessing"].get("normalize", "?")
    print(f"fitted on {len(train)} ECGs ({args.fit_split}), scored on {len(test)} ({args.split}); "
          f"withheld together: {', '.join(args.hide)}")
    print("| normalisation | " + " | ".join(f"{h} nMSE / r" for h in args.hide) + " |")
    print("|---|" + "---|" * len(args.hide))
    for name, f in ((f"the store's ({norm})", lambda a: a), ("each lead z-scored per ECG", lead_zscore)):
        res = ceiling(f(train), f(test), hidden)
        print(f"| {name} | " + " | ".join(f"{res[h][0]:.3f} / {res[h][1]:.2f}" for h in args.hide) + " |")


if __name__ == "__main__":
    run(main)
