from dataclasses import dataclass, field
from typing import Literal

import pytest

from obert_lib.config import ConfigError, apply_overrides, flatten, from_dict, load, require


@dataclass
class Inner:
    rate: float = 0.15
    name: Literal["a", "b"] = "a"

    def __post_init__(self):
        require(0 < self.rate < 1, "rate", "must be within (0, 1)")


@dataclass
class Outer:
    steps: int = 3
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    path: str | None = None


def test_unknown_key_names_key_and_suggests_fix():
    with pytest.raises(ConfigError, match=r"^stpes: unknown key in Outer; did you mean 'steps'\?"):
        from_dict(Outer, {"stpes": 3})


def test_nested_unknown_key_has_full_path():
    with pytest.raises(ConfigError, match=r"^items\[1\]\.rat: unknown key in Inner"):
        from_dict(Outer, {"items": [{}, {"rat": 0.1}]})


def test_type_and_value_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"^steps: expected an integer, got '3'"):
        from_dict(Outer, {"steps": "3"})
    with pytest.raises(ConfigError, match=r"^inner\.rate: must be within \(0, 1\)"):
        from_dict(Outer, {"inner": {"rate": 1.5}})
    with pytest.raises(ConfigError, match=r"inner\.name: 'c' is not allowed; use one of \['a', 'b'\]"):
        from_dict(Outer, {"inner": {"name": "c"}})


def test_ints_are_accepted_as_floats_and_optional_none():
    assert from_dict(Outer, {"path": None}).path is None
    assert from_dict(Inner, {"rate": 0.5}).rate == 0.5


def test_overrides_with_list_index_and_errors():
    data = {"a": {"b": 1}, "items": [{"x": 1}, {"x": 2}]}
    assert apply_overrides(data, {"a.b": 2, "items.1.x": 5}) == {"a": {"b": 2}, "items": [{"x": 1}, {"x": 5}]}
    assert data["items"][1]["x"] == 2  # input untouched
    with pytest.raises(ConfigError, match="is not an index of a list of 2 items"):
        apply_overrides(data, {"items.7.x": 1})


def test_load_from_instance_with_overrides_and_flatten():
    cfg = load(Outer, Outer(steps=4), **{"inner.rate": 0.2})
    assert (cfg.steps, cfg.inner.rate) == (4, 0.2)
    assert flatten({"a": {"b": 1, "c": [1, 2]}}) == {"a.b": 1, "a.c": "[1, 2]"}


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(Outer, tmp_path / "nope.yaml")


def test_a_float_setting_takes_yaml_exponent_text_as_the_number():
    """YAML 1.1 reads `2e-4` (no dot) as a string; `--set train.lr=2e-4` means the number."""
    from obert_lib.finetuning import FinetuneConfig

    assert load(FinetuneConfig, {"train": {"lr": "2e-4"}}).train.lr == 2e-4
    with pytest.raises(ConfigError, match="train.lr: expected a number, got 'fast'"):
        load(FinetuneConfig, {"train": {"lr": "fast"}})
