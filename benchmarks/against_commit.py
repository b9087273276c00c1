"""Training steps of this checkout against an earlier commit's code, same weights, one process.

The earlier commit's ``src/lamae`` is exported (``git archive``) into a temporary folder and
imported under another name, so both versions run side by side: the same configuration, the
same batch, the earlier model's weights loaded into today's, their steps interleaved so that a
noisy, shared machine slows them alike. Prints both losses on one batch (equal when the change
keeps the model's function) and the median s/step of each.

    python benchmarks/against_commit.py 77dcfd5                           # LAMAE, tiny, 250 Hz, batch 64
    python benchmarks/against_commit.py 77dcfd5 --member Joint --size small --rate 500 --batch-size 16
    python benchmarks/against_commit.py 77dcfd5 --stmem                    # ST-MEM's configuration, batch 16
    python benchmarks/against_commit.py 77dcfd5 --stmem --input mimic500   # the same at 12 x 5000, 500 Hz
"""

from __future__ import annotations

import argparse
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

import lamae
from lamae.errors import LamaeError
from lamae.models.family import model_config
from lamae.models.lamae import Lamae
from lamae.train.common import make_optimizer, param_groups
from lamae.utils.memory import keep_freed_memory
from equal_config import INPUTS, STMEM  # benchmarks/, the folder this script runs from
from throughput import WARMUP  # the steps every benchmark runs untimed
from _cli import positive_int, run  # benchmarks/, the folder this script runs from

ROOT = Path(__file__).resolve().parents[1]


def import_at(commit: str, into: Path):
    """The package as it was at ``commit``, imported as ``lamae_<commit>``."""
    name = f"lamae_{commit}"
    done = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src/lamae"], capture_output=True)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise LamaeError(f"commit {commit!r}: git cannot read lamae at it ({why[-1] if why else 'no such commit'})")
    archive = done.stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "src" / "lamae").rename(into / name)
    sys.path.insert(0, str(into))
    for module in ("", ".models.family", ".models.lamae"):
        importlib.import_module(name + module)
    return sys.modules[name]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("commit", help="an earlier commit (any name git understands)")
    ap.add_argument("--member", default="LAMAE")
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--rate", type=float, default=250.0)
    ap.add_argument("--batch-size", type=positive_int, default=64)
    ap.add_argument("--stmem", action="store_true", help="ST-MEM's configuration (equal_config.py), batch 16")
    ap.add_argument("--input", choices=sorted(INPUTS),
                    help="with --stmem: ST-MEM's input (default) or MIMIC-IV-ECG's 500 Hz one (equal_config.py)")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    if a.input and not a.stmem:
        ap.error("--input picks the input of --stmem's configuration; without it use --rate")
    a.input = a.input or "stmem"
    keep_freed_memory()  # as lamae's training does; process-wide, so both versions get it
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "--verify", "--quiet",
                            f"{a.commit}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        raise LamaeError(f"commit {a.commit!r}: git knows no such commit in {ROOT}")
    sha = found.stdout.strip()
    shared, size, batch = {"fs": a.rate}, a.size, a.batch_size
    if a.stmem:
        shared, size, batch = {**STMEM, **INPUTS[a.input]}, "small", 16
    with tempfile.TemporaryDirectory() as tmp:
        old = import_at(sha, Path(tmp))
        torch.manual_seed(0)
        models = {sha: old.models.lamae.Lamae(old.models.family.model_config(a.member, size, shared)),
                  "this checkout": Lamae(model_config(a.member, size, shared))}
        models["this checkout"].load_state_dict(models[sha].state_dict())
        x = torch.randn(batch, 12, models[sha].cfg.n_samples)
        leads = torch.arange(12)
        where = f"ST-MEM configuration, input {a.input}" if a.stmem else f"{size} at {a.rate:g} Hz"
        print(f"{a.member}, {where}, batch {batch}; "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}, lamae {lamae.__version__}")
        steps = {}
        for label, model in models.items():
            with torch.no_grad():
                torch.manual_seed(1)
                loss = model(x[:8], leads)["loss"].item()
            opt = make_optimizer(param_groups(model, 0.05), 1e-4, torch.device("cpu"))

            def step(model=model, opt=opt):
                opt.zero_grad(set_to_none=True)
                model(x, leads)["loss"].backward()
                opt.step()

            for _ in range(WARMUP):
                step()
            steps[label] = (step, [])
            print(f"  {label:<14} loss on one batch {loss:.7f}")
        for _ in range(a.rounds):
            for step, times in steps.values():
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
    med = {label: statistics.median(times) for label, (_, times) in steps.items()}
    for label, t in med.items():
        print(f"  {label:<14} {t:.3f} s/step (median of {a.rounds})")
    print(f"  this checkout / {sha}: {med['this checkout'] / med[sha]:.3f}")


if __name__ == "__main__":
    run(main)
