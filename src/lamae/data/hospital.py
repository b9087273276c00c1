"""Readers for what hospitals export: EDF/EDF+ and DICOM 12-lead ECG waveforms.

Each is a folder reader like ``WfdbFolderReader`` (``items()`` lists files, ``read(item)`` gives
an :class:`EcgRecord` in canonical leads, millivolts and the file's rate), and each lets the
domain library do the parsing: pyedflib for EDF (the maintained EDFlib binding, which reads
EDF, EDF+ and BDF) and pydicom for DICOM (its ``waveform_array`` applies each channel's
sensitivity, correction factor and baseline). ``pip install -e ".[formats]"`` installs both.

Lead names are matched by code where the format has one (DICOM's SCPECG / MDC channel codes),
otherwise by label, after removing the prefixes devices put in front (``ECG I``, ``EKG V1``,
``Lead II``); channels that are not ECG leads (respiration, annotations, Frank leads) are left
out and named in the record's ``meta["dropped_channels"]``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import RecordError
from ..leads import lead_from_label
from ..optional import require
from .record import EcgRecord, FileFolderReader, repeated_lead
from .units import UNITS_TO_MV, mv_factor

# DICOM channel source codes of the 12 standard leads: SCPECG (5.6.3-9-N) and MDC (2:N)
DICOM_LEAD_CODES = {
    "5.6.3-9-1": "I", "5.6.3-9-2": "II", "5.6.3-9-61": "III", "5.6.3-9-62": "aVR", "5.6.3-9-63": "aVL",
    "5.6.3-9-64": "aVF", "5.6.3-9-3": "V1", "5.6.3-9-4": "V2", "5.6.3-9-5": "V3", "5.6.3-9-6": "V4",
    "5.6.3-9-7": "V5", "5.6.3-9-8": "V6",
    "2:1": "I", "2:2": "II", "2:61": "III", "2:62": "aVR", "2:63": "aVL", "2:64": "aVF",
    "2:3": "V1", "2:4": "V2", "2:5": "V3", "2:6": "V4", "2:7": "V5", "2:8": "V6",
}

def _mv_factor(unit: str, record_id: str, channel: str) -> float:
    factor = mv_factor(unit)
    if factor is None:
        raise RecordError(record_id, f"channel {channel!r} is in {unit!r}, not a voltage unit lamae knows "
                                     f"({', '.join(sorted(UNITS_TO_MV))})")
    return factor


class EdfReader(FileFolderReader):
    """A folder of EDF / EDF+ / BDF files (pyedflib). Channels labelled as ECG leads are read in
    their physical units and converted to millivolts; the leads must share one sampling rate
    (channels at another rate are left out, like non-ECG channels)."""

    name = "edf"
    suffixes = (".edf", ".bdf", ".rec")

    def _check_library(self) -> None:
        require("pyedflib", "formats", "reading EDF")

    def _read(self, path: Path, item) -> EcgRecord:
        from pyedflib import highlevel

        signals, headers, header = highlevel.read_edf(str(path))
        picked, dropped, labels = [], [], {}
        for sig, h in zip(signals, headers):
            lead = lead_from_label(h["label"])
            if lead is None:
                dropped.append(h["label"])
                continue
            if lead in labels:
                raise RecordError(item.record_id, repeated_lead(f"{path.name}: ", lead, labels[lead], h["label"]))
            labels[lead] = h["label"]
            picked.append((lead, np.asarray(sig, np.float64) * _mv_factor(h["dimension"], item.record_id, h["label"]),
                           float(h.get("sample_frequency") or h.get("sample_rate"))))
        if not picked:
            raise RecordError(item.record_id, f"{path.name}: no channel is an ECG lead "
                                              f"(labels: {', '.join(h['label'] for h in headers) or 'none'})")
        fs = Counter(p[2] for p in picked).most_common(1)[0][0]
        dropped += [p[0] for p in picked if p[2] != fs]
        picked = [p for p in picked if p[2] == fs]
        n = min(len(p[1]) for p in picked)
        return EcgRecord(item.record_id, np.stack([p[1][:n] for p in picked]), tuple(p[0] for p in picked), fs,
                         patient_id=item.patient_id,
                         meta={"format": "edf", "dropped_channels": dropped,
                               "start": str(header.get("startdate", ""))})


class DicomEcgReader(FileFolderReader):
    """A folder of DICOM ECG waveform files (12-lead, general, ambulatory; pydicom). The rhythm
    strip is read: groups labelled as a median or representative beat are never taken, a group
    labelled RHYTHM comes first, then the longest group with ECG leads; each
    channel's sensitivity, correction and baseline are applied by pydicom, units converted to
    millivolts. The patient is the file's PatientID where it has one."""

    name = "dicom"
    suffixes = (".dcm", ".dicom")

    def _check_library(self) -> None:
        require("pydicom", "formats", "reading DICOM ECGs")

    def _read(self, path: Path, item) -> EcgRecord:
        import pydicom

        ds = pydicom.dcmread(str(path))
        if "WaveformSequence" not in ds:
            raise RecordError(item.record_id, f"{path.name}: a DICOM file without waveforms "
                                              f"(modality {getattr(ds, 'Modality', '?')})")
        for index, group in sorted(enumerate(ds.WaveformSequence), key=lambda g: _group_rank(*g)):
            if _is_beat(group):
                continue
            leads, units, keep, labels = [], [], [], {}
            for c, channel in enumerate(group.ChannelDefinitionSequence):
                source = channel.ChannelSourceSequence[0]
                lead = DICOM_LEAD_CODES.get(str(source.CodeValue)) or lead_from_label(source.CodeMeaning)
                if lead is None:
                    continue
                if lead in labels:
                    raise RecordError(item.record_id, repeated_lead(f"{path.name}: ", lead, labels[lead],
                                                                    f"{source.CodeValue} {source.CodeMeaning}"))
                labels[lead] = f"{source.CodeValue} {source.CodeMeaning}"
                unit = (channel.ChannelSensitivityUnitsSequence[0].CodeValue
                        if "ChannelSensitivityUnitsSequence" in channel else "uV")
                leads.append(lead)
                units.append(_mv_factor(unit, item.record_id, str(source.CodeMeaning)))
                keep.append(c)
            if not leads:
                continue
            values = ds.waveform_array(index)[:, keep].T * np.asarray(units)[:, None]
            patient = str(getattr(ds, "PatientID", "") or item.patient_id)
            return EcgRecord(item.record_id, values, tuple(leads), float(group.SamplingFrequency),
                             patient_id=patient,
                             meta={"format": "dicom", "group": str(getattr(group, "MultiplexGroupLabel", index))})
        beats = [str(getattr(g, "MultiplexGroupLabel", i)) for i, g in enumerate(ds.WaveformSequence) if _is_beat(g)]
        raise RecordError(item.record_id, f"{path.name}: no waveform group holds an ECG rhythm strip"
                                          + (f" (only a median or representative beat: {', '.join(beats)})" if beats else ""))


_BEAT_WORDS = ("median", "representative", "average", "template", "beat")


def _is_beat(group) -> bool:
    """A waveform group labelled as a median / representative beat (not a rhythm strip); an
    unlabelled beat loses to the rhythm strip by length (``_group_rank``)."""
    label = str(getattr(group, "MultiplexGroupLabel", "") or "").lower()
    return any(w in label for w in _BEAT_WORDS)


def _group_rank(index: int, group) -> tuple:
    """Order in which waveform groups are tried: labelled rhythm strips first, then the longest."""
    label = str(getattr(group, "MultiplexGroupLabel", "") or "").lower()
    try:
        seconds = float(group.NumberOfWaveformSamples) / float(group.SamplingFrequency)
    except (AttributeError, TypeError, ValueError, ZeroDivisionError):
        seconds = 0.0
    return ("rhythm" not in label, -seconds, index)
