"""The MIMIC-IV-ECG ICD benchmark of Strodthoff et al., as scenario strings.

``mimic_{subsettrain}_{labelsettrain}_{subsettest}_{labelsettest}_{mincnt}_{digits}``, e.g.
``mimic_all_all_all_all_2000_5A`` or ``mimic_ed_all_edfirst_all_2000_5A``:

- subsets: ``all`` (every ECG), ``ed`` / ``hosp`` (taken in the ED / in hospital),
  ``edfirst`` / ``hospfirst`` (the first ECG of an ED / hospital stay);
- label sets: ``all`` -> ``all_diag_all``, ``hosp`` -> ``all_diag_hosp``, ``ed`` -> ``ed_diag_ed``;
- digits ``3``/``4``/``5``: codes truncated to that many characters, trailing ``X``
  placeholders stripped; with ``A`` every prefix ancestor from 3 characters is added;
- ``mincnt``: codes kept with at least that many occurrences among *training* ECGs
  (train subset and train label set only);
- folds 0-17 train (train subset and labels), 18 val and 19 test (test subset and labels);
  ECGs left with no code are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import LabelError
from .icd10 import parse_cells, parse_code_list

LABEL_SETS = {"all": "all_diag_all", "hosp": "all_diag_hosp", "ed": "ed_diag_ed"}
SUBSETS = ("all", "ed", "hosp", "edfirst", "hospfirst")
_SCENARIO = re.compile(r"^mimic_([a-z]+)_([a-z]+)_([a-z]+)_([a-z]+)_(\d+)_([345])(A?)$")


@dataclass(frozen=True)
class Scenario:
    subset_train: str
    labels_train: str
    subset_test: str
    labels_test: str
    min_count: int
    digits: int
    ancestors: bool

    @classmethod
    def parse(cls, text: str) -> "Scenario":
        m = _SCENARIO.match(text)
        if not m:
            raise LabelError(f"scenario {text!r} does not read as "
                             "mimic_{subsettrain}_{labelsettrain}_{subsettest}_{labelsettest}_{mincnt}_{digits}[A]")
        st, lt, ss, ls, mincnt, digits, anc = m.groups()
        for s in (st, ss):
            if s not in SUBSETS:
                raise LabelError(f"scenario {text!r}: subset {s!r} is not one of {SUBSETS}")
        for lab in (lt, ls):
            if lab not in LABEL_SETS:
                raise LabelError(f"scenario {text!r}: label set {lab!r} is not one of {tuple(LABEL_SETS)}")
        return cls(st, lt, ss, ls, int(mincnt), int(digits), anc == "A")


def transform_codes(codes, digits: int, ancestors: bool) -> list[str]:
    """Truncate to ``digits`` characters, strip trailing X, optionally add prefix ancestors."""
    out = set()
    for code in codes:
        c = code.replace(".", "").upper()[:digits].rstrip("X")
        if len(c) < 3:
            continue
        out.add(c)
        if ancestors:
            out.update(c[:k] for k in range(3, len(c)))
    return sorted(out)


def _subset_mask(df: pd.DataFrame, subset: str) -> pd.Series:
    def flag(col):
        if col not in df.columns:
            raise LabelError(f"labels file has no column {col!r}, needed by subset {subset!r}")
        return df[col].astype(str).str.lower().isin(["true", "1", "1.0"])

    if subset == "all":
        return pd.Series(True, index=df.index)
    place = flag("ecg_taken_in_ed" if subset.startswith("ed") else "ecg_taken_in_hosp")
    if subset.endswith("first"):
        place &= df["ecg_no_within_stay"].fillna(-1).astype(int) == 0
    return place


def build_scenario(df: pd.DataFrame, scenario: str | Scenario, *, source: str = "labels") -> dict:
    """Label sets per split for a scenario. Returns ``{"codes": [...], "train"|"val"|"test": DataFrame}``;
    each frame has ``study_id``, ``subject_id``, ``fold`` and ``labels`` (a list of kept codes)."""
    sc = Scenario.parse(scenario) if isinstance(scenario, str) else scenario
    if "fold" not in df.columns:
        raise LabelError(f"{source}: no 'fold' column")

    bad_cells = []

    def labelled(mask, label_set):
        col = LABEL_SETS[label_set]
        if col not in df.columns:
            raise LabelError(f"{source}: no column {col!r}, needed by label set {label_set!r}")
        part = df[mask].copy()
        codes, bad = parse_cells(part[col], parse_code_list, path=source, column=col)
        # rows are numbered as CSV lines of the whole file (header = line 1)
        lines = np.flatnonzero(mask.to_numpy()) + 2
        bad_cells.extend({**b, "row": int(lines[b["row"] - 2]), "action": "ECG left out"} for b in bad)
        part["labels"] = [None if c is None else transform_codes(c, sc.digits, sc.ancestors) for c in codes]
        return part.loc[np.array([v is not None for v in part["labels"]], dtype=bool)]

    folds = pd.to_numeric(df["fold"], errors="coerce")  # a row without a readable fold is in no split
    bad_cells.extend({"row": int(i) + 2, "column": "fold", "cell": str(df["fold"].iat[i])[:80],
                      "problem": "fold is not a number", "action": "ECG left out"}
                     for i in np.flatnonzero(folds.isna().to_numpy()))
    train = labelled((folds <= 17) & _subset_mask(df, sc.subset_train), sc.labels_train)
    val = labelled((folds == 18) & _subset_mask(df, sc.subset_test), sc.labels_test)
    test = labelled((folds == 19) & _subset_mask(df, sc.subset_test), sc.labels_test)
    counts = pd.Series([c for labels in train["labels"] for c in labels], dtype=object).value_counts()
    keep = set(counts[counts >= sc.min_count].index)
    out = {"codes": sorted(keep), "scenario": sc, "bad_cells": bad_cells}
    for name, part in (("train", train), ("val", val), ("test", test)):
        part["labels"] = [[c for c in labels if c in keep] for labels in part["labels"]]
        part = part[part["labels"].map(len) > 0]
        out[name] = part[["study_id", "subject_id", "fold", "labels"]].reset_index(drop=True)
    return out


def cardiac_summary(codes, aurocs) -> dict:
    """Macro AUROC over cardiac (chapter IX, I00-I99) and non-cardiac codes; codes with AUROC > 0.8."""
    import numpy as np

    pairs = [(c, a) for c, a in zip(codes, aurocs) if a is not None and np.isfinite(a)]
    cardiac = [a for c, a in pairs if c.startswith("I")]
    other = [a for c, a in pairs if not c.startswith("I")]
    return {"cardiac_macro": float(np.mean(cardiac)) if cardiac else None, "n_cardiac": len(cardiac),
            "noncardiac_macro": float(np.mean(other)) if other else None, "n_noncardiac": len(other),
            "n_above_0.8": int(sum(a > 0.8 for _, a in pairs))}
