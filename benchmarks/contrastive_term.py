"""The contrastive term (``nce_weight``) of a pretrained S4-LAMAE / S4-IndS run on held-out ECGs:
whether it learned its task, against a freshly initialised model of the same settings and the
chance level (the log of the candidates each masked frame picks from).

    python benchmarks/contrastive_term.py RUN --store STORE [--split test] [--batch-size 32]

Prints the term (and the reconstruction loss) of the trained and the fresh model on the first
``--batch-size`` ECGs of ``--split``, under the same patch mask.
"""

from __future__ import annotations

import argparse
import math

import torch

from lamae.api import load
from lamae.data.store import EcgStore
from lamae.errors import LamaeError
from lamae.models.family import make_model
from _cli import positive_int, run  # benchmarks/, the folder this script runs from


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a pretraining run or checkpoint folder")
    ap.add_argument("--store", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--batch-size", type=positive_int, default=32)
    args = ap.parse_args(argv)
    trained = load(args.run).model.eval()
    if getattr(trained, "nce_head", None) is None:
        raise LamaeError(f"{args.run}: its model has no contrastive term (train it with --set model.nce_weight=...)")
    store = EcgStore(args.store)
    x, present = store.batch(store.rows(args.split)[: args.batch_size], "cpu")[:2]
    torch.manual_seed(0)
    fresh = make_model(trained.cfg).eval()
    n = x.shape[0] * x.shape[1]
    print(f"{args.run} on {len(x)} ECGs of {args.store}'s {args.split} split; chance: log({trained.n_frames} own "
          f"frames + {n - 1} other leads) = {math.log(trained.n_frames + n - 1):.2f}\n")
    print("| model | contrastive term | reconstruction |\n|---|---|---|")
    with torch.no_grad():
        for name, model in (("trained", trained), ("fresh", fresh)):
            out = model(x, torch.arange(x.shape[1]), present, generator=torch.Generator().manual_seed(0))
            print(f"| {name} | {float(out['nce']):.2f} | {float(out['reconstruction']):.3f} |")


if __name__ == "__main__":
    run(main)
