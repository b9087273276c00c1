"""``lamae finetune``: a checkpoint on a user's own labels, with a held-out report.

Input: a folder of WFDB records (any leads, any rate) or another supported dataset, and a
CSV with a record id column and the labels, either

- a ``labels`` column holding a list per record, written as ``['AF', 'LBBB']`` (parsed
  literally, never evaluated) or ``AF;LBBB``; or
- one 0/1 column per label (every column other than the id and patient columns).

Record ids are the record paths relative to the data folder without extension (``a/rec1``)
or, when unique, their file names (``rec1``). The data is prepared once with the
checkpoint's own preprocessing into ``OUT/store`` (resumable), split 70/15/15 by patient
(the CSV's patient column) or by record, and then

- ``--mode probe``: a linear probe on the frozen embeddings (L2 weight chosen on validation);
- ``--mode finetune``: the whole encoder and a linear head trained end to end.

The report (``report.md``/``report.json``/``roc.png``) gives per-label and macro AUROC on the
test split with bootstrap CIs, and is recorded in the checkpoint's model card.
"""

from __future__ import annotations

import ast
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .data.readers import open_source
from .data.record import SourceItem
from .data.sources import repeated_rows
from .errors import LabelError, LamaeError
from .files import output_dir
from .labels.icd10 import parse_cells

MODES = ("probe", "finetune")


def _parse_list(text, source: str) -> list[str]:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    s = str(text).strip()
    if not s:
        return []
    if s[0] in "[(":
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            raise LabelError(f"{source}: cannot parse label list {s[:80]!r}") from None
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
            raise LabelError(f"{source}: label list must hold strings, got {s[:80]!r}")
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in s.split(";") if part.strip()]


def read_label_csv(path, *, id_column: str = "record_id", label_column: str = "labels",
                   patient_column: str | None = None) -> pd.DataFrame:
    """``record_id``, ``patient_id`` and ``labels`` (list of str) per row of a user's labels CSV.
    A row with a cell that cannot be read is skipped and listed in ``attrs["bad_cells"]`` (row,
    column, cell, problem)."""
    path = Path(path)
    if not path.exists():
        raise LabelError(f"{path}: labels file does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: not a readable CSV ({exc})") from None
    if id_column not in df.columns:
        raise LabelError(f"{path}: no {id_column!r} column (columns: {list(df.columns)}); pass --id-column")
    if patient_column and patient_column not in df.columns:
        raise LabelError(f"{path}: no patient column {patient_column!r}")
    if label_column in df.columns:
        labels, bad = parse_cells(df[label_column], _parse_list, path=path, column=label_column)
    else:
        cols = [c for c in df.columns if c not in (id_column, patient_column)]
        if not cols:
            raise LabelError(f"{path}: no {label_column!r} column and no 0/1 label columns")
        labels, bad = [[] for _ in range(len(df))], []
        for c in cols:
            vals = df[c].str.strip()
            for i in np.flatnonzero(~vals.isin(["0", "1", "0.0", "1.0", ""]).to_numpy()):
                if labels[i] is not None:
                    bad.append({"row": int(i) + 2, "column": c, "cell": vals.iat[i][:80],
                                "problem": f"expected 0 or 1, got {vals.iat[i][:80]!r}"})
                labels[i] = None
            for i in np.flatnonzero(vals.isin(["1", "1.0"]).to_numpy()):
                if labels[i] is not None:
                    labels[i].append(c)
    out = pd.DataFrame({"record_id": df[id_column].str.strip(),
                        "patient_id": df[patient_column] if patient_column else df[id_column].str.strip(),
                        "labels": labels})
    # A record listed twice: a repeat with the same labels is ignored; rows that disagree leave
    # the record out (its labels are unknown), never the later row's labels. Each is reported.
    keys = out["record_id"].tolist()
    conflicting, repeats = repeated_rows(keys, [None if v is None else tuple(sorted(v)) for v in out["labels"]],
                                         file=path, column=id_column)
    first = ~out["record_id"].duplicated().to_numpy()
    keep = np.array([v is not None for v in out["labels"]], dtype=bool) & first & ~out["record_id"].isin(conflicting).to_numpy()
    # A row with a cell that cannot be read is left out (its record is not used), not guessed at
    out = out.loc[keep].reset_index(drop=True)
    out.attrs["bad_cells"] = [{**b, "file": str(path), "action": "row skipped"} for b in bad] + [
        {**r, "action": "row ignored" if r["action"].startswith("row ignored") else "record left out"}
        for r in repeats]
    if out.empty:
        raise LabelError(f"{path}: no label row could be read (first problem: row {bad[0]['row']} column "
                         f"{bad[0]['column']}: {bad[0]['problem']})" if bad else f"{path}: no label rows")
    return out


class LabeledSource:
    """A reader whose items carry the user's labels (records without a CSV row are left out)."""

    label_kind = "flat"

    def __init__(self, source, table: pd.DataFrame, labels_path):
        self.source, self.name, self.root = source, source.name, getattr(source, "root", "")
        items = source.items()
        by_id = {it.record_id: it for it in items}
        names = pd.Series([Path(it.record_id).name for it in items])
        by_name = {Path(it.record_id).name: it for it in items} if not names.duplicated().any() else {}
        self._items, self.unmatched = [], []
        for rid, pid, labels in zip(table["record_id"], table["patient_id"], table["labels"]):
            it = by_id.get(rid) or by_name.get(rid)
            if it is None:
                self.unmatched.append(rid)
                continue
            self._items.append(SourceItem(it.record_id, str(pid), it.path, tuple(labels), {}))
        if not self._items:
            raise LabelError(f"{labels_path}: none of its {len(table)} record ids matches a record in "
                             f"{self.root} (e.g. {table['record_id'].iloc[0]!r} vs {items[0].record_id!r})"
                             if items else f"{self.root}: no records found")

    def items(self):
        return list(self._items)

    def read(self, item):
        return self.source.read(item)


def finetune(checkpoint, data, labels, out, *, fmt: str = "auto", mode: str = "probe", id_column="record_id",
             label_column="labels", patient_column=None, min_count: int = 5, steps: int = 500,
             batch_size: int = 32, base_lr: float = 1e-3, seed: int = 0, device: str = "cpu",
             workers: int = 1, progress: bool = True, tracker: str = "csv",
             derive_limb_leads: bool = False) -> dict:
    """Probe (``mode="probe"``: a linear head on frozen embeddings) or fine-tune (``"finetune"``:
    encoder and head) ``checkpoint`` on a user's labels: ``data`` is a dataset folder read with
    ``fmt``, ``labels`` a CSV (see :func:`read_label_csv`). Writes into ``out`` the store, a
    held-out report (``report.md``/``report.json``, macro AUROC), ``roc.png`` and the model, and
    returns the report."""
    from . import load
    from .data.store import prepare
    from .embedding import embed_store
    from .eval.probe import fit_linear_probe
    from .labels.icd10 import build_flat_targets
    from .tracking import open_tracker
    from .train.supervised import SupervisedConfig, predict_supervised, train_supervised

    from .train.common import pick_device

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    pick_device(str(device))  # a device this machine lacks is named before any work, as every command does
    out = output_dir(out, "finetune", writes=("report.md", "report.json", "roc.png", "probe.npz", "metrics.csv", "model", "store"))
    model = load(checkpoint)
    table = read_label_csv(labels, id_column=id_column, label_column=label_column, patient_column=patient_column)
    source = LabeledSource(open_source(fmt, data, derive_limb_leads=derive_limb_leads), table, labels)
    # finetune's own store: made again when the data, the labels or the preprocessing changed
    store = prepare(source, out / "store", model.preprocessing, workers=workers, progress=progress,
                    rebuild_changed=True)
    rows = store.rows()
    splits = store.index["split"].to_numpy()[rows]
    targets = build_flat_targets(store.codes(rows), splits == "train", min_prevalence=0.0, min_count=min_count)
    if not targets.nodes:
        raise LamaeError(f"{labels}: no label has {min_count} or more positive training records")
    y = targets.y.astype(np.float64)
    tr, va, te = (splits == s for s in ("train", "val", "test"))
    if te.sum() == 0 or tr.sum() == 0:
        raise LamaeError(f"{labels}: too few records to split into train/val/test ({len(rows)} matched)")
    # opened once the inputs are known to be usable, and closed however the run ends (a W&B run is finished)
    track = open_tracker(tracker, out, {"checkpoint": str(checkpoint), "data": str(data), "labels": str(labels),
                                        "mode": mode, "steps": steps, "batch_size": batch_size, "base_lr": base_lr,
                                        "seed": seed}, name="finetune")
    try:
        if mode == "probe":
            feats, _ = embed_store(model.model, store, rows, progress=progress, desc="embed")
            probe = fit_linear_probe(feats[tr], y[tr], feats[va], y[va])
            p_test = probe.predict(feats[te])
            np.savez(out / "probe.npz", weight=probe.weight, bias=probe.bias, mean=probe.mean, std=probe.std,
                     labels=np.array(targets.nodes))
        else:
            cfg = SupervisedConfig(steps=steps, batch_size=min(batch_size, int(tr.sum())), base_lr=base_lr,
                                   warmup_steps=max(1, steps // 10), seed=seed, device=device)
            net, head, _ = train_supervised(model.model.cfg, store, rows[tr], y[tr], cfg, progress=progress,
                                            init=model.model, log=track.log)
            p_test = predict_supervised(net, head, store, rows[te])
            from safetensors.torch import save_file

            from .checkpoint import save_checkpoint

            save_checkpoint(out / "model", net.cpu(), model.preprocessing,
                            extra={"finetune": {"labels": targets.nodes, "from": model.config.get("path"),
                                                "train": asdict(cfg)}})
            save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()},
                      str(out / "model" / "head.safetensors"))
        report = _report(model, data, labels, mode, source, store, table, targets, y, (tr, va, te), p_test, seed, out)
        macro = report["macro_auroc"]
        track.summary({"finetune/test_macro_auroc": None if macro is None else macro["auroc"],
                       **{f"finetune/test_auroc/{r['label']}": r["auroc"] for r in report["labels_per_record"]}})
    finally:
        track.close()
    return report


def _report(model, data, labels, mode, source, store, table, targets, y, split, p_test, seed, out: Path) -> dict:
    """report.json / report.md / roc.png with bootstrap CIs, and the checkpoint's model card entry."""
    from .eval.bootstrap import macro_auroc_ci
    from .eval.metrics import scorable
    from .eval.probe import plot_roc
    from .files import atomic_write_text
    from .modelcard import record_evaluation

    tr, va, te = split
    y_te = y[te]
    per_label = []
    for j, name in enumerate(targets.nodes):
        npos = int(y_te[:, j].sum())
        ci = macro_auroc_ci(y_te, p_test, [j], n_boot=500, seed=seed) if scorable(y_te[:, j]) else None
        per_label.append({"label": name, "train_positives": int(y[tr, j].sum()), "test_positives": npos,
                          "auroc": None if ci is None else round(ci["auroc"], 4),
                          "ci": None if ci is None else [round(ci["lo"], 4), round(ci["hi"], 4)]})
    ok = [j for j in range(y.shape[1]) if scorable(y_te[:, j])]
    macro = macro_auroc_ci(y_te, p_test, ok, n_boot=1000, seed=seed) if ok else None
    report = {"checkpoint": model.config.get("path"), "data": str(data), "labels": str(labels), "mode": mode,
              "n_records": {"train": int(tr.sum()), "val": int(va.sum()), "test": int(te.sum())},
              "unmatched_label_rows": len(source.unmatched), "skipped_records": int(store.meta["n_skipped"]),
              "skipped_label_rows": table.attrs.get("bad_cells", []),
              "macro_auroc": None if macro is None else {k: round(v, 4) if isinstance(v, float) else v
                                                         for k, v in macro.items()},
              "labels_per_record": per_label}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out / "report.md", finetune_markdown(report))
    plot_roc(targets, targets.y[te], p_test, out / "roc.png")
    if macro is not None:
        record_evaluation(model.config["path"], f"{mode} on {Path(labels).name}",
                          {"test records": int(te.sum()),
                           "macro AUROC": f"{macro['auroc']:.4f} [{macro['lo']:.4f}, {macro['hi']:.4f}]"},
                          report=str(out / "report.md"))
    return report


def finetune_markdown(r: dict) -> str:
    n = r["n_records"]
    m = r["macro_auroc"]
    lines = [f"# {'Linear probe' if r['mode'] == 'probe' else 'Fine-tuning'} on {r['labels']}", "",
             f"- checkpoint: `{r['checkpoint']}`", f"- data: `{r['data']}`",
             f"- records: train {n['train']}, val {n['val']}, test {n['test']}; label rows without a record: "
             f"{r['unmatched_label_rows']}; records skipped as unreadable: {r['skipped_records']} "
             f"(see store/report.md); label rows skipped (unreadable or repeated): {len(r.get('skipped_label_rows', []))}",
             "- macro AUROC on the held-out test split: "
             + ("n/a (no label has both classes in the test split)" if m is None else
                f"**{m['auroc']:.4f}** [95% bootstrap CI {m['lo']:.4f}, {m['hi']:.4f}]"), "",
             "| label | train pos | test pos | AUROC | 95% CI |", "|---|---|---|---|---|"]
    for p in r["labels_per_record"]:
        ci = "n/a" if p["ci"] is None else f"{p['ci'][0]:.3f}-{p['ci'][1]:.3f}"
        au = "n/a" if p["auroc"] is None else f"{p['auroc']:.4f}"
        lines.append(f"| {p['label']} | {p['train_positives']} | {p['test_positives']} | {au} | {ci} |")
    if r.get("skipped_label_rows"):
        lines += ["", "## Label rows skipped (a cell could not be read, or the record was listed again)", "",
                  "| row | column | cell | problem | what lamae did |", "|---|---|---|---|---|"]
        lines += [f"| {b['row']} | {b['column']} | `{b['cell'].replace('|', '/')}` | {b['problem']} | "
                  f"{b.get('action', 'row skipped')} |" for b in r["skipped_label_rows"]]
    return "\n".join(lines) + "\n"
