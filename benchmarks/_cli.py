"""Argument types and the entry point the benchmark scripts share: a bad flag is named in one
line by argparse (exit 2), a bad input by lamae's own error (exit 2), never a raw traceback."""

from __future__ import annotations

import argparse
import sys

SIZES = ["tiny", "small", "base"]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number, got {text}")
    return value


def lead_count(text: str) -> int:
    value = positive_int(text)
    if value > 12:
        raise argparse.ArgumentTypeError(f"an ECG has 1 to 12 leads, got {value}")
    return value


def lead_name(text: str) -> str:
    from lamae.errors import LeadNameError
    from lamae.leads import canonical_lead

    try:
        return canonical_lead(text, source="--hide")
    except LeadNameError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(main) -> None:
    """Run a script's ``main``; lamae's named errors end in one line and exit 2."""
    from lamae.errors import LamaeError

    prog = sys.argv[0].rsplit("/", 1)[-1]
    try:
        main()
    except (LamaeError, FileNotFoundError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(2)
