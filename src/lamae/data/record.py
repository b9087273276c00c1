"""The common record type every reader yields: canonical leads, millivolts, a known rate."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LamaeError, RecordError, ShapeError
from ..files import missing_folder
from ..leads import canonical_leads


_SEX = {"m": "M", "male": "M", "f": "F", "female": "F"}


def sex_code(value) -> str:
    """``M`` or ``F`` for the ways files spell a sex (``Male``, ``FEMALE``, ``m``); anything else as
    given (``U``), and an empty string where there is none."""
    text = str(value or "").strip()
    return _SEX.get(text.lower(), text)


@dataclass
class EcgRecord:
    """One ECG. ``signal`` is (n_leads, n_samples) float32 in millivolts, rows named by ``leads``."""

    record_id: str
    signal: np.ndarray
    leads: tuple[str, ...]
    fs: float
    patient_id: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        sig = np.asarray(self.signal)
        if sig.ndim != 2:
            raise ShapeError(f"{self.record_id}: signal must be 2-D (leads, samples), got shape {sig.shape}")
        self.leads = canonical_leads(self.leads, source=self.record_id)
        if sig.shape[0] != len(self.leads):
            raise ShapeError(
                f"{self.record_id}: signal has {sig.shape[0]} rows but {len(self.leads)} lead names"
            )
        if not (np.isfinite(self.fs) and self.fs > 0):
            raise RecordError(self.record_id, f"sampling rate must be positive, got {self.fs}")
        self.signal = sig.astype(np.float32, copy=False)
        self.fs = float(self.fs)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


@dataclass(slots=True)
class SourceItem:  # slots: 800k of these are listed for MIMIC-IV-ECG
    record_id: str
    patient_id: str
    path: str
    codes: tuple[str, ...] | None = None  # None: no label row for this record
    extra: dict = field(default_factory=dict)


def derive_limb_leads(signal: np.ndarray, leads: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    """Add III, aVR, aVL and aVF from I and II where the record lacks them (Einthoven:
    III = II - I; Goldberger: aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2).
    Returns the signal, its lead names and the leads derived."""
    if "I" not in leads or "II" not in leads:
        return signal, leads, []
    i, ii = signal[leads.index("I")].astype(np.float64), signal[leads.index("II")].astype(np.float64)
    formulas = {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
    derived = [name for name in formulas if name not in leads]
    if not derived:
        return signal, leads, []
    rows = np.concatenate([signal, np.stack([formulas[d] for d in derived]).astype(signal.dtype)])
    return rows, tuple(leads) + tuple(derived), derived


def repeated_lead(source: str, lead: str, first, second) -> str:
    """The problem of a file whose channels name one lead twice (the record is skipped, not stored
    with one of them dropped unseen)."""
    same = f"both labelled {str(first)!r}" if str(first) == str(second) else f"labelled {str(first)!r} and {str(second)!r}"
    return (f"{source}two channels are lead {lead} ({same}); lamae cannot tell which one is {lead}, so the "
            "record is skipped: correct the lead labels in the file")


class FileFolderReader:
    """Every file with one of ``suffixes`` under a folder, one record each."""

    suffixes: tuple[str, ...] = ()
    label_kind = "none"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(missing_folder(self.root))
        self._check_library()

    def _check_library(self) -> None:
        pass

    def items(self):
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in self.suffixes)
        out = []
        for f in files:
            rel = f.relative_to(self.root)
            rid = str(rel.with_suffix(""))
            out.append(SourceItem(record_id=rid, patient_id=rid, path=str(rel)))
        return out

    def read(self, item) -> EcgRecord:
        path = self.root / item.path
        try:
            return self._read(path, item)
        except (RecordError, LamaeError):
            raise
        except Exception as exc:  # the library's own errors for a damaged or foreign file
            raise RecordError(item.record_id, f"{path.name}: cannot be read as {self.name.upper()} "
                                              f"({type(exc).__name__}: {exc})") from None
