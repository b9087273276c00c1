"""Typed configuration: dataclasses loaded from YAML and overridden on the command line."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, get_type_hints

import yaml


# A settings file is small: YAML that expands past this many values (aliases of aliases, the
# "billion laughs" bomb: 519 bytes that become 2.3 GB) is refused before anything copies it.
MAX_YAML_NODES = 100_000


def first_difference(a: dict, b: dict, prefix: str = "") -> str:
    """The first setting (in key order, nested keys dotted) where two settings dicts differ,
    as "key was A, now B"; read ``a`` as the stored settings and ``b`` as today's."""
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            if x != y:
                return first_difference(x, y, f"{prefix}{key}.")
        elif x != y:
            return f"{prefix}{key} was {x!r}, now {y!r}"
    return "no difference"


def _count_nodes(value, budget: int) -> int:
    """Values in ``value`` with aliases expanded, counted up to ``budget`` (then it stops)."""
    stack, n = [value], 0
    while stack:
        v = stack.pop()
        n += 1
        if n > budget:
            return n
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return n


def safe_yaml(text: str, where: str):
    """``yaml.safe_load`` that refuses a document expanding past ``MAX_YAML_NODES`` values."""
    data = yaml.safe_load(text)
    if _count_nodes(data, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ValueError(f"{where}: expands to more than {MAX_YAML_NODES:,} values (YAML aliases nested in "
                         "aliases?); refused")
    return data


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(text: str) -> Any:
    try:
        value = safe_yaml(text, f"value {text[:40]!r}")
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):  # YAML 1.1 reads 1e3 and 1e-9 (no dot) as text
        number = float(value)
        return int(number) if number.is_integer() and "e-" not in value.lower() else number
    return value


def apply_overrides(d: dict, overrides: list[str] | None) -> dict:
    """``["model.dim=128", "steps=500"]`` -> nested updates of ``d`` (values parsed as YAML)."""
    d = json.loads(json.dumps(d))
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        target = d
        *path, last = key.strip().split(".")
        for i, k in enumerate(path):
            target = target.setdefault(k, {})
            if not isinstance(target, dict):
                where = ".".join(path[:i + 1])
                raise ValueError(f"override {item!r}: {where} is {target!r}, not a group of settings, so it "
                                 f"has no {'.'.join(path[i + 1:] + [last])!r}")
        target[last] = _coerce(value)
    return d


def from_dict(cls, d: dict):
    """Build dataclass ``cls`` from a dict, refusing unknown keys (typos should fail loudly)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}; known: {sorted(names)}")
    hints = get_type_hints(cls)
    for key, value in d.items():
        check_type(key, value, hints.get(key))
    return cls(**d)


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "text", list: "a list",
          dict: "a mapping of settings"}


def check_type(name: str, value, hint) -> None:
    """``value`` must be of the setting's declared type (``str | None``, ``float``, ...): YAML reads
    ``compile: maybe`` as text and ``out: [1, 2]`` as a list, and either would otherwise be used
    as whatever Python makes of it (a non-empty string is true)."""
    if hint is None or hint is Any:
        return
    args = getattr(hint, "__args__", None)
    allowed = tuple(a for a in args if a is not type(None)) if args else (hint,)
    if args and value is None and type(None) in args:
        return
    allowed = tuple(getattr(a, "__origin__", a) for a in allowed)
    ok = any(
        (a is bool and isinstance(value, bool))
        or (a is int and isinstance(value, int) and not isinstance(value, bool))
        or (a is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (a not in (bool, int, float) and isinstance(a, type) and isinstance(value, a))
        for a in allowed)
    if not ok:
        kinds = " or ".join(_KINDS.get(a, getattr(a, "__name__", str(a))) for a in allowed)
        if args and type(None) in args:
            kinds += " or null"
        raise ValueError(f"setting {name!r} must be {kinds}, got {value!r}")


def load_yaml(path: str | Path | None) -> dict:
    if path is None:
        return {}
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; --config names a YAML file")
    if not path.is_file():
        raise ValueError(f"{path}: config file does not exist")
    try:
        data = safe_yaml(path.read_text(), str(path)) or {}
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
