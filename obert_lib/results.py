"""The results table: one row per run (seed, data hash, flattened config, metrics)."""
from __future__ import annotations

import datetime as _dt
import hashlib
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
    if table.exists():
        old = pd.read_csv(table)
        new = pd.concat([old, new], ignore_index=True)
    tmp = table.with_suffix(".tmp")
    new.to_csv(tmp, index=False)
    tmp.replace(table)  # atomic: a crash never leaves a half-written table
    return new


def summarise(df: pd.DataFrame, by: list[str], metric: str) -> pd.DataFrame:
    """Mean, standard deviation and count of `metric` over seeds, grouped by `by`."""
    g = df.groupby(by, dropna=False)[metric]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
