"""Canonical lead names. Every reader maps its dataset's names onto these.

The model looks lead-identity embeddings up by canonical *index*, so any subset of leads in
any order is valid input and the same lead always gets the same embedding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .errors import LeadNameError

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)
LEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(STANDARD_LEADS)}
LIMB_LEADS = STANDARD_LEADS[:6]

# Case-insensitive spellings seen in public datasets (PTB-XL "AVR", PTB "avr", "MLII", ...).
_ALIASES: dict[str, str] = {name.lower(): name for name in STANDARD_LEADS}
_ALIASES.update({"mli": "I", "mlii": "II", "mliii": "III", "lead i": "I", "lead ii": "II",
                 "lead iii": "III", "avr ": "aVR"})

# Reduced lead sets used in evaluation (1, 2, 3, 6, 8, 12 leads).
LEAD_SETS: dict[str, tuple[str, ...]] = {
    "1": ("I",),
    "2": ("I", "II"),
    "3": ("I", "II", "V2"),
    "6": LIMB_LEADS,
    "8": ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
    "12": STANDARD_LEADS,
}


def canonical_lead(name: str, *, source: str = "input") -> str:
    """Return the canonical spelling of a lead name, or raise naming the source."""
    key = str(name).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise LeadNameError(
        f"{source}: unknown lead name {name!r}; expected one of {', '.join(STANDARD_LEADS)}"
    )


def canonical_leads(names: Iterable[str], *, source: str = "input") -> tuple[str, ...]:
    """Canonicalise a list of lead names; duplicates are an error."""
    out = tuple(canonical_lead(n, source=source) for n in names)
    seen = set()
    for n in out:
        if n in seen:
            raise LeadNameError(f"{source}: lead {n!r} appears more than once")
        seen.add(n)
    return out


def lead_indices(names: Sequence[str], *, source: str = "input") -> list[int]:
    return [LEAD_INDEX[n] for n in canonical_leads(names, source=source)]


_PREFIX = re.compile(r"^(ecg|ekg|lead)[\s_\-:]*", re.IGNORECASE)
_SUFFIX = re.compile(r"\s*\(.*\)\s*$")


def lead_from_label(label: str) -> str | None:
    """'ECG I', 'EKG V1', 'Lead I (Einthoven)', 'avr' -> the canonical name; None if not a lead."""
    text = _SUFFIX.sub("", _PREFIX.sub("", str(label).strip()))
    for candidate in (text, text.replace(" ", ""), text.replace("-", "")):
        try:
            return canonical_lead(candidate)
        except LeadNameError:
            continue
    return None
