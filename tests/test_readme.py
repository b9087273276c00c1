"""The README's Python example runs as written (against a tiny run standing in for the demo's),
and every public function of the modules the API reference documents has a docstring."""

import importlib
import inspect
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_python_example_runs(tiny_run, tmp_path, capsys, monkeypatch):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has no Python example"
    example = blocks[0]
    assert len(example.strip().splitlines()) <= 12
    (tmp_path / "lamae-demo").mkdir()
    os.symlink(tiny_run, tmp_path / "lamae-demo" / "run")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    out = capsys.readouterr().out
    shape, rest = out.split(")", 1)
    assert shape.strip() == "(64,", out  # the tiny model's embedding width
    assert "'II'" in rest and "'V2'" in rest, out


def _documented_objects() -> list[tuple[str, object]]:
    """What docs/api.md renders: each ``::: name`` (a module's public members, a class with its
    public methods, or a function)."""
    out = []
    for name in re.findall(r"^::: ([\w.]+)", (ROOT / "docs" / "api.md").read_text(), re.M):
        try:
            obj = importlib.import_module(name)
        except ImportError:
            modname, attr = name.rsplit(".", 1)
            obj = getattr(importlib.import_module(modname), attr)
        if inspect.ismodule(obj):
            out += [(f"{name}.{k}", v) for k, v in vars(obj).items()
                    if not k.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
                    and getattr(v, "__module__", None) == name]
        else:
            out.append((name, obj))
    return out


def test_every_public_function_of_the_documented_api_has_a_docstring():
    pytest.importorskip("ecgdatakit")
    missing = []
    for name, obj in _documented_objects():
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member) and not member.__doc__:
                    missing.append(f"{name}.{attr}")
    assert not missing, f"public functions without a docstring: {missing}"


def test_the_command_reference_is_the_parsers_own_help():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "docs" / "cli_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "cli.md").read_text() == mod.render(), "run python docs/cli_reference.py"
