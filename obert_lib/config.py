"""Typed, strict configuration: dataclasses loaded from dicts/YAML with errors that name the key and the fix."""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class UserError(Exception):
    """An expected mistake of the user's (bad path, file, input or value): the CLI prints its message as one
    line `obert <command>: error: ...` and exits with 2. The message names the file, line or key and the fix.
    Anything else that escapes is a bug and keeps its traceback."""


class ConfigError(UserError, ValueError):
    """A config key is unknown, mistyped or holds an impossible value; the message names key and fix."""


class DataError(UserError, ValueError):
    """An input file holds rows that cannot be used; the message names the file and line and the fix."""


def read_yaml(source: str | Path, *, text: str | None = None, what: str = "YAML") -> Any:
    """Parse YAML from file `source` (or from `text`, with `source` naming where it came from).

    A file that does not exist or does not parse raises ConfigError naming the file, line and column.
    """
    if text is None:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{what} file {path} does not exist; pass an existing YAML file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what} file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(source)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: {what} does not parse: {problem}; fix the syntax there") from None


def require(condition: bool, key: str, message: str) -> None:
    """Raise ConfigError for `key` with `message` (which should say the fix) unless `condition` holds."""
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one value against a type annotation; raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not allowed; use one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 2e-4 (no dot) as text; a float setting takes it as the number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types by name."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        raise ConfigError(
            f"{prefix}{k}: unknown key in {cls.__name__}; {_suggest(k, list(fields))}valid keys are {sorted(fields)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain JSON-able data."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists are JSON-encoded so each value fits one table cell."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v, ensure_ascii=False)
        else:
            out[key] = v
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of nested `data` with dotted-key overrides applied ({'train.lr': 1e-4})."""
    out = json.loads(json.dumps(data, default=str))
    for dotted, value in overrides.items():
        node: Any = out
        parts = dotted.split(".")
        for depth, p in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):  # 'stages.0.steps': a list index
                if not p.isdigit() or int(p) >= len(node):
                    raise ConfigError(f"{dotted}: '{p}' is not an index of a list of {len(node)} items")
                if last:
                    node[int(p)] = value
                else:
                    node = node[int(p)]
            elif isinstance(node, dict):
                if last:
                    node[p] = value
                else:
                    node = node.setdefault(p, {})
            else:
                raise ConfigError(f"{dotted}: '{parts[depth - 1]}' is not a section, cannot override inside it")
    return out


def load(cls: type[T], source: str | Path | Mapping[str, Any] | T | None = None, **overrides: Any) -> T:
    """Load `cls` from a YAML/JSON path, a mapping or an instance, then apply dotted overrides."""
    if isinstance(source, cls):
        data = to_dict(source)
    elif source is None:
        data = {}
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        data = read_yaml(path, what="config") or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"config file {path} must hold a mapping at top level")
    if overrides:
        data = apply_overrides(data, {k.replace("__", "."): v for k, v in overrides.items()})
    return from_dict(cls, data)


def save(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config beside an artefact, as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(cfg), ensure_ascii=False, indent=2), encoding="utf-8")
    return path
