"""config.build_config: defaults < YAML < command-line flags < --set overrides, typos refused."""

from dataclasses import dataclass, field

import pytest

from lamae.config import apply_overrides, build_config, load_yaml


@dataclass
class Settings:
    steps: int = 10
    lr: float = 0.1
    name: str = "a"
    model: dict = field(default_factory=dict)


def test_each_source_overrides_the_one_before(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("steps: 20\nlr: 0.5\nname: yaml\nmodel: {dim: 32}\n")
    cfg = build_config(Settings, yaml_path=y, flags={"lr": 0.7, "name": None}, overrides=["name=cli", "model.depth=3"])
    assert (cfg.steps, cfg.lr, cfg.name) == (20, 0.7, "cli")   # a flag left None keeps the YAML value
    assert cfg.model == {"dim": 32, "depth": 3}
    assert build_config(Settings) == Settings()


def test_override_values_are_parsed_as_yaml():
    d = apply_overrides({"a": {"b": 1}}, ["a.b=2.5", "c=true", "d=[1, 2]", "e=text"])
    assert d == {"a": {"b": 2.5}, "c": True, "d": [1, 2], "e": "text"}


def test_overrides_do_not_change_the_callers_dict():
    d = {"a": {"b": 1}}
    apply_overrides(d, ["a.b=2"])
    assert d == {"a": {"b": 1}}


@pytest.mark.parametrize("overrides, message", [(["steps"], "key=value"), (["stepz=3"], "stepz")])
def test_typos_fail_loudly(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_config(Settings, overrides=overrides)


@pytest.mark.parametrize("text, message", [("steps: [1\n", "line"), ("- 1\n- 2\n", "mapping"),
                                           (b"\xff\xfe\x00", "text file")])
def test_bad_yaml_names_the_file_and_the_problem(tmp_path, text, message):
    y = tmp_path / "bad.yaml"
    y.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=message) as info:
        load_yaml(y)
    assert "bad.yaml" in str(info.value)


def test_missing_yaml_is_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
