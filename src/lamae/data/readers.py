"""The one place that picks a reader: for a dataset folder by its ``--format`` (``open_source``),
and for a file by its content (``detect``; ``--format auto`` and :func:`read`).

Below it the format readers sit side by side, none importing another: ``sources.py`` (the
dataset layouts: WFDB folders, MIMIC-IV-ECG, PTB-XL, PhysioNet/CinC, CODE-15%, PTB),
``hospital.py`` (EDF/EDF+/BDF through pyedflib, DICOM through pydicom), ``ecgfiles.py`` (GE
MUSE, Philips, HL7 aECG, SCP-ECG, ISHNE, MFER and Mortara through ecgdatakit) and ``wfdb_io.py``
(one WFDB record); ``record.py`` beneath them all holds what they share (``EcgRecord``,
``SourceItem``, the file-folder base).
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from pathlib import Path

from ..errors import LamaeError, RecordError
from ..files import missing_folder
from .ecgfiles import ECGDATAKIT_FORMATS, ecgdatakit_library, read_ecgdatakit_file
from .hospital import DicomEcgReader, EdfReader  # their parsing libraries are imported when used
from .record import EcgRecord, SourceItem, derive_limb_leads
from .sources import ChallengeReader, Code15Reader, MimicEcgReader, PtbReader, PtbXlReader, WfdbFolderReader

_SUFFIXES = {"muse": (".xml",), "philips": (".xml",), "aecg": (".xml",), "mortara": (".xml",),
             "scp": (".scp", ".bin"), "ishne": (".ecg",), "mfer": (".mwf", ".mfer", ".mfr")}
# Files a dataset folder holds beside its ECGs, which --format auto passes over without a word
_SIDE_SUFFIXES = {".csv", ".tsv", ".md", ".txt", ".json", ".parquet", ".npy", ".npz", ".py", ".yaml", ".yml",
                  ".png", ".pdf", ".html", ".zip", ".gz", ".sha256", ".atr", ".qrs"}
_SIDE_NAMES = {"COPYING", "LICENSE", "LICENCE", "README", "RECORDS", "SHA256SUMS"}


def detect(path: Path) -> str | None:
    """The reader for one file, by its content: ``wfdb`` (a header), ``edf``, ``dicom``, or one of
    :data:`ECGDATAKIT_FORMATS` (or another format ecgdatakit reads, by its name); None if none."""
    if path.suffix.lower() == ".hea":
        return "wfdb"
    with open(path, "rb") as f:
        head = f.read(256)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[:8] == b"0       " or head[:8] == b"\xffBIOSEMI":
        return "edf"
    found = ecgdatakit_library().FileParser.detect_format(path)
    if found is None:
        return None
    name = found["name"]
    return next((k for k, v in ECGDATAKIT_FORMATS.items() if v == name), name)


class EcgFileReader:
    """A folder of ECG files: one format through ecgdatakit (``muse``, ``philips``, ``aecg``,
    ``scp``, ``ishne``, ``mfer``, ``mortara``), or ``auto``: every file, each read by the reader its
    content calls for (WFDB, EDF, DICOM, or ecgdatakit's), so one folder may mix formats.

    A file that is not what its format needs (truncated or garbage XML, an XML bomb, base64 that
    does not decode, an empty waveform) is skipped and named, as for WFDB records."""

    label_kind = "none"

    def __init__(self, root: str | os.PathLike, *, fmt: str = "auto", derive_limb_leads: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(missing_folder(self.root))
        if fmt != "auto" and fmt not in ECGDATAKIT_FORMATS:
            raise LamaeError(f"unknown format {fmt!r}; choose auto or one of {sorted(ECGDATAKIT_FORMATS)}")
        if fmt != "auto":  # auto needs ecgdatakit only for the files that need it
            ecgdatakit_library()
        self.name, self.fmt, self.derive = fmt, fmt, derive_limb_leads
        self._others = {}

    def _candidates(self) -> list[Path]:
        files = sorted(p for p in self.root.rglob("*") if p.is_file() or p.is_fifo())
        if self.fmt != "auto":
            return [p for p in files if p.suffix.lower() in _SUFFIXES[self.fmt]]
        heads = {p.with_suffix("") for p in files if p.suffix.lower() == ".hea"}
        out = []
        for p in files:
            if p.name.startswith(".") or p.suffix.lower() in _SIDE_SUFFIXES or p.stem.upper() in _SIDE_NAMES:
                continue
            if p.suffix.lower() != ".hea" and p.with_suffix("") in heads:
                continue  # a WFDB record's data file: read through its header
            out.append(p)
        return out

    def items(self):
        """The folder's files to read (for ``auto``, all but a dataset's side files)."""
        files = [f.relative_to(self.root) for f in self._candidates()]
        stems = Counter(str(rel.with_suffix("")) for rel in files)
        out = []
        for rel in files:
            # a record is named by its path without the extension, unless two files share it
            # (ecg.xml beside ecg.scp): then each keeps its extension
            rid = str(rel.with_suffix("")) if stems[str(rel.with_suffix(""))] == 1 else str(rel)
            out.append(SourceItem(record_id=rid, patient_id=rid, path=str(rel)))
        return out

    def _reader(self, kind: str):
        """lamae's own folder reader for ``wfdb``, ``edf`` and ``dicom`` (made once)."""
        if kind not in self._others:
            self._others[kind] = {"wfdb": WfdbFolderReader, "edf": EdfReader, "dicom": DicomEcgReader}[kind](self.root)
        return self._others[kind]

    def read(self, item) -> EcgRecord:
        """One file as an :class:`EcgRecord`, or a RecordError naming the file and the problem;
        with ``derive_limb_leads``, completed from I and II whichever reader read it."""
        rec = self._read(item)
        signal, leads, derived = derive_limb_leads(rec.signal, rec.leads) if self.derive else (rec.signal, rec.leads, [])
        return EcgRecord(rec.record_id, signal, leads, rec.fs, rec.patient_id, {**rec.meta, "derived_leads": derived})

    def _read(self, item) -> EcgRecord:
        path = self.root / item.path
        if not path.is_file():
            raise RecordError(item.record_id, f"{item.path}: is not a regular file (a pipe, device or folder)")
        try:
            kind = detect(path)
        except OSError as exc:
            raise RecordError(item.record_id, f"{item.path}: cannot be read ({exc.strerror or exc})") from None
        if kind is None:
            raise RecordError(item.record_id, f"{item.path}: not an ECG format lamae reads (by its content: none "
                                              f"of WFDB, EDF, DICOM, {', '.join(ECGDATAKIT_FORMATS.values())})")
        if self.fmt != "auto" and kind != self.fmt:
            raise RecordError(item.record_id, f"{item.path}: not a {ECGDATAKIT_FORMATS[self.fmt]} file "
                                              f"(by its content: {kind}); --format auto reads each file as it is")
        if kind in ("wfdb", "edf", "dicom"):
            return self._reader(kind).read(item if kind != "wfdb" else type(item)(
                item.record_id, item.patient_id, str(Path(item.path).with_suffix(""))))
        return read_ecgdatakit_file(path, item, kind)


def read(path: str | os.PathLike, *, derive_limb_leads: bool = False) -> EcgRecord:
    """One ECG file of any format lamae reads (WFDB record, EDF, DICOM, MUSE, Philips, HL7 aECG,
    SCP-ECG, ...), detected by content: an :class:`EcgRecord` in canonical leads and millivolts."""
    path = Path(path)
    if path.suffix.lower() in ("", ".dat") and path.with_suffix(".hea").exists():
        path = path.with_suffix(".hea")
    if not path.exists():
        raise LamaeError(f"{path}: no such file")
    if path.is_dir():
        raise LamaeError(f"{path}: is a folder; lamae.read takes one ECG file (lamae prepare reads folders)")
    reader = EcgFileReader(path.parent, fmt="auto", derive_limb_leads=derive_limb_leads)
    rid = path.stem
    return reader.read(SourceItem(record_id=rid, patient_id=rid, path=path.name))


READERS = {"mimic": MimicEcgReader, "wfdb": WfdbFolderReader, "ptbxl": PtbXlReader,
           "challenge": ChallengeReader, "code15": Code15Reader, "ptb": PtbReader,
           "edf": EdfReader, "dicom": DicomEcgReader,
           # every file by its content, and the hospital exports read through ecgdatakit
           **{name: partial(EcgFileReader, fmt=name) for name in ("auto", *ECGDATAKIT_FORMATS)}}
# Formats whose readers take derive_limb_leads (8-lead exports completed from I and II)
FILE_FORMATS = ("auto", *ECGDATAKIT_FORMATS)


def open_source(kind: str, root, *, derive_limb_leads: bool = False, **kwargs):
    """The reader of dataset folder ``root`` in format ``kind``. ``derive_limb_leads`` (file
    formats only) completes 8-lead exports with III, aVR, aVL and aVF."""
    if kind not in READERS:
        raise ValueError(f"unknown dataset format {kind!r}; choose from {sorted(READERS)}")
    if derive_limb_leads:
        if kind not in FILE_FORMATS:
            raise LamaeError(f"--derive-limb-leads applies to --format {', '.join(FILE_FORMATS)}, not {kind!r}")
        kwargs["derive_limb_leads"] = True
    return READERS[kind](root, **kwargs)
