"""FewCLUE task files (Xu et al. 2021, CLUEbenchmark/FewCLUE): JSON lines per split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, DataError
from ..paths import resolve_data_path


@dataclass(frozen=True)
class TaskSpec:
    """Which fields hold the text(s) and which label strings a task uses."""

    name: str
    text_keys: tuple[str, ...]
    labels: tuple[str, ...]
    label_key: str = "label"


TASKS = {
    # e-commerce review sentiment, one sentence
    "eprstmt": TaskSpec("eprstmt", ("sentence",), ("Negative", "Positive")),
    # do two short queries mean the same? sentence pair
    "bustm": TaskSpec("bustm", ("sentence1", "sentence2"), ("0", "1")),
}


def task_spec(name: str) -> TaskSpec:
    """The TaskSpec of a supported task, or a clear error listing the supported ones."""
    if name not in TASKS:
        raise ConfigError(f"task: {name!r} is not supported yet; use one of {sorted(TASKS)}")
    return TASKS[name]


def load_split(task: str, data_dir: str | Path, split: str) -> list[dict]:
    """Rows of <data_dir>/<task>/<split>.json; labelled splits must carry a known label on every row.

    Rows are JSON objects, one per line (split on newline only; a leading UTF-8 BOM is accepted). A row
    that is not a JSON object, lacks a text field or holds an unknown label, and a split without rows,
    raise DataError naming the file and line.
    """
    spec = task_spec(task)
    path = resolve_data_path(data_dir) / task / f"{split}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; check data_dir ('sample:fewclue' or 'shared:fewclue') and split"
        )
    rows = []
    with open(path, encoding="utf-8-sig", newline="\n") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not a JSON line ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    f"{path}:{lineno}: a JSON {type(row).__name__}, not an object with the fields "
                    f"{list(spec.text_keys)}"
                )
            missing = [k for k in spec.text_keys if not isinstance(row.get(k), str)]
            if missing:
                raise DataError(f"{path}:{lineno}: missing text field(s) {missing}; the row has {sorted(row)}")
            label = row.get(spec.label_key)
            if label is not None and str(label) not in spec.labels:
                raise DataError(f"{path}:{lineno}: label {label!r} is not one of {spec.labels}")
            rows.append(row)
    if not rows:
        raise DataError(f"{path} holds no rows; pick a split with examples")
    return rows


def label_index(task: str, row: dict) -> int:
    """Index of the row's label in the task's label list."""
    spec = task_spec(task)
    return spec.labels.index(str(row[spec.label_key]))
