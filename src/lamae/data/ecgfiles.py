"""ECG files as hospitals export them (GE MUSE, Philips, HL7 aECG, SCP-ECG, ...), read through
ecgdatakit. ``readers.py`` picks this reader (or WFDB's, EDF's, DICOM's) for each file by its
content (``--format auto``).

ecgdatakit (Apache-2.0, a dependency of lamae) parses 13 formats into one record
model, detects a file's format from its bytes and parses XML through defusedxml, so an XML
bomb or an external entity is refused rather than expanded. lamae keeps its own readers where a
dedicated library reads more: WFDB (wfdb, and a checked fast path for format 16), EDF/EDF+/BDF
(pyedflib; ecgdatakit reads EDF only) and DICOM (pydicom). On the same files the two agree to
float32 rounding (``tests/data/test_ecgfiles.py`` compares them), so the choice is about reach,
not values.

Each file gives an :class:`EcgRecord` in canonical leads and millivolts at the file's own rate:
the rhythm strip, never the median or representative beat (ecgdatakit keeps those apart), and
in ``meta`` what the file says of the ECG: age, sex, acquisition time, device and the machine's
diagnosis statements. Exports that store 8 leads (MUSE: I, II, V1-V6) keep their 8; with
``derive_limb_leads`` the other four limb leads are computed by Einthoven's and Goldberger's
relations and ``meta["derived_leads"]`` names them.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import LamaeError, RecordError
from ..leads import lead_from_label
from ..optional import require
from .record import EcgRecord, repeated_lead, sex_code
from .units import mv_factor

# lamae's --format names for the formats read through ecgdatakit -> ecgdatakit's FORMAT_NAME
ECGDATAKIT_FORMATS = {
    "muse": "GE MUSE XML",
    "philips": "Philips Sierra XML",
    "aecg": "HL7 aECG",
    "scp": "SCP-ECG",
    "ishne": "ISHNE Holter",
    "mfer": "MFER",
    "mortara": "Mortara ELI (EL250/ELI280)",
}
def ecgdatakit_library():
    """The ecgdatakit module (a dependency of lamae), or a LamaeError saying how to install it."""
    # a dependency of lamae; named here for an install made without its dependencies
    require("ecgdatakit", None, "reading hospital ECG exports (MUSE, Philips, HL7 aECG, SCP-ECG, ...)")
    import ecgdatakit

    return ecgdatakit


def record_from_ecgdatakit(rec, record_id: str, patient_id: str | None, *, source: str = "") -> EcgRecord:
    """An ecgdatakit ``ECGRecord`` (parsed with ``units="mV"``) as lamae's :class:`EcgRecord`."""
    picked, dropped, labels = [], [], {}
    for lead in rec.leads:
        name = lead_from_label(lead.label)
        again = re.fullmatch(r"(.+)_\d+", str(lead.label))
        if name is None and again and lead_from_label(again.group(1)) in labels:
            name = lead_from_label(again.group(1))  # ecgdatakit renames a repeated lead 'I' to 'I_2'
        if name is None:
            dropped.append(lead.label)
            continue
        if name in labels:  # as WFDB: a file naming one lead twice cannot say which channel it is
            raise RecordError(record_id, repeated_lead(source, name, labels[name], lead.label))
        labels[name] = lead.label
        given = str(getattr(lead, "adc_resolution_unit", "") or "").strip()
        if lead.is_raw and given and mv_factor(given) is None:  # ecgdatakit leaves a pressure unit unscaled
            raise RecordError(record_id, f"{source}lead {lead.label} is in {given!r}, not a voltage unit")
        _check_scale(lead, record_id, source)
        if lead.is_raw:
            raise RecordError(record_id, f"{source}lead {lead.label}: the file gives no scale for its samples "
                                         "(raw ADC counts), so they cannot be read as millivolts")
        factor = mv_factor(lead.units)
        if factor is None:
            raise RecordError(record_id, f"{source}lead {lead.label} is in {lead.units!r}, not a voltage unit")
        picked.append((name, np.asarray(lead.samples, np.float64) * factor, float(lead.sampling_rate)))
    if not picked:
        beats = f" (it holds {len(rec.median_beats)} median-beat leads, which lamae does not read)" if rec.median_beats else ""
        raise RecordError(record_id, f"{source}no rhythm-strip ECG lead in the file{beats}; labels: "
                                     f"{', '.join(lead.label for lead in rec.leads) or 'none'}")
    fs = Counter(p[2] for p in picked).most_common(1)[0][0]
    if not fs > 0:
        raise RecordError(record_id, f"{source}sampling rate {fs} is not positive")
    _check_not_swapped(rec, picked, fs, record_id, source)
    dropped += [p[0] for p in picked if p[2] != fs]
    picked = [p for p in picked if p[2] == fs]
    lengths = {p[0]: len(p[1]) for p in picked}
    if len(set(lengths.values())) > 1:
        raise RecordError(record_id, f"{source}leads disagree on their number of samples: "
                                     + ", ".join(f"{k} {v}" for k, v in lengths.items()))
    meta = {"format": rec.source_format or source.strip(": "), "dropped_channels": dropped, **record_metadata(rec)}
    return EcgRecord(record_id, np.stack([p[1] for p in picked]), tuple(p[0] for p in picked), fs,
                     patient_id=rec.patient.patient_id or patient_id, meta=meta)


def _check_scale(lead, record_id: str, source: str) -> None:
    """A lead's scale (amplitude per stored step) must be a positive number an electrocardiograph
    could use; NaN, 0 or 1e308 is named as the file's scale, not reported later as NaN samples."""
    res = getattr(lead, "resolution", None)
    if res is None or lead.is_raw:
        return
    try:
        res = float(res)
    except (TypeError, ValueError):
        raise RecordError(record_id, f"{source}lead {lead.label}: the file's scale {res!r} is not a number") from None
    unit = str(getattr(lead, "resolution_unit", "") or "uV")
    if not (math.isfinite(res) and res > 0):
        raise RecordError(record_id, f"{source}lead {lead.label}: the file's scale is {res!r} {unit} per step, not a "
                                     "positive number, so its samples cannot be read as millivolts")
    per_step_mv = res * (mv_factor(unit) or 1e-3)
    if per_step_mv > 100:  # real ECGs store 0.5-10 uV per step; 100 mV is more than any ECG's whole range
        raise RecordError(record_id, f"{source}lead {lead.label}: the file's scale of {res:g} {unit} per step is "
                                     "not one an electrocardiograph uses (more than 100 mV a step)")


def _check_not_swapped(rec, picked, fs: float, record_id: str, source: str) -> None:
    """The rhythm strip is the long recording and the median beat about a second: an export
    whose beat is longer than its rhythm strip has the two swapped, which is named rather than
    read as a one-beat ECG."""
    beats = [len(b.samples) / float(b.sampling_rate) for b in (getattr(rec, "median_beats", None) or [])
             if getattr(b, "sampling_rate", 0) and float(b.sampling_rate) > 0]
    rhythm = len(picked[0][1]) / fs
    if beats and max(beats) > rhythm:
        raise RecordError(record_id, f"{source}the waveform given as the rhythm strip holds {rhythm:.2f} s per lead and "
                                     f"the one given as the median beat {max(beats):.2f} s: the two look swapped in "
                                     "the export, so lamae does not guess which is the ECG")


def record_metadata(rec) -> dict:
    """What the file says of the ECG, for the store's index and the embed table: age, sex,
    acquisition time, device and the machine's diagnosis statements."""
    device = rec.recording.device
    statements = [" ".join(str(part) for part in s if part).strip() if isinstance(s, (tuple, list)) else str(s)
                  for s in (rec.interpretation.statements or [])]
    return {
        "age": float(rec.patient.age) if isinstance(rec.patient.age, (int, float)) else None,
        "sex": sex_code(rec.patient.sex) or None,
        "acquired": rec.recording.date.isoformat() if rec.recording.date else None,
        "device": " ".join(v for v in (device.manufacturer, device.model) if v).strip() or None,
        "statements": [s for s in statements if s],
    }


def read_ecgdatakit_file(path: Path, item, kind: str) -> EcgRecord:
    """One file of a format ecgdatakit parses (``kind``: one of ``ECGDATAKIT_FORMATS`` or another
    name its detection gives) as an :class:`EcgRecord`, or a RecordError naming the file."""
    ekd = ecgdatakit_library()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = ekd.FileParser.parse(path, units="mV")
    except ImportError as exc:
        raise LamaeError(f"{item.path}: reading {kind} needs {exc.name or exc}") from None
    except Exception as exc:  # ecgdatakit's errors and whatever a damaged file raises inside a parser
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RecordError(item.record_id, f"{item.path}: cannot be read as {ECGDATAKIT_FORMATS.get(kind, kind)} "
                                          f"({type(exc).__name__}{': ' + text[:200] if text else ''})") from None
    return record_from_ecgdatakit(parsed, item.record_id, item.patient_id, source=f"{item.path}: ")
