"""``prepare`` throughput and peak memory as the dataset grows (1k and 10k records).

Each conversion runs in its own process; its peak resident memory is read from the
kernel's accounting of that process (``os.wait4``), so it includes everything Python,
numpy and pandas hold. Memory should not grow with the number of records: signals go
to disk chunk by chunk with plain file writes (page cache, not the process's memory).

    python benchmarks/prepare_scale.py                 # 1,000 and 10,000 records
    python benchmarks/prepare_scale.py --sizes 1000 5000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cli import positive_int, run  # benchmarks/, the folder this script runs from

SNIPPET = """
import sys
from lamae.data.preprocess import Preprocessing
from lamae.data.sources import MimicEcgReader
from lamae.data.store import prepare
prepare(MimicEcgReader(sys.argv[1]), sys.argv[2], Preprocessing(), workers=int(sys.argv[3]), progress=False)
"""


def run_prepare(data: Path, out: Path, workers: int) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one prepare in a fresh process."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", SNIPPET, str(data), str(out), str(workers)])
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"prepare failed with status {status}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports kB


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=positive_int, nargs="+", default=[1000, 10000])
    ap.add_argument("--workers", type=positive_int, default=1,
                    help="prepare workers (peak memory is the main process's; workers are counted "
                         "by the kernel only as finished children)")
    ap.add_argument("--workdir", help="keep the data here (default: a temporary folder)")
    a = ap.parse_args(argv)
    from lamae.data.synth import synthesize_mimic

    tmp = tempfile.TemporaryDirectory() if a.workdir is None else None
    root = Path(a.workdir or tmp.name)
    print(f"{'records':>8}{'seconds':>10}{'records/s':>11}{'peak RSS MB':>13}{'store MB':>10}")
    for n in a.sizes:
        data = synthesize_mimic(root / f"data-{n}", n, seed=0, workers=2, progress=False)
        out = root / f"store-{n}"
        seconds, rss = run_prepare(data, out, a.workers)
        size = (out / "signals.npy").stat().st_size / 1e6
        print(f"{n:>8}{seconds:>10.1f}{n / seconds:>11.0f}{rss:>13.0f}{size:>10.0f}", flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
