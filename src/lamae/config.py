"""Typed configuration: dataclasses loaded from YAML and overridden on the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, get_type_hints

import yaml


def _coerce(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(d: dict, overrides: list[str] | None) -> dict:
    """``["model.dim=128", "steps=500"]`` -> nested updates of ``d`` (values parsed as YAML)."""
    d = json.loads(json.dumps(d))
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        target = d
        *path, last = key.strip().split(".")
        for k in path:
            target = target.setdefault(k, {})
        target[last] = _coerce(value)
    return d


def from_dict(cls, d: dict):
    """Build dataclass ``cls`` from a dict, refusing unknown keys (typos should fail loudly)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}; known: {sorted(names)}")
    return cls(**d)


def load_yaml(path: str | Path | None) -> dict:
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"{path}: not valid YAML ({getattr(exc, 'problem', None) or 'parse error'}{where})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def build_config(cls, *, yaml_path=None, flags: dict | None = None, overrides: list[str] | None = None):
    """A ``cls`` from, in rising priority: its defaults, a YAML file, command-line flags (those not
    None), and ``--set key=value`` overrides. The one way every command assembles its settings."""
    d = dataclasses.asdict(cls())
    d.update(load_yaml(yaml_path))
    d.update({k: v for k, v in (flags or {}).items() if v is not None})
    return from_dict(cls, apply_overrides(d, overrides))


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


__all__ = ["apply_overrides", "build_config", "from_dict", "load_yaml", "to_dict", "get_type_hints"]
