"""The one preprocessing function. Its parameters travel with every store and checkpoint.

``prepare`` applies it once when packing a dataset; ``probe`` and the Python API read those
parameters back from the checkpoint, so a model can never see data prepared differently
from what it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from ..errors import RecordError, ShapeError

# lead_zscore: each lead to mean 0, std 1 (erases the amplitude ratios between leads).
# ecg_zscore:  each lead to mean 0, then one scale for the whole ECG (the RMS over its leads), so
#              the ratios between leads, what the cross-lead structure is made of, are kept.
NORMALIZATIONS = ("lead_zscore", "ecg_zscore", "none")

# Electrocardiographs sample at 100 Hz to 32 kHz (high-resolution ECG); a higher rate is
# almost always a unit mistake (samples per minute, kHz read as Hz) and is refused.
MAX_INPUT_FS = 50_000.0
# Resampling by the exact ratio of the two rates as a polyphase filter of at most this many
# phases; a ratio that needs more (e.g. 100 Hz from 257.123 Hz) is approximated within
# RATE_TOLERANCE (1 sample in 100,000) or refused.
MAX_PHASES = 50_000
RATE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Preprocessing:
    """Resample to ``fs``, optional zero-phase band-pass, fixed window, normalisation."""

    fs: float = 100.0
    window_s: float = 10.0
    bandpass: tuple[float, float] | None = (0.5, 40.0)
    normalize: str = "lead_zscore"
    max_invalid_fraction: float = 0.5

    def __post_init__(self):
        for name in ("fs", "window_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.fs <= 0 or self.window_s <= 0:
            raise ValueError(f"fs and window_s must be positive, got {self.fs}, {self.window_s}")
        if self.fs > MAX_INPUT_FS or self.window_s > 3600:
            raise ValueError(f"fs {self.fs:g} Hz or window {self.window_s:g} s out of range "
                             f"(at most {MAX_INPUT_FS:g} Hz and 3600 s)")
        if self.bandpass is not None:
            lo, hi = self.bandpass
            object.__setattr__(self, "bandpass", (float(lo), float(hi)))
            if not (0 <= lo < hi < self.fs / 2):
                raise ValueError(
                    f"band-pass {self.bandpass} Hz must satisfy 0 <= low < high < fs/2 = {self.fs / 2}"
                )
        if not 0 <= self.max_invalid_fraction <= 1:
            raise ValueError(f"max_invalid_fraction must be between 0 and 1, got {self.max_invalid_fraction}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if abs(self.fs * self.window_s - round(self.fs * self.window_s)) > 1e-6:
            raise ValueError("fs * window_s must be a whole number of samples")

    @property
    def n_samples(self) -> int:
        return int(round(self.fs * self.window_s))

    @property
    def min_input_fs(self) -> float:
        """Lowest input rate that still carries the band the model uses."""
        return 2 * self.bandpass[1] if self.bandpass is not None else self.fs / 2

    def to_dict(self) -> dict:
        """The parameters as stored in a store's meta.json and a checkpoint's config.json."""
        d = asdict(self)
        d["bandpass"] = list(self.bandpass) if self.bandpass else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        """Parameters as stored in a store's meta.json or a checkpoint's config.json; a value of
        the wrong type or an unknown key raises ValueError naming the field."""
        if not isinstance(d, dict):
            raise ValueError(f"preprocessing must be a mapping of parameters, got {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown preprocessing field(s) {sorted(unknown)}")
        d = dict(d)
        for key in ("fs", "window_s", "max_invalid_fraction"):
            if key in d and (isinstance(d[key], bool) or not isinstance(d[key], (int, float))
                             or not np.isfinite(d[key])):
                raise ValueError(f"preprocessing field {key!r} must be a finite number, got {d[key]!r}")
        band = d.get("bandpass")
        if band is not None:
            if (not isinstance(band, (list, tuple)) or len(band) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in band)):
                raise ValueError(f"preprocessing field 'bandpass' must be [low, high] in Hz or null, got {band!r}")
            d["bandpass"] = tuple(band)
        if "normalize" in d and not isinstance(d["normalize"], str):
            raise ValueError(f"preprocessing field 'normalize' must be a string, got {d['normalize']!r}")
        return cls(**d)


# The longest run of missing (NaN/inf) samples that is filled in by interpolation; a lead with a
# longer gap is treated as absent rather than given a made-up stretch of signal.
MAX_GAP_S = 1.0


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D boolean array."""
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return int(np.max(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)))


def lead_problems(signal: np.ndarray, leads, *, max_invalid_fraction: float = 0.5,
                  fs: float | None = None) -> dict[str, str]:
    """Leads that carry no usable signal, by name: mostly NaN/inf, a gap of missing samples
    longer than ``MAX_GAP_S`` (when ``fs`` is given), flat, or saturated.

    Flat: less than 1 microvolt peak to peak (a disconnected electrode). Saturated: more than
    20% of the samples sit exactly at the lead's extreme values (the recorder's rail).
    """
    out = {}
    x = np.asarray(signal, dtype=np.float64)
    for lead, row in zip(leads, x):
        finite = np.isfinite(row)
        bad = 1.0 - finite.mean()
        if bad > max_invalid_fraction:
            out[lead] = f"{bad:.0%} NaN/inf"
            continue
        gap = longest_run(~finite) / fs if fs and bad > 0 else 0.0
        if gap > MAX_GAP_S:
            out[lead] = f"a {gap:.2g} s run of NaN/inf (gaps up to {MAX_GAP_S:g} s are interpolated)"
            continue
        v = row[finite]
        if np.ptp(v) < 1e-3:
            out[lead] = "flat (no signal)"
            continue
        at_rail = float(np.mean((v == v.max()) | (v == v.min())))
        if at_rail > 0.2:
            out[lead] = f"saturated ({at_rail:.0%} of samples at the rail)"
    return out


def _fill_invalid(x: np.ndarray, leads, record_id: str, max_frac: float) -> np.ndarray:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    x = x.copy()
    n = x.shape[1]
    t = np.arange(n)
    for i in np.flatnonzero(bad.any(axis=1)):
        frac = bad[i].mean()
        if frac >= 1.0:
            raise RecordError(record_id, f"lead {leads[i]} is all NaN/inf")
        if frac > max_frac:
            raise RecordError(record_id, f"lead {leads[i]} is {frac:.0%} NaN/inf")
        good = ~bad[i]
        x[i, bad[i]] = np.interp(t[bad[i]], t[good], x[i, good])
    return x


def resample_ratio(fs_in: float, fs_out: float) -> Fraction:
    """up/down of the polyphase filter taking ``fs_in`` to ``fs_out``: the exact ratio of the
    two rates (each read to 1e-6 Hz), or, when that needs more than ``MAX_PHASES`` phases, the
    nearest ratio within ``RATE_TOLERANCE``. ValueError when neither exists."""
    exact = Fraction(fs_out).limit_denominator(10**6) / Fraction(fs_in).limit_denominator(10**6)
    if max(exact.numerator, exact.denominator) <= MAX_PHASES:
        return exact
    for bound in (1000, 10_000, MAX_PHASES):
        approx = exact.limit_denominator(bound)
        if approx > 0 and approx.numerator <= MAX_PHASES and abs(approx / exact - 1) <= RATE_TOLERANCE:
            return approx
    raise ValueError(f"cannot resample {fs_in:g} Hz to {fs_out:g} Hz within {RATE_TOLERANCE:g} of the exact "
                     f"rate with at most {MAX_PHASES} filter phases")


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis (anti-aliased), by the exact ratio of the rates
    (see :func:`resample_ratio`). The signal is extended by its linear trend at both ends (not
    by zeros), so a lead's baseline offset leaves no transient."""
    if abs(fs_in - fs_out) < 1e-9:
        return x
    ratio = resample_ratio(fs_in, fs_out)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1, padtype="line")


def normalize(x: np.ndarray, how: str) -> np.ndarray:
    """(leads, samples) -> normalised. Leads without signal (std below 1e-6) become zeros and
    do not count towards an ECG's scale."""
    if how == "none":
        return x
    with np.errstate(over="ignore", invalid="ignore"):
        mu = x.mean(axis=1, keepdims=True)
        sd = x.std(axis=1, keepdims=True)
    if not (np.isfinite(mu).all() and np.isfinite(sd).all()):
        raise OverflowError("values too large to normalise in float64")
    live = sd > 1e-6
    if how == "lead_zscore":
        return np.where(live, (x - mu) / np.maximum(sd, 1e-6), 0.0)
    scale = np.sqrt(np.mean(sd[live] ** 2)) if live.any() else 1.0
    return np.where(live, (x - mu) / max(scale, 1e-6), 0.0)


def preprocess(
    signal: np.ndarray,
    fs: float,
    prep: Preprocessing,
    *,
    leads=None,
    record_id: str = "input",
    crop: str = "start",
) -> np.ndarray:
    """Return ``prep.n_samples`` samples per lead, float32, as the model expects.

    ``signal`` is (n_leads, n_samples) in mV at rate ``fs``. Isolated NaN/inf samples are
    interpolated; a lead that is entirely invalid raises :class:`RecordError`. Records
    shorter than the window are zero-padded at the end (after normalisation, so padding
    is the lead's mean); longer ones are cropped (``crop="start"`` or ``"center"``).
    """
    return preprocess_windows(signal, fs, prep, windows=crop, leads=leads, record_id=record_id)[0]


def window_starts(n_total: int, n_win: int, windows: str) -> list[int]:
    """Starts of the windows of a record of ``n_total`` samples: ``start``, ``center``, or ``tile``
    (consecutive windows; a final partial window covering at least half a window is taken as
    the full window ending at the last sample)."""
    if n_total <= n_win or windows == "start":
        return [0]
    if windows == "center":
        return [(n_total - n_win) // 2]
    if windows != "tile":
        raise ValueError(f"windows must be 'start', 'center' or 'tile', got {windows!r}")
    starts = list(range(0, n_total - n_win + 1, n_win))
    if n_total - (starts[-1] + n_win) >= n_win / 2:
        starts.append(n_total - n_win)
    return starts


def preprocess_windows(signal: np.ndarray, fs: float, prep: Preprocessing, *, windows: str = "start",
                       leads=None, record_id: str = "input") -> np.ndarray:
    """The windows of one record as the model expects them, (W, n_leads, prep.n_samples) float32.

    Every window is made the same way, whichever path asks (``prepare``, the API, ``embed``):
    the record is resampled once, then each window is band-passed on a margin of one second of
    signal on each side (so filter edge effects stay out of it), cut and normalised.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 2:
        raise ShapeError(f"{record_id}: expected (leads, samples), got shape {x.shape}")
    if x.shape[1] < 2:
        raise RecordError(record_id, f"record has {x.shape[1]} samples")
    if not (np.isfinite(fs) and fs > 0):
        raise RecordError(record_id, f"invalid sampling rate {fs}")
    if fs < prep.min_input_fs:
        raise RecordError(record_id, f"sampling rate {fs:g} Hz is too low: the preprocessing keeps "
                                     f"{prep.bandpass} Hz and needs at least {prep.min_input_fs:g} Hz")
    if fs > MAX_INPUT_FS:
        raise RecordError(record_id, f"sampling rate {fs:g} Hz is above {MAX_INPUT_FS:g} Hz, higher than "
                                     "any electrocardiograph records; check the rate's units")
    leads = list(leads) if leads is not None else [str(i) for i in range(x.shape[0])]
    x = _fill_invalid(x, leads, record_id, prep.max_invalid_fraction)
    try:
        x = resample(x, fs, prep.fs)
    except ValueError as exc:
        raise RecordError(record_id, str(exc)) from None
    n, margin = prep.n_samples, int(prep.fs)
    sos = sps.butter(2, prep.bandpass, btype="bandpass", fs=prep.fs, output="sos") if prep.bandpass else None
    out = []
    for start in window_starts(x.shape[1], n, windows):
        lo = max(0, start - margin)
        w = x[:, lo:start + n + margin]
        if sos is not None:
            padlen = min(w.shape[1] - 1, 3 * (2 * sos.shape[0] + 1) * 10)
            w = sps.sosfiltfilt(sos, w, axis=-1, padlen=padlen)
        try:
            w = normalize(w[:, start - lo:start - lo + n], prep.normalize)
        except OverflowError:
            peak = float(np.max(np.abs(x)))
            raise RecordError(record_id, f"values up to {peak:.3g} overflow in normalisation; "
                                         "is the signal in millivolts?") from None
        if w.shape[1] < n:
            w = np.pad(w, ((0, 0), (0, n - w.shape[1])))
        with np.errstate(over="ignore"):
            w = w.astype(np.float32)
        if not np.isfinite(w).all():
            raise RecordError(record_id, "values too large for float32 after preprocessing; "
                                         "is the signal in millivolts?")
        out.append(w)
    return np.stack(out)
