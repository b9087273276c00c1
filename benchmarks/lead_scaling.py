"""Cost of a pretraining step versus the number of leads: LAMAE against the joint model.

LAMAE's encoder attends within one lead at a time, so its cost grows linearly with the
number of leads; the joint model (ST-MEM's design) attends over all leads' tokens in one
sequence, so its attention grows quadratically. For 1 to 12 leads this prints FLOPs per
step (counted by torch's FlopCounterMode) and measured step time, the growth exponent fitted
on a log-log scale, and writes a plot.

    python benchmarks/lead_scaling.py                       # tiny, 500 Hz, batch 16
    python benchmarks/lead_scaling.py --size small --fs 250 --out lead_scaling.png
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lamae.models.family import model_config
from lamae.models.lamae import Lamae
from lamae.utils.flops import training_step_flops
from _cli import SIZES, lead_count, positive_float, positive_int, run  # benchmarks/, the folder this script runs from


def step_seconds(model, batch: int, n_leads: int, repeats: int) -> float:
    x = torch.randn(batch, n_leads, model.cfg.n_samples)
    leads = torch.arange(n_leads)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        model(x, leads)["loss"].backward()
        model.zero_grad(set_to_none=True)
        if i:  # the first is warm-up
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def slope(n, y) -> float:
    return float(np.polyfit(np.log(n), np.log(y), 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny", choices=SIZES)
    ap.add_argument("--fs", type=positive_float, default=500.0)
    ap.add_argument("--batch-size", type=positive_int, default=16)
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--leads", type=lead_count, nargs="+", default=[1, 2, 3, 4, 6, 8, 12])
    ap.add_argument("--out", default="lead_scaling.png", help="plot (PNG)")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    models = {name: Lamae(model_config(name, a.size, fs=a.fs)) for name in ("LAMAE", "Joint")}
    res = {name: {"gflop": [], "s": []} for name in models}
    print(f"size {a.size}, {a.fs:g} Hz, 10 s, batch {a.batch_size}; forward + backward of one step\n")
    print(f"{'leads':>5}" + "".join(f"{name + ' GFLOP':>14}{name + ' s':>11}" for name in models))
    for n in a.leads:
        line = f"{n:>5}"
        for name, model in models.items():
            g = training_step_flops(model, a.batch_size, n) / 1e9
            s = step_seconds(model, a.batch_size, n, a.repeats)
            res[name]["gflop"].append(g)
            res[name]["s"].append(s)
            line += f"{g:>14.1f}{s:>11.3f}"
        print(line, flush=True)
    print("\ngrowth exponent k in cost ~ leads^k (log-log fit):")
    for name in models:
        print(f"  {name:<6} FLOPs k = {slope(a.leads, res[name]['gflop']):.2f}   "
              f"time k = {slope(a.leads, res[name]['s']):.2f}   "
              f"12 leads / 1 lead: FLOPs x{res[name]['gflop'][-1] / res[name]['gflop'][0]:.1f}, "
              f"time x{res[name]['s'][-1] / res[name]['s'][0]:.1f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name in models:
        axes[0].plot(a.leads, res[name]["gflop"], "o-", label=name)
        axes[1].plot(a.leads, res[name]["s"], "o-", label=name)
    axes[0].set_ylabel("GFLOP per step")
    axes[1].set_ylabel("seconds per step (CPU)" if not torch.cuda.is_available() else "seconds per step")
    for ax in axes:
        ax.set_xlabel("number of leads")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"step cost vs leads ({a.size}, {a.fs:g} Hz, batch {a.batch_size})")
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"\nplot: {a.out}")


if __name__ == "__main__":
    run(main)
