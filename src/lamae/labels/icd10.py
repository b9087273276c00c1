"""ICD-10-CM labels: literal parsing of MIMIC-IV-ECG-Ext-ICD lists and hierarchy targets.

Nodes are named the way the paper's table names them: chapter ``IX``, block ``I05-I09``,
category ``I07``, subcategory ``I071`` (dot-less). A positive code makes every ancestor
positive. The hierarchy itself comes from the ``simple_icd_10_cm`` package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import simple_icd_10_cm as cm

from ..errors import LabelError

LEVELS = ("chapter", "block", "category", "subcategory")
_ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
          "XIV", "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI", "XXII"]


def parse_code_list(text, *, source: str = "labels") -> list[str]:
    """Parse ``"['I2510', 'E785']"`` literally (never eval). Empty cells give ``[]``."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    if isinstance(text, (list, tuple)):
        value = list(text)
    else:
        s = str(text).strip()
        if not s:
            return []
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            raise LabelError(f"{source}: cannot parse code list {s[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise LabelError(f"{source}: expected a list of code strings, got {str(text)[:80]!r}")
    return [normalize_code(c) for c in value if c.strip()]


# A label cell longer than this is refused unread (one row lost, not the run): the longest list
# of ICD-10 codes an ECG plausibly carries is a few hundred characters.
MAX_CELL_CHARS = 10_000


def parse_cells(cells, parse, *, path, column: str, first_line: int = 2) -> tuple[list, list[dict]]:
    """``parse`` applied to each cell of a CSV column; a cell it cannot read becomes None and is
    listed as ``{"row": CSV line, "column", "cell", "problem"}``, so one bad cell of a large
    file costs one record's labels, not the run."""
    values, bad = [], []
    for i, cell in enumerate(cells):
        row = i + first_line
        source = f"{path} row {row} column {column}"
        try:
            if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
                raise LabelError(f"{source}: cell is {len(cell):,} characters long; a label cell is read up "
                                 f"to {MAX_CELL_CHARS:,}")
            try:
                values.append(parse(cell, source=source))
            except (MemoryError, RecursionError):  # deeply nested brackets: Python's parser gives up
                raise LabelError(f"{source}: cell is nested too deeply to read") from None
        except LabelError as exc:
            values.append(None)
            text = str(exc)
            bad.append({"row": row, "column": column, "cell": str(cell)[:80],
                        "problem": text[len(source) + 2:] if text.startswith(source + ": ") else text})
    return values, bad


def normalize_code(code: str) -> str:
    return code.strip().replace(".", "").upper()


def _node_name(item: str) -> str:
    if cm.is_chapter(item):
        return _ROMAN[int(item)] if item.isdigit() and int(item) < len(_ROMAN) else item
    return item.replace(".", "")


def _level(item: str) -> str:
    if cm.is_chapter(item):
        return "chapter"
    if cm.is_block(item):
        return "block"
    if cm.is_category(item):
        return "category"
    return "subcategory"


@lru_cache(maxsize=None)
def ancestors(code: str) -> tuple[tuple[str, str], ...]:
    """``(level, node)`` for the code and every ancestor; empty if the code is not in ICD-10-CM.

    >>> [n for _, n in ancestors("I071")]
    ['I071', 'I07', 'I05-I09', 'IX']
    """
    code = normalize_code(code)
    if not cm.is_valid_item(code):
        return ()
    items = [code] + list(cm.get_ancestors(code))
    return tuple((_level(i), _node_name(i)) for i in items)


@lru_cache(maxsize=None)
def describe(node: str) -> str:
    if node in _ROMAN[1:]:
        return cm.get_description(str(_ROMAN.index(node)))
    try:
        return cm.get_description(node)
    except ValueError:
        return ""


@dataclass
class HierarchyTargets:
    """Multi-hot targets over the kept nodes. ``y`` is (n_records, n_nodes) uint8."""

    y: np.ndarray
    nodes: list[str]
    levels: list[str]
    unknown_codes: dict[str, int]

    def level_columns(self, level: str) -> list[int]:
        return [i for i, lv in enumerate(self.levels) if lv == level]


def _multi_hot(label_lists, columns) -> np.ndarray:
    """(n_records, n_columns) uint8: 1 where a record's labels include the column's label."""
    col = {c: i for i, c in enumerate(columns)}
    y = np.zeros((len(label_lists), len(columns)), np.uint8)
    for r, labels in enumerate(label_lists):
        y[r, [col[c] for c in labels if c in col]] = 1
    return y


def build_targets(
    code_lists,
    train_mask=None,
    *,
    min_prevalence: float = 0.01,
    min_count: int = 5,
    levels=LEVELS,
) -> HierarchyTargets:
    """Multi-hot targets at every hierarchy level, thresholded on the training records.

    A node is kept when its prevalence among training records is at least
    ``min_prevalence`` and it has at least ``min_count`` training positives. Codes not in
    ICD-10-CM are counted in ``unknown_codes`` and otherwise ignored.
    """
    n = len(code_lists)
    train = np.ones(n, bool) if train_mask is None else np.asarray(train_mask, bool)
    expanded, unknown = [], {}
    for codes in code_lists:
        nodes = {}
        for c in codes:
            anc = ancestors(normalize_code(c))
            if not anc:
                unknown[c] = unknown.get(c, 0) + 1
            nodes.update({node: level for level, node in anc})
        expanded.append(nodes)
    counts: dict[str, int] = {}
    level_of: dict[str, str] = {}
    for nodes, is_train in zip(expanded, train):
        for node, level in nodes.items():
            level_of[node] = level
            if is_train:
                counts[node] = counts.get(node, 0) + 1
    n_train = max(int(train.sum()), 1)
    kept = [
        node for node, c in counts.items()
        if level_of[node] in levels and c >= min_count and c / n_train >= min_prevalence
    ]
    order = {lv: i for i, lv in enumerate(LEVELS)}
    kept.sort(key=lambda nd: (order[level_of[nd]], nd))
    y = _multi_hot(expanded, kept)
    return HierarchyTargets(y=y, nodes=kept, levels=[level_of[nd] for nd in kept], unknown_codes=unknown)


def build_flat_targets(code_lists, train_mask=None, *, min_prevalence: float = 0.01,
                       min_count: int = 5, level: str = "label") -> HierarchyTargets:
    """Multi-hot targets for a flat label set (PTB-XL statements, SNOMED codes, ...)."""
    n = len(code_lists)
    train = np.ones(n, bool) if train_mask is None else np.asarray(train_mask, bool)
    counts: dict[str, int] = {}
    for codes, is_train in zip(code_lists, train):
        if is_train:
            for c in set(codes):
                counts[c] = counts.get(c, 0) + 1
    n_train = max(int(train.sum()), 1)
    kept = sorted(c for c, k in counts.items() if k >= min_count and k / n_train >= min_prevalence)
    return HierarchyTargets(y=_multi_hot(code_lists, kept), nodes=kept, levels=[level] * len(kept),
                            unknown_codes={})


def build_label_targets(kind: str, code_lists, train_mask=None, **kwargs) -> HierarchyTargets:
    """ICD-10 hierarchy targets for ``kind="icd10"``, flat targets otherwise."""
    if kind == "icd10":
        return build_targets(code_lists, train_mask, **kwargs)
    return build_flat_targets(code_lists, train_mask, **kwargs)


def target_levels(targets: HierarchyTargets) -> list[str]:
    """The levels present, in hierarchy order (or "label" for flat sets)."""
    order = {lv: i for i, lv in enumerate(LEVELS)}
    return sorted(set(targets.levels), key=lambda lv: order.get(lv, len(order)))
