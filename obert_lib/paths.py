"""Where the project's embedded data, the shared real data and run outputs live."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "data" / "sample"


def sample_path(*parts: str) -> Path:
    """A file of the embedded sample data (data/sample/...)."""
    return SAMPLE_DIR.joinpath(*parts)


def shared_data_dir() -> Path:
    """Real public data: $OBERT_SHARED_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("OBERT_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def resolve_data_path(path: str | Path) -> Path:
    """Expand 'sample:<rel>' and 'shared:<rel>' prefixes to real paths; leave others as given."""
    text = str(path)
    if text.startswith("sample:"):
        return sample_path(text[len("sample:") :])
    if text.startswith("shared:"):
        return shared_data_dir() / text[len("shared:") :]
    return Path(text).expanduser()


def check_output_dir(path: str | Path, key: str = "output_dir") -> Path:
    """`path` as an output folder: refused (ConfigError naming `key`) when it exists as a file, before any work."""
    from .config import ConfigError

    out = resolve_data_path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{key}: {out} is a file, not a folder; give a folder path (it is created when missing)")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(
                f"{key}: {out} is inside {parent} (a parent of {out}), which is a file, not a folder; "
                "give a folder path"
            )
    return out
