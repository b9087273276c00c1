"""The common record type every reader yields: canonical leads, millivolts, a known rate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RecordError, ShapeError
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
