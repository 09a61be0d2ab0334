"""The flags every `obert` subcommand shares (--config, --set, --runtime) and how their values are read."""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence


def _overrides(pairs: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """['a.b=1', 'c=[1,2]'] -> {'a.b': 1, 'c': [1, 2]} (values parsed as YAML)."""
    from .config import ConfigError, read_yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} expects KEY=VALUE, got {pair!r}")
        out[key] = read_yaml(f"{flag} {key}", text=value, what="value")
    return out


def _yaml_mapping(path: str, what: str) -> dict[str, Any]:
    """The mapping in YAML file `path`; a missing file, bad syntax or a non-mapping is a ConfigError."""
    from .config import ConfigError, read_yaml

    data = read_yaml(path, what=what) or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} file {path} must hold a mapping (key: value lines) at top level, not a {type(data).__name__}"
        )
    return data


def _source(args) -> dict[str, Any]:
    """Config mapping from --config (YAML) with --set overrides applied."""
    from .config import apply_overrides

    data = _yaml_mapping(args.config, "config") if getattr(args, "config", None) else {}
    return apply_overrides(data, _overrides(args.set or []))


def _option_settings(args, flag: str, keys: Sequence[str]) -> None:
    """Apply `--set`/`--runtime` KEY=VALUE pairs (and --config's mapping for --set) to the subcommand's own
    options named `keys`: the idiom of subcommands without a config dataclass (mask, demo, bench)."""
    from .config import ConfigError

    pairs = _overrides(getattr(args, flag.strip("-")) or [], flag)
    if flag == "--set" and getattr(args, "config", None):
        pairs = {**_yaml_mapping(args.config, "config"), **pairs}
    for key, value in pairs.items():
        name = key.replace("-", "_")
        if name not in keys:
            what = f"valid keys are {sorted(keys)}" if keys else f"`obert {args.command}` has none"
            raise ConfigError(f"{flag} {key}: not a setting of `obert {args.command}` here; {what}")
        setattr(args, name, value)


def _runtime_pairs(args) -> dict[str, Any]:
    """--runtime KEY=VALUE pairs as dotted overrides of the stage's speed-only config."""
    return _overrides(args.runtime or [], "--runtime")


def _print(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


IDIOM = (
    "every subcommand takes --config FILE|PRESET, --set KEY=VALUE for settings that change results and "
    "--runtime KEY=VALUE for settings that change only speed; --config is read first, then --set and "
    "--runtime (dotted keys, YAML values), then the explicit flags"
)


def _idiom(
    p: argparse.ArgumentParser,
    config: str,
    set_: str,
    runtime: str,
    *,
    config_aliases: Sequence[str] = (),
    config_dest: str = "config",
    config_default: str | None = None,
    runtime_aliases: Sequence[str] = (),
) -> None:
    """The three flags every subcommand shares (see IDIOM); aliases keep the older spellings working."""
    p.add_argument(
        "--config", *config_aliases, dest=config_dest, default=config_default, metavar="FILE|PRESET", help=config
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help=set_ + " (repeatable)")
    p.add_argument(
        "--runtime",
        *runtime_aliases,
        dest="runtime",
        action="append",
        metavar="KEY=VALUE",
        help=runtime + " (repeatable)",
    )
