"""How long one pass over a corpus takes, per family member, from counted FLOPs.

Counts each member's training-step FLOPs per ECG (forward and backward, torch's counter, batch
of 2 halved) at a size and rate, then turns a measured throughput of one member (``--measured NAME=ECGS_PER_S``,
e.g. LAMAE's 504 ECGs/s for ``base`` at 500 Hz on one H100, docs/speed.md) into that member's
achieved FLOP/s and projects every member's ECGs/s and pass time at the same achieved rate. Only
the measured member's row is a measurement; the others assume its utilisation. The FLOPs column
(and each member's FLOPs against the measured one's) is a count, whatever throughput is given.

    python benchmarks/pass_time.py                                  # base, 500 Hz, 800k ECGs, LAMAE=504
    python benchmarks/pass_time.py --members LAMAE Joint IndS --size small --measured LAMAE=1873
    python benchmarks/pass_time.py --members LAMAE Joint IndS LAMAE:router_width=1.0,latent_mlp=true \
        --measured LAMAE:router_width=1.0,latent_mlp=true=504     # a member with settings changed

A member may be ``NAME:key=value,...`` (model settings changed, as in equal_config.py).
"""

from __future__ import annotations

import argparse

import torch

from lamae.models.family import FAMILY, make_model, model_config
from lamae.utils.flops import training_step_flops
from _cli import positive_float, positive_int, run  # benchmarks/, the folder this script runs from


def flops_per_ecg(spec: str, size: str, fs: float) -> tuple[int, int]:
    """(parameters, FLOPs of a training step on one 10 s ECG) of member ``spec`` (NAME[:k=v,...])."""
    from equal_config import parse_variant

    name, over = parse_variant(spec)
    torch.manual_seed(0)
    model = make_model(model_config(name, size, fs=fs, window_s=10.0, **over))
    return model.num_parameters(), training_step_flops(model, 2) // 2  # CPC needs 2 ECGs (negatives)


def _figure(x: float) -> str:
    """Three significant digits (0.488, 45.3), whole numbers from 100 on (447, 1326)."""
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", nargs="+", default=["LAMAE", "Joint", "IndS"],
                    help=f"members ({', '.join(sorted(FAMILY))}), each optionally NAME:key=value,...")
    ap.add_argument("--size", default="base", choices=["tiny", "small", "base"])
    ap.add_argument("--fs", type=positive_float, default=500.0)
    ap.add_argument("--ecgs", type=positive_int, default=800_000, help="corpus size (MIMIC-IV-ECG: 800,000)")
    ap.add_argument("--measured", default="LAMAE=504", metavar="NAME=ECGS_PER_S",
                    help="one member's measured training throughput (default: LAMAE base at 500 Hz, compiled, "
                         "one H100, docs/speed.md)")
    args = ap.parse_args(argv)
    ref, _, rate = args.measured.rpartition("=")
    if ref not in args.members:
        ap.error(f"--measured names {ref!r}, which is not among --members")
    counted = {name: flops_per_ecg(name, args.size, args.fs) for name in args.members}
    achieved = float(rate) * counted[ref][1]
    print(f"{args.size} at {args.fs:g} Hz, 10 s ECGs; {ref} measured at {float(rate):g} ECGs/s, i.e. "
          f"{achieved / 1e12:.0f} TFLOP/s achieved; the other rows assume that rate\n")
    print(f"| member | parameters | GFLOP per ECG (fwd + bwd) | FLOPs / {ref}'s | ECGs/s | one pass over {args.ecgs:,} ECGs |")
    print("|---|---|---|---|---|---|")
    for name, (params, flops) in counted.items():
        per_s = achieved / flops
        kind = "measured" if name == ref else "projected"
        print(f"| {name} | {params / 1e6:.3g}M | {_figure(flops / 1e9)} | {flops / counted[ref][1]:.2f}x | {per_s:.0f} ({kind}) | "
              f"{args.ecgs / per_s / 60:.1f} min |")


if __name__ == "__main__":
    run(main)
