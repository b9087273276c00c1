"""``lamae embed``: embeddings and lead weights for a whole dataset, resumable.

Input is a dataset folder read by one of the readers (any leads and rates: each record is
preprocessed with the checkpoint's own settings, long records tiled into windows) or a
store made by ``prepare`` with the checkpoint's preprocessing. Output is Parquet (one row
per record: ``record_id``, ``patient_id``, ``n_windows``, ``embedding`` as a list, a
``weight_<lead>`` column per standard lead, NaN where the record lacks the lead, and what the
file says of the ECG: ``age``, ``sex``, ``acquired``, ``device``, the machine's ``statements``
and the ``derived`` leads) or NPY
(an (N, D) float32 array, with the same table minus the embedding in ``<name>.records.csv``).

Work is done in chunks written to ``<out>.parts/``; a run that stops (crash, kill, bad
record) starts again at the first unfinished chunk. Records that cannot be read are
skipped and listed in ``<out>.skipped.csv``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .api import Pretrained
from .data.store import INFO_COLUMNS, EcgStore, record_info
from .files import ResumableChunks, check_files, claim_files, ensure_output_file, read_json
from .errors import LamaeError, LeadNameError, RecordError, ShapeError
from .embedding import embed_store
from .leads import STANDARD_LEADS

WEIGHT_COLUMNS = [f"weight_{lead}" for lead in STANDARD_LEADS]


def _rows_from_store(model: Pretrained, store: EcgStore, rows, pooling, batch_size):
    feats, weights = embed_store(model.model, store, rows, batch_size=batch_size, pooling=pooling,
                                 device=model.device, progress=False)
    present = store.lead_mask(rows)
    index = store.index.iloc[rows]
    empty = record_info({})  # a store written before these columns existed
    info = [{c: index[c].iat[i] if c in index else empty[c] for c in INFO_COLUMNS} for i in range(len(index))]
    return [{"record_id": rid, "patient_id": pid, "n_windows": 1, "embedding": f,
             **dict(zip(WEIGHT_COLUMNS, np.where(p, w, np.nan))), **extra}
            for rid, pid, f, w, p, extra in zip(index["record_id"], index["patient_id"], feats, weights, present, info)], []


def _rows_from_source(model: Pretrained, source, items, pooling, batch_size, windows):
    wins, pres, owner, kept, infos, skipped = [], [], [], [], [], []
    for item in items:
        try:
            rec = source.read(item)
            w, p = model.record_windows(rec.signal, rec.fs, rec.leads, windows=windows, record_id=item.record_id)
        except (RecordError, LeadNameError, ShapeError, LamaeError) as exc:
            skipped.append({"record_id": item.record_id, "path": item.path, "problem": str(exc)})
            continue
        owner += [len(kept)] * len(w)
        wins.append(w)
        pres.append(p)
        kept.append(item)
        infos.append(record_info({**item.extra, **rec.meta}))
    if not kept:
        return [], skipped
    feats, weights = model.embed_windows(np.concatenate(wins), np.concatenate(pres), pooling=pooling,
                                         batch_size=batch_size)
    owner, present = np.asarray(owner), np.concatenate(pres)
    out = []
    for i, item in enumerate(kept):
        sel = owner == i
        w = np.where(present[sel][0], weights[sel].mean(0), np.nan)
        out.append({"record_id": item.record_id, "patient_id": item.patient_id, "n_windows": int(sel.sum()),
                    "embedding": feats[sel].mean(0), **dict(zip(WEIGHT_COLUMNS, w)), **infos[i]})
    return out, skipped


def embed_dataset(checkpoint, data, out, *, fmt: str = "auto", pooling: str = "latent", windows: str = "tile",
                  batch_size: int = 64, chunk_size: int = 512, limit: int | None = None, device: str = "cpu",
                  progress: bool = True, **reader_kwargs) -> dict:
    """Embed every record of ``data`` with ``checkpoint`` into ``out`` (.parquet or .npy)."""
    from . import load
    from .data.readers import open_source

    for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size)) + ((("limit", limit),) if limit is not None else ()):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LamaeError(f"{name} must be a positive integer, got {value!r}")
    out = ensure_output_file(out)
    if out.suffix not in (".parquet", ".npy"):
        raise LamaeError(f"{out}: output must end in .parquet or .npy")
    parts = Path(str(out) + ".parts")
    records_path = out.with_suffix(".records.csv")
    skipped_path = Path(str(out.with_suffix("")) + ".skipped.csv")
    outputs = [out, parts, skipped_path] + ([records_path] if out.suffix == ".npy" else [])
    # every file this writes is new, or an earlier `lamae embed` to the same --out wrote it:
    # checked before any work, the manifest saying so written once the inputs are known good
    state = read_json(parts / "progress.json")  # an older lamae's unfinished run, which had no manifest
    legacy = [parts] if isinstance(state, dict) and "pooling" in (state.get("fingerprint") or {}) else []
    check_files(out, "embed", outputs, owned_anyway=legacy)
    model = load(checkpoint, device)
    data = Path(data)
    store = None
    if (data / "meta.json").exists():
        store = EcgStore(data)
        store.require_preprocessing(model.preprocessing, str(checkpoint),
                                    "embed the raw dataset instead (it is preprocessed for you) or prepare it "
                                    "with the checkpoint's settings")
        todo = np.arange(len(store))
        source_name = "store"
    else:
        source = open_source(fmt, data, **reader_kwargs)
        todo = source.items()
        source_name = fmt
    if limit is not None:
        todo = todo[:limit]
    if len(todo) == 0:
        raise LamaeError(f"{data}: no records found")
    claim_files(out, "embed", outputs, owned_anyway=legacy)
    fingerprint = {"checkpoint": str(model.config.get("path")), "data": str(data.resolve()), "format": source_name,
                   "n": len(todo), "pooling": pooling, "windows": windows, "chunk_size": chunk_size}
    state = ResumableChunks(parts / "progress.json", parts, fingerprint, {"done": 0},
                            mismatch=f"{parts}: an unfinished run with other settings is here; delete it or choose "
                                     "another --out")
    bar = tqdm(total=len(todo), initial=state["done"] * chunk_size, desc="embed", unit="rec", disable=not progress)
    n_chunks = (len(todo) + chunk_size - 1) // chunk_size
    for k in range(state["done"], n_chunks):
        chunk = todo[k * chunk_size:(k + 1) * chunk_size]
        if store is not None:
            rows, skipped = _rows_from_store(model, store, chunk, pooling, batch_size)
        else:
            rows, skipped = _rows_from_source(model, source, chunk, pooling, batch_size, windows)
        frame = pd.DataFrame(rows, columns=["record_id", "patient_id", "n_windows", "embedding", *WEIGHT_COLUMNS,
                                            *INFO_COLUMNS])
        for c in ("statements", "derived"):  # lists of text, also where a chunk has none
            frame[c] = [list(map(str, v)) for v in frame[c]]
        frame["embedding"] = [np.asarray(e, np.float32) for e in frame["embedding"]]
        frame.to_parquet(parts / f"part-{k:06d}.parquet.tmp")
        os.replace(parts / f"part-{k:06d}.parquet.tmp", parts / f"part-{k:06d}.parquet")
        state.commit(k, skipped, done=k + 1)
        bar.update(len(chunk))
    bar.close()

    table = pd.concat([pd.read_parquet(parts / f"part-{k:06d}.parquet") for k in range(n_chunks)],
                      ignore_index=True)
    skipped = state.skipped(n_chunks)
    pd.DataFrame(skipped, columns=["record_id", "path", "problem"]).to_csv(str(skipped_path) + ".tmp", index=False)
    os.replace(str(skipped_path) + ".tmp", skipped_path)
    if table.empty:
        first = skipped[0] if skipped else {"record_id": "?", "problem": "?"}
        raise LamaeError(f"{data}: every record was skipped (the first, {first['record_id']}: {first['problem']}); "
                         f"each is listed in {skipped_path}")
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".parquet":
        table.to_parquet(tmp)
        os.replace(tmp, out)
    else:
        with open(tmp, "wb") as f:
            np.save(f, np.stack(table["embedding"].to_numpy()).astype(np.float32))
        os.replace(tmp, out)
        table.drop(columns="embedding").to_csv(str(records_path) + ".tmp", index=False)
        os.replace(str(records_path) + ".tmp", records_path)
    shutil.rmtree(parts)
    return {"out": str(out), "n_records": len(table), "n_skipped": len(skipped), "dim": model.dim,
            "skipped": str(skipped_path)}

