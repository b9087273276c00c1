"""The packed store: a dataset converted once into a memory-mapped array plus an index.

Layout of a store folder::

    signals.npy      (n_rows, 12, n_samples) float16, preprocessed, leads in canonical slots
    index.parquet    row, record_id, patient_id, split, path, lead_bits, has_labels, codes,
                     fold, crc32 (checksum of the row's bytes in signals.npy)
    meta.json        preprocessing parameters, shape, split seed and fractions, source,
                     sha256 of index.parquet
    report.json/.md  records skipped and why

``prepare`` works in chunks and records its progress after each one, so an interrupted
(even killed) conversion resumes at the last finished chunk. Chunks are written with plain
file writes, not through a memory map, so memory stays flat however large the dataset.
Opening a store checks the index against its checksum and every row against its crc32.
"""

from __future__ import annotations

import json
import os
import zlib
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import LamaeError, LeadNameError, RecordError, ShapeError
from ..files import (ResumableChunks, atomic_write_text, check_claim, check_removable, claim_output,
                     file_sha256, read_json, refuse_lamae_folder)
from ..labels.splits import patient_split
from ..leads import LEAD_INDEX, STANDARD_LEADS
from .preprocess import MAX_INPUT_FS, Preprocessing, lead_problems, preprocess
from .record import sex_code

STORE_VERSION = 2  # 2: crc32 per row, index checksum


def _npy_offset(path: Path) -> int:
    """Byte offset of the data in a .npy file."""
    return int(np.load(path, mmap_mode="r").offset)


def check_precision(x: np.ndarray, stored: np.ndarray, leads, record_id: str) -> None:
    """Refuse a record the store's float16 cannot hold faithfully: a lead whose values are so
    large next to its variation (a huge baseline left in by ``--no-bandpass --normalize none``,
    values beyond float16's range) that the rounding error (RMS) of ``stored``, the rows as
    float16, would exceed 1% of its spread."""
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.sqrt(np.mean((stored.astype(np.float64) - x) ** 2, axis=1))
    spread = np.std(x, axis=1)
    for lead, e, sd, peak in zip(leads, err, spread, np.max(np.abs(x), axis=1)):
        if sd > 0 and not e <= 0.01 * sd:
            raise RecordError(record_id, f"lead {lead}: values up to {peak:.4g} with a spread of {sd:.3g} lose "
                                         "precision in the store's float16 (a huge baseline?); keep the band-pass "
                                         "or a normalisation, which remove it")


def _load_one(source, prep: Preprocessing, item, min_seconds: float = 0.0):
    """Read and preprocess one record.

    Returns (signal12, lead_bits, problem, dropped, info): problem is None unless the record is
    skipped; dropped maps leads left out of the record (flat, saturated, mostly NaN) to why;
    info is what the file says of the ECG (``INFO_COLUMNS``).
    """
    try:
        rec = source.read(item)
        if not (np.isfinite(rec.fs) and 0 < rec.fs <= MAX_INPUT_FS):  # the rate first: it decides every length
            raise RecordError(item.record_id, f"sampling rate {rec.fs:g} Hz is not one an electrocardiograph records "
                                              f"(lamae reads up to {MAX_INPUT_FS:g} Hz); check the file's rate and "
                                              "its units")
        seconds = rec.signal.shape[-1] / rec.fs
        if seconds < min_seconds:
            raise RecordError(item.record_id, f"{seconds:.3g} s of signal ({rec.signal.shape[-1]} samples at "
                                              f"{rec.fs:g} Hz), shorter than the minimum of {min_seconds:g} s "
                                              "(--min-length; the store's windows are "
                                              f"{prep.window_s:g} s)")
        dropped = lead_problems(rec.signal, rec.leads, max_invalid_fraction=prep.max_invalid_fraction, fs=rec.fs)
        if len(dropped) == len(rec.leads):
            raise RecordError(item.record_id, "no usable lead: " + "; ".join(f"{k} {v}" for k, v in dropped.items()))
        keep = [i for i, lead in enumerate(rec.leads) if lead not in dropped]
        leads = [rec.leads[i] for i in keep]
        x = preprocess(rec.signal[keep], rec.fs, prep, leads=leads, record_id=rec.record_id)
        slots = [LEAD_INDEX[lead] for lead in leads]
        out = np.zeros((len(STANDARD_LEADS), prep.n_samples), np.float16)
        with np.errstate(over="ignore"):
            out[slots] = x
        check_precision(x, out[slots], leads, rec.record_id)
    except (RecordError, LeadNameError, ShapeError) as exc:
        return None, 0, str(exc), {}, {}
    except Exception as exc:  # a reader bug must not cost the user the whole conversion
        return None, 0, f"{item.record_id}: unexpected {type(exc).__name__}: {exc}", {}, {}
    bits = sum(1 << s for s in slots)
    # what the dataset's tables say of the ECG (Challenge's age and sex), then what its file says
    return out, bits, None, dropped, record_info({**item.extra, **rec.meta})


# What a file says of its ECG, kept in the index beside each row (empty where the format has
# no such field): usable as labels or covariates, and ``derived`` names leads computed by
# ``--derive-limb-leads`` rather than recorded.
INFO_COLUMNS = ("age", "sex", "acquired", "device", "statements", "derived")


def record_info(meta: dict) -> dict:
    """A record's ``meta`` as the index's ``INFO_COLUMNS`` (one type per column)."""
    age = meta.get("age")
    try:
        age = float(age) if age not in (None, "") else float("nan")
    except (TypeError, ValueError):
        age = float("nan")
    return {"age": age, "sex": sex_code(meta.get("sex")), "acquired": str(meta.get("acquired") or ""),
            "device": str(meta.get("device") or ""), "statements": [str(v) for v in meta.get("statements") or []],
            "derived": [str(v) for v in meta.get("derived_leads") or []]}


def _write_chunk(signals: Path, offset: int, row_bytes: int, first_row: int, chunk, results):
    """Write one chunk's usable records as rows ``first_row``... of ``signals`` (on disk before
    returning); returns their index rows and the records or leads left out, with the reason."""
    rows, skipped, kept = [], [], []
    for item, (x, bits, problem, dropped, info) in zip(chunk, results):
        if problem is not None:
            skipped.append({"record_id": item.record_id, "path": item.path, "problem": problem})
            continue
        for lead, why in dropped.items():
            skipped.append({"record_id": item.record_id, "path": item.path, "lead": lead,
                            "problem": f"lead {lead} left out: {why}"})
        kept.append(x)
        rows.append({"row": first_row + len(rows), "record_id": item.record_id, "patient_id": item.patient_id,
                     "path": item.path, "lead_bits": bits, "has_labels": item.codes is not None,
                     "codes": list(item.codes or []), "fold": item.extra.get("fold", -1),
                     "source_split": item.extra.get("split", ""), "crc32": zlib.crc32(x.tobytes()), **info})
    if kept:
        with open(signals, "r+b") as f:
            f.seek(offset + first_row * row_bytes)
            f.write(np.stack(kept).tobytes())
            f.flush()
            os.fsync(f.fileno())  # the rows are on disk before progress says so
    return rows, skipped


def prepare(source, out_dir, prep: Preprocessing, *, split_seed: int = 0,
            split_fractions=(0.7, 0.15, 0.15), chunk_size: int = 256, workers: int = 1,
            overwrite: bool = False, progress: bool = True, limit: int | None = None,
            min_length_s: float | None = None, rebuild_changed: bool = False) -> "EcgStore":
    """Convert ``source`` (a reader) into a store at ``out_dir``; resumes an interrupted run.

    Records shorter than ``min_length_s`` seconds (default: half the window, as the Python API
    requires) are skipped and reported, not stored as a window of mostly zeros. A finished store
    is reused only when it was made from the same records with the same labels and settings;
    otherwise it is refused, or with ``rebuild_changed`` (a store a command keeps for itself,
    finetune's) made again."""
    out = Path(out_dir)
    min_length_s = prep.window_s / 2 if min_length_s is None else min_length_s
    if isinstance(min_length_s, bool) or not isinstance(min_length_s, (int, float)) or not 0 <= min_length_s <= prep.window_s:
        raise LamaeError(f"min_length_s must be between 0 and the window ({prep.window_s:g} s), got {min_length_s!r}")
    for name, value in (("chunk_size", chunk_size), ("workers", workers)) + ((("limit", limit),) if limit is not None else ()):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LamaeError(f"{name} must be a positive integer, got {value!r}")
    root = getattr(source, "root", None)
    if not str(out_dir).strip():
        raise LamaeError("--out is empty: name the store folder to write")
    if root is not None:
        src, dst = Path(root).resolve(), out.resolve()
        if dst == src or src.is_relative_to(dst):
            raise LamaeError(f"{out}: is the input dataset {root} or contains it; choose another --out")
    refuse_lamae_folder(out, allow="store")
    removable = overwrite and out.exists()
    if removable:  # checked before the listing, which can take a while
        check_removable(out, inputs=[root])
    else:  # a new or empty folder, or a store (finished or not) lamae made here
        check_claim(out, "store", writes=("meta.json", "signals.npy", "index.parquet", "report.json", "report.md"))
    items = source.items()
    # Rows of the dataset's own tables (record list, labels) the reader could not use
    table_problems = list(getattr(source, "problems", []))
    if limit is not None:
        items = items[:limit]
    if not items:
        raise LamaeError(f"{getattr(source, 'root', source)}: no records found")
    n, n_leads, t = len(items), len(STANDARD_LEADS), prep.n_samples
    fingerprint = {
        "source": str(getattr(source, "root", "")), "format": source.name, "n_items": n,
        "first": items[0].record_id, "last": items[-1].record_id, "preprocessing": prep.to_dict(),
        "min_length_s": float(min_length_s), "items_sha256": items_digest(items), "split_seed": split_seed,
    }
    if (out / "meta.json").exists() and not overwrite:
        existing = EcgStore(out)
        differs = (f"other preprocessing, {existing.meta['preprocessing']}" if existing.preprocessing != prep
                   else _store_differs(existing.meta, fingerprint))
        if differs is None:
            return existing
        if not rebuild_changed:
            raise LamaeError(f"{out}: the store here was made from other input or settings ({differs}); pass "
                             "--overwrite to replace it or choose another --out")
        overwrite = True
    elif (out / "_progress.json").exists() and rebuild_changed:
        state = read_json(out / "_progress.json")
        overwrite = not isinstance(state, dict) or state.get("fingerprint") != fingerprint
    if overwrite and out.exists():
        if not removable:  # a store rebuilt because its input changed: checked as --overwrite checks
            check_removable(out, inputs=[root])
        shutil.rmtree(out)
    parts = out / "_parts"

    def start():  # a fresh conversion: the header and a sparse file of the final size, filled chunk by chunk
        claim_output(out, "store")
        np.lib.format.open_memmap(out / "signals.npy", mode="w+", dtype=np.float16, shape=(n, n_leads, t))

    state = ResumableChunks(out / "_progress.json", parts, fingerprint, {"next_item": 0, "next_row": 0, "next_part": 0},
                            start=start, mismatch=f"{out}: an unfinished conversion with different settings is here "
                                                  "(other data or preprocessing); pass --overwrite to start again")
    offset, row_bytes = _npy_offset(out / "signals.npy"), n_leads * t * 2

    t0 = time.time()
    load = partial(_load_one, source, prep, min_seconds=float(min_length_s))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    bar = tqdm(total=n, initial=state["next_item"], desc="prepare", unit="rec", disable=not progress)
    try:
        while state["next_item"] < n:
            chunk = items[state["next_item"]: state["next_item"] + chunk_size]
            results = list(pool.map(load, chunk, chunksize=8)) if pool else [load(it) for it in chunk]
            rows, skipped = _write_chunk(out / "signals.npy", offset, row_bytes, state["next_row"], chunk, results)
            row = state["next_row"] + len(rows)
            k = state["next_part"]
            pd.DataFrame(rows, columns=["row", "record_id", "patient_id", "path", "lead_bits", "has_labels",
                                        "codes", "fold", "source_split", "crc32", *INFO_COLUMNS]).to_parquet(
                parts / f"index-{k:06d}.parquet")
            state.commit(k, skipped, next_item=state["next_item"] + len(chunk), next_row=row, next_part=k + 1)
            bar.update(len(chunk))
    finally:
        bar.close()
        if pool:
            pool.shutdown()

    return _finish(out, state, source, prep, fingerprint, split_seed, split_fractions, table_problems, time.time() - t0)


def items_digest(items) -> str:
    """sha256 of a dataset's listing: each record's id, patient, file and labels, in order. Two
    runs of prepare agree on it only when they would store the same records with the same labels
    (another folder, another --limit or an edited labels file all change it)."""
    import hashlib

    h = hashlib.sha256()
    for it in items:
        codes = "\x1f".join(it.codes) if it.codes is not None else "\x1e"
        h.update(f"{it.record_id}\x1d{it.patient_id}\x1d{it.path}\x1d{codes}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _store_differs(meta: dict, fingerprint: dict) -> str | None:
    """What differs between the input a finished store was made from and ``fingerprint`` (None:
    the same). A store made before the fingerprint was recorded is compared on what its meta.json
    kept: the dataset folder, the format and the number of records."""
    stored = meta.get("fingerprint")
    if not isinstance(stored, dict):
        stored = {"source": meta.get("source"), "format": meta.get("format"), "n_items": meta.get("n_source_records"),
                  "min_length_s": meta.get("min_length_s", fingerprint["min_length_s"]),
                  "split_seed": meta.get("split_seed", fingerprint["split_seed"])}
    names = {"source": "dataset folder", "format": "format", "n_items": "number of records",
             "items_sha256": "records or their labels", "min_length_s": "minimum length", "split_seed": "split seed"}
    for key, label in names.items():
        if key == "source" and "items_sha256" in stored:
            continue  # the listing's content decides, wherever the folder now lies
        if key in stored and stored[key] != fingerprint[key]:
            if key == "items_sha256":
                return "the same number of records, but other records or other labels"
            return f"{label} {stored[key]!r}, now {fingerprint[key]!r}"
    return None


def _finish(out: Path, state: ResumableChunks, source, prep: Preprocessing, fingerprint: dict, split_seed: int,
            split_fractions, table_problems: list, seconds: float) -> "EcgStore":
    """Every chunk is written: assemble the index, assign splits, write meta.json and the report."""
    parts, n, n_leads, t = state.parts, fingerprint["n_items"], len(STANDARD_LEADS), prep.n_samples
    index = pd.concat([pd.read_parquet(parts / f"index-{k:06d}.parquet")
                       for k in range(state["next_part"])], ignore_index=True)
    problems = state.skipped(state["next_part"])
    skipped = [p for p in problems if "lead" not in p]
    dropped_leads = [p for p in problems if "lead" in p]
    if index.empty:
        atomic_write_text(out / "report.json", json.dumps({"skipped": skipped, "dropped_leads": dropped_leads,
                                                           "table_problems": list(table_problems)}, indent=2))
        first = skipped[0] if skipped else {}
        raise LamaeError(f"{out}: every record was skipped (the first, {first.get('record_id', '?')}: "
                         f"{first.get('problem', first.get('reason', 'see the report'))}); every problem is listed "
                         f"in {out / 'report.json'}")
    # A dataset's official split (PTB-XL's strat_fold) wins; otherwise a seeded patient split.
    if (index["source_split"] != "").all():
        index["split"] = index["source_split"]
        split_kind = "official"
    else:
        index["split"] = patient_split(index["patient_id"], split_fractions, split_seed)
        split_kind = "patient"
    index = index.drop(columns="source_split")
    index.to_parquet(out / "index.parquet.tmp")
    os.replace(out / "index.parquet.tmp", out / "index.parquet")
    meta = {
        "version": STORE_VERSION, "n_rows": int(len(index)), "shape": [int(len(index)), n_leads, t],
        "leads": list(STANDARD_LEADS), "dtype": "float16", "preprocessing": prep.to_dict(),
        "split": split_kind, "split_seed": split_seed, "split_fractions": list(split_fractions),
        "label_kind": getattr(source, "label_kind", "icd10"),
        "source": fingerprint["source"], "format": source.name,
        "n_source_records": n, "n_skipped": len(skipped), "n_leads_dropped": len(dropped_leads),
        "n_table_problems": len(table_problems), "min_length_s": fingerprint["min_length_s"],
        "index_sha256": file_sha256(out / "index.parquet"), "fingerprint": fingerprint,
    }
    meta["meta_sha256"] = meta_digest(meta)
    _write_report(out, skipped, dropped_leads, meta, seconds, table_problems)
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=2))
    shutil.rmtree(parts)
    state.state_path.unlink()
    return EcgStore(out)


def _write_report(out: Path, skipped: list[dict], dropped: list[dict], meta: dict, seconds: float,
                  table_problems: list[dict] = ()) -> None:
    atomic_write_text(out / "report.json", json.dumps({"skipped": skipped, "dropped_leads": dropped,
                                                       "table_problems": list(table_problems),
                                                       "seconds": seconds}, indent=2))
    lines = ["# prepare report", "", f"- records in source: {meta['n_source_records']}",
             f"- records stored: {meta['n_rows']}", f"- records skipped: {len(skipped)}",
             f"- leads left out of stored records (flat, saturated or mostly NaN): {len(dropped)}",
             f"- rows of the record list / labels file that could not be read: {len(table_problems)}", ""]
    if table_problems:
        lines += ["## Table rows not read (the run went on without them)", "",
                  "| file | row | column | cell | problem | what lamae did |", "|---|---|---|---|---|---|"]
        for t in table_problems:
            cell = str(t["cell"]).replace("|", "/").replace("`", "'")
            row = "-" if t["row"] is None else t["row"]
            lines.append(f"| {t['file']} | {row} | {t['column']} | `{cell}` | {t['problem'].replace('|', '/')} | "
                         f"{t['action']} |")
        lines.append("")
    if skipped:
        lines += ["## Records skipped", "", "| record | problem |", "|---|---|"]
        lines += [f"| {s['record_id']} | {s['problem'].replace('|', '/')} |" for s in skipped]
        lines.append("")
    if dropped:
        lines += ["## Leads left out (the record is kept without them)", "", "| record | lead | problem |",
                  "|---|---|---|"]
        lines += [f"| {d['record_id']} | {d['lead']} | {d['problem'].replace('|', '/')} |" for d in dropped]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def meta_digest(meta: dict) -> str:
    """sha256 of a store's meta.json fields (all but this checksum), in a canonical JSON form: a
    meta.json edited by hand no longer matches it."""
    import hashlib

    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class EcgStore:
    """Read side of a store. ``signals`` is memory-mapped; nothing is loaded until indexed."""

    # Opening checks every row up to this size; above it, a seeded sample of rows plus the
    # last one (a full pass over MIMIC-IV-ECG at 500 Hz is ~100 GB): ``lamae verify`` does all.
    FULL_VERIFY_BYTES = 2_000_000_000
    SAMPLE_ROWS = 2000

    def __init__(self, path: str | os.PathLike, *, verify: bool | str = "auto"):
        """``verify``: "auto" (all rows of a store up to 2 GB, else a sample), True (all), False."""
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.exists():
            hint = (" (a conversion was interrupted: run prepare again to resume)"
                    if (self.path / "_progress.json").exists() else "")
            raise LamaeError(f"{self.path}: not a finished lamae store, meta.json is missing{hint}")
        try:
            self.meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LamaeError(f"{meta_path}: not valid JSON ({exc})") from None
        self._check_meta(meta_path)
        try:
            self.preprocessing = Preprocessing.from_dict(self.meta["preprocessing"])
        except (TypeError, ValueError) as exc:
            raise LamaeError(f"{meta_path}: field 'preprocessing' is invalid ({exc})") from None
        index_path = self.path / "index.parquet"
        if not index_path.exists():
            raise LamaeError(f"{index_path}: missing; the store is incomplete: run prepare again with --overwrite")
        if verify and file_sha256(index_path) != self.meta.get("index_sha256"):
            raise LamaeError(f"{index_path}: checksum does not match meta.json; the index was changed or "
                             "damaged; run prepare again with --overwrite")
        try:
            self.index = pd.read_parquet(index_path)
        except Exception as exc:  # pyarrow raises its own error types on damaged files
            raise LamaeError(f"{index_path}: cannot be read ({type(exc).__name__}: {exc})") from None
        self._check_index(index_path)
        sig_path = self.path / "signals.npy"
        expected = tuple(self.meta["shape"])
        try:
            full = np.load(sig_path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as exc:
            raise LamaeError(f"{sig_path}: cannot be read as the store's signal array ({exc}); a truncated or "
                             "damaged file: run prepare again with --overwrite") from None
        made = self.meta.get("n_source_records", full.shape[0])  # the file has a row per source record
        if (full.shape[1:] != expected[1:] or full.shape[0] < expected[0] or full.dtype != np.float16
                or full.shape[0] != made):
            raise LamaeError(f"{sig_path}: shape {full.shape} {full.dtype} does not match meta.json "
                             f"({expected} float16 in a file of {made} rows); the store is damaged or meta.json "
                             "was edited")
        if expected[2] != self.preprocessing.n_samples:
            raise LamaeError(f"{meta_path}: shape says {expected[2]} samples per lead, its preprocessing makes "
                             f"{self.preprocessing.n_samples}; meta.json was edited or damaged")
        self.signals = full[: self.meta["n_rows"]]
        if verify == "auto":
            if self.signals.nbytes <= self.FULL_VERIFY_BYTES:
                self.verify()
            else:
                rng = np.random.default_rng(0)
                sample = rng.choice(len(self), min(self.SAMPLE_ROWS, len(self)), replace=False)
                self.verify(np.union1d(sample, [0, len(self) - 1]))
        elif verify:
            self.verify()

    def _check_meta(self, meta_path: Path) -> None:
        m = self.meta
        if not isinstance(m, dict):
            raise LamaeError(f"{meta_path}: expected a JSON object, got {type(m).__name__}")
        if m.get("version") != STORE_VERSION:
            raise LamaeError(f"{self.path}: store version {m.get('version')} is not {STORE_VERSION}")
        for key in ("n_rows", "shape", "preprocessing", "index_sha256"):
            if key not in m:
                raise LamaeError(f"{meta_path}: field {key!r} is missing; the store is damaged: run prepare "
                                 "again with --overwrite")
        if m.get("leads", list(STANDARD_LEADS)) != list(STANDARD_LEADS) or m.get("dtype", "float16") != "float16":
            raise LamaeError(f"{meta_path}: leads {m.get('leads')} / dtype {m.get('dtype')} are not the store's "
                             f"{list(STANDARD_LEADS)} / float16; meta.json was edited or damaged")
        if "meta_sha256" in m and m["meta_sha256"] != meta_digest(m):
            raise LamaeError(f"{meta_path}: does not match its own checksum (meta_sha256); it was edited or "
                             "damaged after prepare wrote it: run prepare again with --overwrite")
        n = m["n_rows"]
        shape = m["shape"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise LamaeError(f"{meta_path}: field 'n_rows' must be a count, got {n!r}")
        if (not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(v, int) and v >= 0 for v in shape)
                or shape[0] != n or shape[1] != len(STANDARD_LEADS)):
            raise LamaeError(f"{meta_path}: field 'shape' must be [n_rows, 12, samples], got {shape!r}")

    def _check_index(self, index_path: Path) -> None:
        """The index must list exactly the store's rows, in order (``row`` r is signals.npy's row r)."""
        need = {"row", "record_id", "patient_id", "split", "lead_bits", "has_labels", "codes", "fold", "crc32"}
        missing = need - set(self.index.columns)
        if missing:
            raise LamaeError(f"{index_path}: missing columns {sorted(missing)}")
        n = self.meta["n_rows"]
        if len(self.index) != n:
            raise LamaeError(f"{index_path}: {len(self.index)} rows, meta.json says {n}")
        rows = self.index["row"].to_numpy()
        wrong = np.flatnonzero(rows != np.arange(n))
        if len(wrong):
            i = int(wrong[0])
            raise LamaeError(f"{index_path}: entry {i} (record {self.index['record_id'].iat[i]}) has row "
                             f"{rows[i]}, expected {i} (the store holds rows 0-{n - 1}); the index is damaged")

    def require_preprocessing(self, prep: Preprocessing | dict, owner: str, hint: str = "prepare the data again "
                              "with the checkpoint's settings") -> None:
        """Refuse to pair this store with a checkpoint (``owner``) trained on other preprocessing:
        the error names each field that differs."""
        want = prep.to_dict() if isinstance(prep, Preprocessing) else dict(prep)
        have = self.preprocessing.to_dict()
        diff = [f"{k}: store {have.get(k)!r}, checkpoint {want.get(k)!r}"
                for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]
        if diff:
            raise LamaeError(f"{self.path}: store preprocessing differs from the checkpoint's ({owner}): "
                             + "; ".join(diff) + f"; {hint}")

    def verify(self, rows=None, block: int = 1024) -> None:
        """Check rows of signals.npy against the crc32 in the index (all rows by default)."""
        rows = np.arange(len(self)) if rows is None else np.sort(np.asarray(rows))
        crcs = self.index["crc32"].to_numpy()
        row_bytes = int(np.prod(self.signals.shape[1:])) * 2
        offset = _npy_offset(self.path / "signals.npy")
        with open(self.path / "signals.npy", "rb") as f:  # plain reads: the check leaves no mapped pages
            for start in range(0, len(rows), block):
                part = rows[start:start + block]
                lo, hi = int(part[0]), int(part[-1]) + 1
                f.seek(offset + lo * row_bytes)
                buf = f.read((hi - lo) * row_bytes)
                if len(buf) < (hi - lo) * row_bytes:
                    raise LamaeError(f"{self.path / 'signals.npy'}: file is truncated at row {lo + len(buf) // row_bytes}")
                for r in part:
                    a = (int(r) - lo) * row_bytes
                    if zlib.crc32(buf[a:a + row_bytes]) != int(crcs[r]) & 0xFFFFFFFF:
                        rid = self.index["record_id"].iat[int(r)]
                        raise LamaeError(f"{self.path / 'signals.npy'}: row {int(r)} (record {rid}) does not "
                                         "match its checksum; the store is damaged; run prepare again with "
                                         "--overwrite")

    @property
    def digest(self) -> str:
        """The store's content digest: meta.json's checksum, which covers the index's checksum and
        so every row's CRC. A store rebuilt from other data has another digest wherever it lies."""
        return self.meta.get("meta_sha256") or meta_digest(self.meta)

    def __len__(self) -> int:
        return int(self.meta["n_rows"])

    # Data-loader workers started with "spawn" receive the store by pickling: send the path,
    # not the memory-mapped signals, and reopen there (already verified here).
    def __getstate__(self):
        return {"path": str(self.path)}

    def __setstate__(self, state):
        self.__init__(state["path"], verify=False)

    def rows(self, split: str | None = None, *, labeled: bool = False) -> np.ndarray:
        """Row numbers of the store's records, of one ``split`` and/or only those with labels."""
        mask = np.ones(len(self.index), bool)
        if split is not None:
            mask &= (self.index["split"] == split).to_numpy()
        if labeled:
            mask &= self.index["has_labels"].to_numpy() & (self.index["codes"].map(len) > 0).to_numpy()
        return self.index["row"].to_numpy()[mask]

    def lead_mask(self, rows) -> np.ndarray:
        """(len(rows), 12) bool: which standard leads each row holds."""
        bits = self.index["lead_bits"].to_numpy()[np.asarray(rows)]
        return (bits[:, None] >> np.arange(len(STANDARD_LEADS))[None, :]) & 1 == 1

    def batch(self, rows, device="cpu", *, half: bool = False):
        """(signals (n, 12, samples), lead-present mask (n, 12)) as tensors for ``rows``.

        float32 by default; ``half=True`` keeps the stored float16 (half the bytes to move to a
        GPU, converted there).
        """
        import torch

        rows = np.asarray(rows)
        x = torch.from_numpy(np.ascontiguousarray(self.signals[rows]))
        x = x.to(device) if half else x.to(device).float()
        return x, torch.from_numpy(self.lead_mask(rows)).to(device)

    def codes(self, rows) -> list[list[str]]:
        """The label codes of each row."""
        col = self.index["codes"].to_numpy()
        return [list(col[r]) for r in np.asarray(rows)]
