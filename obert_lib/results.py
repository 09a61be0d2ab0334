"""The results table: one row per run (seed, data hash, flattened config, metrics)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from .config import flatten

if TYPE_CHECKING:  # pandas is imported where a table is built, not by every corpus worker that imports this module
    import pandas as pd


def hash_files(paths: Iterable[str | Path]) -> str:
    """sha256 over the bytes of the given files (sorted by path), first 16 hex digits."""
    digest = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        digest.update(p.name.encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@contextlib.contextmanager
def _table_lock(table: Path):
    """An exclusive advisory lock on <table>.lock for one read-append-write of the table: runs sharing a
    results table (zero-shot tasks into one folder, ablation workers) never drop each other's rows."""
    with open(table.with_name(table.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_result(
    table: str | Path,
    stage: str,
    seed: int,
    data_hash: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> pd.DataFrame:
    """Append one row to the CSV results table (created on first use) and return the whole table."""
    import pandas as pd

    table = Path(table)
    table.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "stage": stage,
        "seed": seed,
        "data_hash": data_hash,
        **{f"config.{k}": v for k, v in flatten(config).items()},
        **{f"metric.{k}": v for k, v in metrics.items()},
    }
    new = pd.DataFrame([row])
    with _table_lock(table):
        if table.exists():
            old = pd.read_csv(table)
            new = pd.concat([old, new], ignore_index=True)
        tmp = table.with_name(f".{table.name}.{os.getpid()}.tmp")
        new.to_csv(tmp, index=False)
        tmp.replace(table)  # atomic: a crash never leaves a half-written table
    return new


def summarise(df: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Mean, standard deviation and count of `metric` over seeds, grouped by `by`."""
    g = df.groupby(by, dropna=False)[metric]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
