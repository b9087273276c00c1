"""Reading the packed store versus reading the same records as WFDB files.

Synthesises MIMIC-IV-ECG-like records (500 Hz, format 16), packs them with ``prepare`` at
100 Hz (the default) and at 500 Hz (no resampling, same samples as the files), then times
random batches of 64 records read:

- from the store (``EcgStore.batch``: float32 tensors, ready for the model; and float16
  tensors, as the trainer moves them to a GPU, which converts them);
- as WFDB files with the ``wfdb`` package (``wfdb.rdrecord``, raw signals only);
- as WFDB files with lamae's reader plus ``preprocess`` (what a loader without a store does).

The files are read once before timing, so both sides come from the page cache: the ratio is
the cost of parsing and preprocessing, not of the disk.

    python benchmarks/store_read.py --records 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli import positive_int, run  # benchmarks/, the folder this script runs from


def rate(fn, batches) -> float:
    n, t0 = 0, time.perf_counter()
    for rows in batches:
        n += fn(rows)
    return n / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=positive_int, default=2000)
    ap.add_argument("--batches", type=positive_int, default=20, help="random batches of 64 per reader")
    ap.add_argument("--workdir", help="keep the data here (default: a temporary folder)")
    a = ap.parse_args(argv)

    import wfdb

    from lamae.data.preprocess import Preprocessing, preprocess
    from lamae.data.sources import MimicEcgReader
    from lamae.data.store import prepare
    from lamae.data.synth import synthesize_mimic

    tmp = tempfile.TemporaryDirectory() if a.workdir is None else None
    root = Path(a.workdir or tmp.name)
    data = synthesize_mimic(root / "data", a.records, seed=0, workers=2, progress=False)
    reader = MimicEcgReader(data)
    items = reader.items()
    stores = {fs: prepare(reader, root / f"store-{fs:g}", Preprocessing(fs=fs), workers=2, progress=False)
              for fs in (100.0, 500.0)}
    by_id = {it.record_id: it for it in items}
    rng = np.random.default_rng(0)
    n = len(stores[100.0])
    batches = [np.sort(rng.choice(n, 64, replace=False)) for _ in range(a.batches)]
    for it in items:  # warm the page cache: both sides read from memory
        (data / (it.path + ".dat")).read_bytes()
    for s in stores.values():
        s.batch(np.arange(len(s)))

    def from_store(store, half=False):
        return lambda rows: len(store.batch(rows, half=half)[0])

    def paths(store, rows):
        return [by_id[r] for r in store.index["record_id"].to_numpy()[rows]]

    def wfdb_raw(rows):
        for it in paths(stores[100.0], rows):
            wfdb.rdrecord(str(data / it.path))
        return len(rows)

    prep = stores[100.0].preprocessing

    def wfdb_preprocessed(rows):
        for it in paths(stores[100.0], rows):
            rec = reader.read(it)
            preprocess(rec.signal, rec.fs, prep, leads=rec.leads)
        return len(rows)

    results = {
        "store, 100 Hz float16 -> float32 tensors": rate(from_store(stores[100.0]), batches),
        "store, 500 Hz float16 -> float32 tensors": rate(from_store(stores[500.0]), batches),
        "store, 500 Hz float16 tensors (GPU path)": rate(from_store(stores[500.0], half=True), batches),
        "WFDB files, wfdb.rdrecord (raw 500 Hz)": rate(wfdb_raw, batches[: max(2, a.batches // 4)]),
        "WFDB files, lamae reader + preprocess": rate(wfdb_preprocessed, batches[: max(2, a.batches // 4)]),
    }
    print(f"{a.records} synthetic records, random batches of 64, page cache warm\n")
    width = max(map(len, results))
    for name, r in results.items():
        print(f"{name:<{width}}  {r:>10.0f} records/s")
    slowest_file = results["WFDB files, wfdb.rdrecord (raw 500 Hz)"]
    print()
    for name, r in results.items():
        if name.startswith("store"):
            print(f"{name}: {r / slowest_file:.0f}x wfdb.rdrecord, "
                  f"{r / results['WFDB files, lamae reader + preprocess']:.0f}x reader + preprocess")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
