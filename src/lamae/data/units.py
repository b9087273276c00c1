"""Voltage units as ECG files spell them, and the factor that takes each to millivolts.

One table for every reader: a unit that is not a voltage (``mmHg`` from a blood-pressure
channel, ``bpm``) or that lamae does not know is refused by name, never read as millivolts.
"""

from __future__ import annotations

UNITS_TO_MV = {
    "mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
    "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3,
    "v": 1e3, "volt": 1e3, "volts": 1e3,
    "nv": 1e-6, "nanovolt": 1e-6, "nanovolts": 1e-6,
}


def mv_factor(unit: str | None, *, default: str | None = None) -> float | None:
    """Factor taking ``unit`` to millivolts; an empty unit counts as ``default`` (WFDB's is mV),
    and a unit that is not a known voltage gives None."""
    key = "" if unit is None else str(unit).strip().lower()
    if not key and default is not None:
        key = default.lower()
    return UNITS_TO_MV.get(key)
