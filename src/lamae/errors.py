"""Errors raised for bad input. Each names the file or record and what is wrong with it."""


class LamaeError(Exception):
    """Base class for every error lamae raises on purpose."""


class RecordError(LamaeError):
    """A record cannot be read or used. ``record`` names it, ``problem`` says why."""

    def __init__(self, record: str, problem: str):
        self.record = str(record)
        self.problem = problem
        super().__init__(f"{self.record}: {problem}")


class LeadNameError(LamaeError, ValueError):
    """A lead name that is not one of the 12 standard leads (or a known alias)."""


class LabelError(LamaeError, ValueError):
    """A label file or label value that cannot be parsed."""


class ShapeError(LamaeError, ValueError):
    """An array passed to the Python API has the wrong shape."""
