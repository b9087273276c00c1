"""WFDB reading and writing with errors that name the record.

Format 16 (MIMIC-IV-ECG, PTB-XL, and the Challenge's ``16x1+24`` .mat files) is read
directly with NumPy after checking the file size against the header: it is the hot path
of ``prepare`` and a truncated file must be reported, not reshaped into garbage. Other
formats go through ``wfdb.rdrecord``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import wfdb

from ..errors import LeadNameError, RecordError
from ..leads import STANDARD_LEADS, canonical_lead
from .record import EcgRecord
from .units import UNITS_TO_MV, mv_factor

_FMT16_INVALID = -32768
# WFDB's invalid-sample value of each format (the most negative value it can store)
_INVALID = {"8": -128, "80": -128, "16": -32768, "61": -32768, "160": -32768, "212": -2048, "310": -512,
            "311": -512, "24": -(1 << 23), "32": -(1 << 31)}
# Formats wfdb can read (https://physionet.org/physiotools/wag/signal-5.htm).
SUPPORTED_FORMATS = {"8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524"}


def _strip_ext(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".hea", ".dat", ".mat") else p


_GAIN = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?(\([+-]?\d+\))?(/\S*)?$")
_RATE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(/[^\s]*)?$")
_FORMAT = re.compile(r"^\d+(x\d+)?(:\d+)?(\+\d+)?$")


def _check_signal_lines(hea: Path, text: str) -> None:
    """The checks wfdb skips: it reads a non-numeric gain as part of the lead name."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise RecordError(str(hea), "header is empty")
    first = lines[0].split()
    n_sig = int(first[1]) if len(first) > 1 and first[1].isdigit() else None
    if n_sig is None:
        raise RecordError(str(hea), f"first line {lines[0][:60]!r} does not give the number of signals")
    for k, line in enumerate(lines[1:1 + n_sig], start=2):
        fields = line.split()
        if len(fields) < 2 or not _FORMAT.match(fields[1]):
            raise RecordError(str(hea), f"signal line {k}: format field {fields[1] if len(fields) > 1 else ''!r} "
                                        "is not a WFDB format code")
        if len(fields) > 2 and not _GAIN.match(fields[2]):
            raise RecordError(str(hea), f"signal line {k}: ADC gain {fields[2]!r} is not a number")
    if len(first) < 3:
        raise RecordError(str(hea), "first line gives no sampling rate (wfdb would assume 250 Hz); add the "
                                    "record's rate after the number of signals")
    rate = _RATE.match(first[2])
    if rate is None or not float(rate.group(1)) > 0:
        raise RecordError(str(hea), f"sampling rate {first[2]!r} on the first line is not a positive number")
    if len(lines) - 1 < n_sig:
        raise RecordError(str(hea), f"header announces {n_sig} signals but describes {len(lines) - 1}")


def read_header(path: str | os.PathLike):
    base = _strip_ext(path)
    hea = base.with_suffix(".hea")
    if not hea.exists():
        raise RecordError(str(hea), "header file is missing")
    if not hea.is_file():
        raise RecordError(str(hea), "is not a regular file (a pipe, device or folder); lamae reads only files")
    try:
        text = hea.read_text(errors="replace")
    except OSError as exc:
        raise RecordError(str(hea), f"header cannot be read ({exc})") from None
    _check_signal_lines(hea, text)
    try:
        return wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on bad headers
        raise RecordError(str(hea), f"header cannot be parsed ({exc})") from None


def read_wfdb(
    path: str | os.PathLike,
    *,
    record_id: str | None = None,
    extra_leads: str = "error",
    patient_id: str | None = None,
) -> EcgRecord:
    """Read a WFDB record into an :class:`EcgRecord` (canonical leads, mV, true rate).

    ``extra_leads="drop"`` keeps only the 12 standard leads (for example PTB's Frank leads);
    the default raises on any lead name that is not a standard lead.
    """
    base = _strip_ext(path)
    rid = record_id or str(base)
    hdr = read_header(base)
    if not hdr.sig_name or hdr.n_sig == 0:
        raise RecordError(rid, "header lists no signals")
    if not hdr.sig_len:
        raise RecordError(rid, "header says the record has zero samples")
    if not hdr.fs or hdr.fs <= 0:
        raise RecordError(rid, f"header gives no valid sampling rate ({hdr.fs})")

    keep, names = [], []
    for i, name in enumerate(hdr.sig_name):
        try:
            names.append(canonical_lead(name, source=rid))
            keep.append(i)
        except LeadNameError:
            if extra_leads != "drop":
                raise
    if not keep:
        raise RecordError(rid, f"none of the leads {hdr.sig_name} is a standard lead")

    gains = np.asarray([g if g else 200.0 for g in hdr.adc_gain], dtype=np.float64)
    if np.any(~np.isfinite(gains)) or np.any(gains == 0):
        raise RecordError(rid, f"invalid ADC gain in header: {hdr.adc_gain}")
    baselines = np.asarray([b or 0 for b in hdr.baseline], dtype=np.float64)
    scale = [mv_factor(u, default="mV") for u in hdr.units]  # WFDB's default unit is the millivolt
    wrong = [f"{hdr.sig_name[i]} in {hdr.units[i]!r}" for i in keep if scale[i] is None]
    if wrong:
        raise RecordError(rid, f"signals not in a voltage unit: {', '.join(wrong)} (lamae reads "
                               f"{', '.join(sorted(UNITS_TO_MV))})")
    scale = np.asarray([1.0 if f is None else f for f in scale])

    files = set(hdr.file_name)
    offsets = {o or 0 for o in hdr.byte_offset}
    fmts = {str(f).split("x")[0].split("+")[0] for f in hdr.fmt}
    unsupported = fmts - SUPPORTED_FORMATS
    if unsupported:
        raise RecordError(rid, f"WFDB signal format {', '.join(sorted(unsupported))} is not supported "
                               f"(readable: {', '.join(sorted(SUPPORTED_FORMATS, key=int))})")
    for name in files:
        if (base.parent / name).exists() and not (base.parent / name).is_file():
            raise RecordError(rid, f"data file {name} is not a regular file (a pipe, device or folder)")
    if len(files) == 1 and fmts == {"16"} and len(offsets) == 1:
        digital = _read_fmt16(base.parent / hdr.file_name[0], hdr.n_sig, hdr.sig_len, offsets.pop(), rid)
    else:
        digital = _read_with_wfdb(base, rid)
    digital = digital[:, keep]
    sig = (digital.astype(np.float64) - baselines[keep]) / gains[keep] * scale[keep]
    # each format marks a missing sample by its own most negative value
    invalid = np.asarray([_INVALID.get(str(f).split("x")[0].split("+")[0], _FMT16_INVALID) for f in hdr.fmt])[keep]
    sig[digital == invalid] = np.nan
    return EcgRecord(
        record_id=rid,
        signal=sig.T.astype(np.float32),
        leads=tuple(names),
        fs=float(hdr.fs),
        patient_id=patient_id,
        meta={"comments": list(hdr.comments or [])},
    )


def _read_fmt16(dat: Path, n_sig: int, sig_len: int, offset: int, rid: str) -> np.ndarray:
    if not dat.exists():
        raise RecordError(rid, f"data file {dat.name} is missing")
    expected = offset + 2 * n_sig * sig_len
    actual = dat.stat().st_size
    if actual < expected:
        raise RecordError(
            rid, f"data file {dat.name} is truncated: {actual} bytes, header implies {expected}"
        )
    if actual > expected and dat.suffix != ".mat":
        raise RecordError(
            rid, f"header disagrees with data: {dat.name} has {actual} bytes, header implies {expected}"
        )
    data = np.fromfile(dat, dtype="<i2", count=n_sig * sig_len, offset=offset)
    return data.reshape(sig_len, n_sig)


def _read_with_wfdb(base: Path, rid: str) -> np.ndarray:
    try:
        # 32-bit integers hold every format's samples (24- and 32-bit ones included)
        rec = wfdb.rdrecord(str(base), physical=False, return_res=32)
    except FileNotFoundError as exc:
        raise RecordError(rid, f"data file is missing ({exc.filename})") from None
    except Exception as exc:
        raise RecordError(rid, f"data cannot be read ({exc})") from None
    return np.asarray(rec.d_signal)


def write_wfdb(
    record_name: str,
    write_dir: str | os.PathLike,
    signal_mv: np.ndarray,
    leads: tuple[str, ...] | list[str],
    fs: float,
    *,
    gain: float = 200.0,
    comments: list[str] | None = None,
    base_time=None,
    base_date=None,
) -> None:
    """Write a format-16 WFDB record; ``signal_mv`` is (n_leads, n_samples), NaN allowed.

    NaN becomes the format's invalid value (-32768); values beyond the format's range are
    clipped (saturated), as a real recorder would. Written directly (header text plus
    little-endian int16) because ``wfdb.wrsamp`` is the bottleneck when making thousands.
    """
    sig = np.asarray(signal_mv, dtype=np.float64)
    n_sig, n = sig.shape
    if n_sig != len(leads):
        raise ValueError(f"{record_name}: {n_sig} signal rows but {len(leads)} lead names")
    digital = np.round(np.clip(sig * gain, -32767, 32767))
    digital = np.where(np.isnan(sig), _FMT16_INVALID, digital).astype("<i2")
    write_dir = Path(write_dir)
    dat_name = f"{record_name}.dat"
    first = f"{record_name} {n_sig} {fs:g} {n}"
    if base_time is not None:
        first += f" {base_time.strftime('%H:%M:%S')}"
        if base_date is not None:
            first += f" {base_date.strftime('%d/%m/%Y')}"
    checksums = (digital.astype(np.int64).sum(axis=1) + 32768) % 65536 - 32768
    lines = [first] + [
        f"{dat_name} 16 {gain:g}(0)/mV 16 0 {int(digital[i, 0])} {int(checksums[i])} 0 {leads[i]}"
        for i in range(n_sig)
    ] + [f"# {c}" for c in (comments or [])]
    digital.T.tofile(write_dir / dat_name)
    (write_dir / f"{record_name}.hea").write_text("\n".join(lines) + "\n")


__all__ = ["read_wfdb", "read_header", "write_wfdb", "STANDARD_LEADS"]
