"""Dataset readers. Each hides its dataset's quirks and yields :class:`EcgRecord`.

A reader lists its records cheaply (``items()``) and reads one on demand (``read(item)``),
so ``prepare`` can stream millions of records with flat memory and resume mid-way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import LabelError, RecordError
from ..files import missing_folder
from ..labels.icd10 import parse_cells, parse_code_list
from .record import EcgRecord, SourceItem
from .wfdb_io import read_wfdb

ICD_COLUMNS = ("ed_diag_ed", "ed_diag_hosp", "hosp_diag_hosp", "all_diag_hosp", "all_diag_all")


class WfdbFolderReader:
    """Any folder of WFDB records (found by walking for ``.hea`` files)."""

    name = "wfdb"
    label_kind = "none"

    def __init__(self, root: str | os.PathLike, *, extra_leads: str = "error"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(missing_folder(self.root))
        self.extra_leads = extra_leads

    def items(self) -> list[SourceItem]:
        out = []
        for hea in sorted(self.root.rglob("*.hea")):
            rel = hea.relative_to(self.root).with_suffix("")
            out.append(SourceItem(record_id=str(rel), patient_id=str(rel), path=str(rel)))
        return out

    def read(self, item: SourceItem) -> EcgRecord:
        return read_wfdb(self.root / item.path, record_id=item.record_id,
                         extra_leads=self.extra_leads, patient_id=item.patient_id)


def read_ext_icd_labels(path: str | os.PathLike, column: str = "all_diag_all") -> pd.DataFrame:
    """Read MIMIC-IV-ECG-Ext-ICD ``records_w_diag_icd10.csv``.

    Returns one row per ECG with ``study_id``, ``subject_id``, ``fold``, ``strat_fold`` (where
    present) and ``codes`` (a list of dot-less ICD-10 codes parsed literally from ``column``).
    A cell that cannot be parsed gives ``codes`` None (the ECG is left unlabelled, not given an
    empty diagnosis list) and is listed in ``attrs["bad_cells"]`` with its row, column and text.
    """
    path = Path(path)
    if column not in ICD_COLUMNS:
        raise LabelError(f"{path}: label column must be one of {ICD_COLUMNS}, got {column!r}")
    try:
        # Only the columns used: the file has ~30 (800k rows in MIMIC-IV-ECG-Ext-ICD).
        wanted = {"study_id", "subject_id", "fold", "strat_fold", column}
        df = pd.read_csv(path, dtype={column: str}, keep_default_na=False, na_values=[""],
                         usecols=lambda c: c in wanted)
    except FileNotFoundError:
        raise LabelError(f"{path}: label file does not exist") from None
    missing = {"study_id", "subject_id", column} - set(df.columns)
    if missing:
        raise LabelError(f"{path}: missing columns {sorted(missing)}")
    codes, bad = parse_cells(df[column].tolist(), parse_code_list, path=path, column=column)
    out = df[[c for c in ("study_id", "subject_id", "fold", "strat_fold") if c in df.columns]].copy()
    out["codes"] = codes  # None where the cell could not be read (listed in attrs["bad_cells"])
    out.attrs["bad_cells"] = bad
    return out


def repeated_rows(keys, labels, *, file, column: str, lines=None) -> tuple[set, list[dict]]:
    """Rows of a table that name a record an earlier row already named. A repeat with the same
    labels is ignored; a repeat with other labels makes the record's labels unknown (it is
    stored unlabelled, not given whichever row came last). ``lines``: each row's line in the
    CSV (default: i + 2). Returns (keys whose labels conflict, problems for the report)."""
    lines = [i + 2 for i in range(len(keys))] if lines is None else [int(v) for v in lines]
    first, conflicting, problems = {}, set(), []
    for line, key, lab in zip(lines, keys, labels):
        if key not in first:
            first[key] = (line, lab)
            continue
        line0, lab0 = first[key]
        same = lab == lab0
        if not same:
            conflicting.add(key)
        problems.append({"file": str(file), "row": line, "column": column, "cell": str(key)[:80],
                         "problem": f"names the same record as row {line0}" + ("" if same else " with other labels"),
                         "action": "row ignored (the record is stored once)" if same else "record stored unlabelled"})
    return conflicting, problems


class MimicEcgReader:
    """MIMIC-IV-ECG, optionally with Ext-ICD labels: v1.0 (``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN``)
    and the open demo v0.1 (``files/pNNNNNNNN/sNNNNNNNNN/NNNNNNNNN``, no group folder).

    Records are listed from ``record_list.csv`` when present, else by walking ``files/``.
    Labels default to ``records_w_diag_icd10.csv`` in the dataset root when it exists.
    The quirk hidden here: MIMIC stores aVF before aVL; records come out in canonical names
    and the store places every lead in the canonical slot, so order never matters downstream.
    """

    name = "mimic"
    label_kind = "icd10"

    def __init__(self, root: str | os.PathLike, *, labels: str | os.PathLike | None = None,
                 label_column: str = "all_diag_all"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(missing_folder(self.root))
        default = self.root / "records_w_diag_icd10.csv"
        self.labels_path = Path(labels) if labels else (default if default.exists() else None)
        self.label_column = label_column
        # Rows of record_list.csv / the labels file that could not be read (filled by items();
        # prepare lists them in its report): {"file", "row", "column", "cell", "problem", "action"}
        self.problems: list[dict] = []

    def _record_table(self) -> pd.DataFrame:
        rl = self.root / "record_list.csv"
        if rl.exists():
            try:
                df = pd.read_csv(rl, dtype=str, keep_default_na=False)
            except (pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise LabelError(f"{rl}: not a readable CSV ({exc})") from None
            missing = {"subject_id", "study_id", "path"} - set(df.columns)
            if missing:
                raise LabelError(f"{rl}: missing columns {sorted(missing)}")
            df = df[["subject_id", "study_id", "path"]].copy()
            good = np.ones(len(df), bool)
            for col in ("subject_id", "study_id"):
                num = pd.to_numeric(df[col], errors="coerce")
                for row in np.flatnonzero(num.isna().to_numpy() & good):
                    self.problems.append({"file": str(rl), "row": int(row) + 2, "column": col,
                                          "cell": str(df[col].iat[row])[:80], "problem": f"{col} is not a number",
                                          "action": "record skipped"})
                good &= num.notna().to_numpy()
                df[col] = num
            lines = np.flatnonzero(good) + 2
            df = df[good].astype({"subject_id": int, "study_id": int})
            # a study listed twice would be stored twice: the first row is kept
            _, repeats = repeated_rows(df["study_id"].tolist(), [None] * len(df), file=rl, column="study_id",
                                       lines=lines)
            self.problems += repeats
            dup = df["study_id"].duplicated().to_numpy()
            return df[~dup]
        rows = []
        for hea in sorted((self.root / "files").rglob("*.hea")):
            rel = hea.relative_to(self.root).with_suffix("")
            # v1.0: files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN; the demo v0.1: files/pNNNNNNNN/sNNNNNNNNN/NNNNNNNNN
            parts = rel.parts
            if (len(parts) not in (4, 5) or not parts[-3].startswith("p") or not parts[-2].startswith("s")
                    or not parts[-3][1:].isdigit() or not parts[-2][1:].isdigit()):
                self.problems.append({"file": str(hea), "row": None, "column": "path", "cell": str(rel),
                                      "problem": "path follows neither files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN "
                                                 "(v1.0) nor files/pNNNNNNNN/sNNNNNNNNN/NNNNNNNNN (the demo)",
                                      "action": "record skipped"})
                continue
            rows.append({"subject_id": int(parts[-3][1:]), "study_id": int(parts[-2][1:]), "path": str(rel)})
        if not rows:
            raise RecordError(str(self.root), "no record_list.csv and no usable .hea files under files/")
        return pd.DataFrame(rows)

    def items(self) -> list[SourceItem]:
        self.problems = []
        recs = self._record_table()
        codes_by_study, fold_by_study = {}, {}
        if self.labels_path is not None:
            lab = read_ext_icd_labels(self.labels_path, self.label_column)
            studies = pd.to_numeric(lab["study_id"], errors="coerce")
            ok = studies.notna().to_numpy()
            for row in np.flatnonzero(~ok):
                self.problems.append({"file": str(self.labels_path), "row": int(row) + 2, "column": "study_id",
                                      "cell": str(lab["study_id"].iat[row])[:80], "problem": "study_id is not a number",
                                      "action": "label row ignored"})
            keys = [int(v) for v in studies[ok]]
            conflicting, repeats = repeated_rows(keys, [None if c is None else tuple(sorted(c)) for c in lab["codes"][ok]],
                                                 file=self.labels_path, column="study_id", lines=np.flatnonzero(ok) + 2)
            self.problems += repeats
            codes_by_study = {}
            for s_, c in zip(keys, lab["codes"][ok]):
                if c is not None and s_ not in conflicting and s_ not in codes_by_study:
                    codes_by_study[s_] = c
            for cell in lab.attrs["bad_cells"]:
                self.problems.append({"file": str(self.labels_path), **cell, "action": "record stored unlabelled"})
            if "fold" in lab.columns:
                folds = pd.to_numeric(lab["fold"], errors="coerce")
                good = ok & folds.notna().to_numpy()
                fold_by_study = dict(zip(studies[good].astype(int), folds[good].astype(int)))
        return [
            SourceItem(
                record_id=str(study), patient_id=str(subject), path=path,
                codes=tuple(codes_by_study[int(study)]) if int(study) in codes_by_study else None,
                extra={"fold": fold_by_study[int(study)]} if int(study) in fold_by_study else {},
            )
            for subject, study, path in recs.itertuples(index=False)
        ]

    def read(self, item: SourceItem) -> EcgRecord:
        return read_wfdb(self.root / item.path, record_id=item.record_id, patient_id=item.patient_id)


PTBXL_TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")


def ptbxl_labels(scp_codes: dict, statements: pd.DataFrame, task: str) -> list[str]:
    """PTB-XL statements of one record mapped to a task's label set (Wagner et al. 2020).

    As in the PTB-XL benchmark, every statement in ``scp_codes`` counts, whatever its
    likelihood; diagnostic statements map up to their subclass or superclass.
    """
    if task not in PTBXL_TASKS:
        raise LabelError(f"PTB-XL task must be one of {PTBXL_TASKS}, got {task!r}")
    out = []
    for code in scp_codes:
        if code not in statements.index:
            continue
        row = statements.loc[code]
        if task == "all":
            out.append(code)
        elif task == "diagnostic" and row["diagnostic"] == 1:
            out.append(code)
        elif task == "subdiagnostic" and row["diagnostic"] == 1 and isinstance(row["diagnostic_subclass"], str):
            out.append(row["diagnostic_subclass"])
        elif task == "superdiagnostic" and row["diagnostic"] == 1 and isinstance(row["diagnostic_class"], str):
            out.append(row["diagnostic_class"])
        elif task in ("form", "rhythm") and row[task] == 1:
            out.append(code)
    return sorted(set(out))


class PtbXlReader:
    """PTB-XL (``ptbxl_database.csv`` + ``scp_statements.csv`` + ``records100/``/``records500/``).

    Labels are the chosen task's statements; the split is the official one from
    ``strat_fold`` (1-8 train, 9 val, 10 test) and the fold is kept for cross-validation.
    Quirk hidden here: lead names are upper case (``AVR``), canonicalised by the WFDB reader.
    """

    name = "ptbxl"
    label_kind = "flat"

    def __init__(self, root: str | os.PathLike, *, task: str = "superdiagnostic", rate: int = 500):
        self.root = Path(root)
        db = self.root / "ptbxl_database.csv"
        if not db.exists():
            raise FileNotFoundError(f"{db}: PTB-XL database file is missing")
        if rate not in (100, 500):
            raise ValueError(f"PTB-XL comes at 100 or 500 Hz, not {rate}")
        if task not in PTBXL_TASKS:
            raise LabelError(f"PTB-XL task must be one of {PTBXL_TASKS}, got {task!r}")
        self.task, self.rate = task, rate

    def items(self) -> list[SourceItem]:
        import ast

        db = pd.read_csv(self.root / "ptbxl_database.csv")
        statements = pd.read_csv(self.root / "scp_statements.csv", index_col=0)
        column = "filename_hr" if self.rate == 500 else "filename_lr"
        out = []
        for i, row in enumerate(db.itertuples(index=False)):
            try:
                scp = ast.literal_eval(row.scp_codes)
            except (ValueError, SyntaxError):
                raise LabelError(f"{self.root / 'ptbxl_database.csv'} row {i + 2}: cannot parse scp_codes") from None
            fold = int(row.strat_fold)
            out.append(SourceItem(
                record_id=str(row.ecg_id), patient_id=str(int(row.patient_id)), path=getattr(row, column),
                codes=tuple(ptbxl_labels(scp, statements, self.task)),
                extra={"fold": fold, "split": "test" if fold == 10 else "val" if fold == 9 else "train"},
            ))
        return out

    def read(self, item: SourceItem) -> EcgRecord:
        return read_wfdb(self.root / item.path, record_id=item.record_id, patient_id=item.patient_id)


def header_field(comments, key: str) -> str | None:
    """Value of a ``# Key: value`` header comment (case-insensitive), or None."""
    for c in comments:
        name, _, value = c.partition(":")
        if name.strip().lower() == key.lower():
            return value.strip()
    return None


class ChallengeReader(WfdbFolderReader):
    """PhysioNet/CinC Challenge 2020/2021 and CPSC 2018: ``.mat`` + ``.hea`` records, SNOMED-CT
    diagnoses in the ``# Dx:`` header comment, age and sex in ``# Age:`` / ``# Sex:``.

    Records vary in length (CPSC: 6-60 s); the preprocessing policy applies: longer records
    are cropped to the window from the start, shorter ones zero-padded at the end.
    """

    name = "challenge"
    label_kind = "flat"

    def items(self) -> list[SourceItem]:
        out = []
        for item in super().items():
            hea = (self.root / item.path).with_suffix(".hea")
            if not hea.is_file():  # a pipe would block here; read() names the problem
                out.append(item)
                continue
            comments = [ln[1:].strip() for ln in hea.read_text(errors="replace").splitlines() if ln.startswith("#")]
            dx = header_field(comments, "Dx")
            codes = tuple(c.strip() for c in dx.split(",") if c.strip()) if dx and dx.lower() != "unknown" else ()
            out.append(SourceItem(item.record_id, item.patient_id, item.path, codes=codes,
                                  extra={"age": header_field(comments, "Age"), "sex": header_field(comments, "Sex")}))
        return out


class Code15Reader:
    """CODE-15%: MATLAB ``.mat`` files with ``feats`` (12 x samples, float32, mV, 400 Hz) and
    ``meta.csv`` (exam_id, patient_id, the six labels 1dAVb RBBB LBBB SB ST AF, save_file).

    Quirk hidden here: exams are zero-padded to 4096 samples; all-zero samples at both ends
    are removed so the record has its true length.
    """

    name = "code15"
    label_kind = "flat"
    LABELS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not (self.root / "meta.csv").exists():
            raise FileNotFoundError(f"{self.root / 'meta.csv'}: CODE-15% meta file is missing")

    def items(self) -> list[SourceItem]:
        path = self.root / "meta.csv"
        try:
            meta = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise LabelError(f"{path}: not a readable CSV ({exc})") from None
        missing = {"exam_id", "patient_id"} - set(meta.columns)
        if missing:
            raise LabelError(f"{path}: missing columns {sorted(missing)} (CODE-15%'s meta.csv has exam_id, "
                             f"patient_id, {', '.join(self.LABELS)} and trace_file)")
        self.problems = []
        files = {p.name: p for p in self.root.rglob("*.mat")}
        rows = meta.to_dict("records")
        blank = [i for i, row in enumerate(rows) if not row["exam_id"].strip()]
        self.problems += [{"file": str(path), "row": i + 2, "column": "exam_id", "cell": "", "problem": "exam_id is empty",
                           "action": "row ignored"} for i in blank]
        rows = [(i, row) for i, row in enumerate(rows) if row["exam_id"].strip()]
        codes = [tuple(lab for lab in self.LABELS if str(row.get(lab)).strip().lower() == "true") for _, row in rows]
        conflicting, repeats = repeated_rows([row["exam_id"].strip() for _, row in rows], codes, file=path,
                                             column="exam_id", lines=[i + 2 for i, _ in rows])
        self.problems += repeats
        out, seen, by_file = [], set(), {}
        for (i, row), c in zip(rows, codes):
            exam = row["exam_id"].strip()
            if exam in seen:
                continue
            seen.add(exam)
            rec = row.get("save_file") or f"code_15_{exam}.mat"
            if rec in by_file:  # one ECG named by two exams: stored once, never twice under two labels
                first = by_file[rec]
                same = first.codes == (None if exam in conflicting else c)
                self.problems.append({"file": str(path), "row": i + 2, "column": "save_file", "cell": rec,
                                      "problem": f"exam {exam} names the file of exam {first.record_id}"
                                                 + ("" if same else " with other labels"),
                                      "action": "row ignored" + ("" if same else f"; exam {first.record_id} stored "
                                                                                   "unlabelled")})
                if not same:
                    first.codes = None
                continue
            found = files.get(rec)
            by_file[rec] = SourceItem(record_id=exam, patient_id=row["patient_id"].strip() or exam,
                                      path=str(found.relative_to(self.root)) if found else rec,
                                      codes=None if exam in conflicting else c)
            out.append(by_file[rec])
        return out

    def read(self, item: SourceItem) -> EcgRecord:
        import numpy as np
        import scipy.io

        path = self.root / item.path
        if not path.exists():
            raise RecordError(item.record_id, f"data file {item.path} is missing")
        if not path.is_file():
            raise RecordError(item.record_id, f"data file {item.path} is not a regular file (a pipe, device or folder)")
        try:
            mat = scipy.io.loadmat(path)
        except Exception as exc:
            raise RecordError(item.record_id, f"{item.path} cannot be read as MATLAB ({exc})") from None
        if "feats" not in mat:
            raise RecordError(item.record_id, f"{item.path} has no 'feats' array")
        x = np.asarray(mat["feats"], dtype=np.float32)
        if x.ndim != 2 or 12 not in x.shape:
            raise RecordError(item.record_id, f"'feats' has shape {x.shape}, expected 12 leads")
        if x.shape[0] != 12:
            x = x.T
        fs = float(np.ravel(mat.get("curr_sample_rate", [400]))[0])
        used = np.flatnonzero(np.any(x != 0, axis=0))
        if len(used) == 0:
            raise RecordError(item.record_id, "every sample is zero")
        x = x[:, used[0]: used[-1] + 1]
        return EcgRecord(item.record_id, x, ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4",
                                             "V5", "V6"), fs, patient_id=item.patient_id)


class PtbReader(WfdbFolderReader):
    """PTB Diagnostic ECG Database: 15 channels (12 leads in lower case + Frank vx, vy, vz)
    at 1000 Hz; the 12 standard leads are picked by name, case-insensitively."""

    name = "ptb"

    def __init__(self, root: str | os.PathLike):
        super().__init__(root, extra_leads="drop")
