"""Sentence pairs for an auxiliary task: the JSONL reader and the [CLS] a [SEP] b [SEP] batch.

The file format (docs/multitask.md), one JSON object per line, e.g. a query-title click log (Motian):

    {"text_a": "北京天气", "text_b": "北京今日天气预报", "label": 1}
    {"text_a": "北京天气", "text_b": "北京烤鸭做法", "label": 0}

text_a / text_b: non-empty strings; label: an integer 0..n-1 (classes: n), one of the class names
(classes: [names], e.g. ["exposure", "click"]), or a number for a regression. Other fields are ignored; the
field names are settings (text_a_key, text_b_key, label_key), so FewCLUE's bustm/afqmc files read as they are.
Any mistake is a DataError naming the file, line and fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..config import DataError
from ..jsonlines import json_objects
from ..paths import resolve_data_path
from .config import AuxTaskConfig


@dataclass(frozen=True)
class Pair:
    text_a: str
    text_b: str
    label: int | float  # class id, or the target of a regression


def read_pairs(path: str | Path, task: AuxTaskConfig) -> list[Pair]:
    """Every pair of the JSONL file, in file order, labels as class ids (or floats for a regression)."""
    path = resolve_data_path(path)
    if not path.is_file():
        raise DataError(f"aux task {task.name}: pairs file {path} does not exist; give an existing JSONL file")
    keys = (task.text_a_key, task.text_b_key)
    pairs = []
    for lineno, row in json_objects(path, fields=f"{keys[0]}, {keys[1]} and {task.label_key}"):
        texts = []
        for key in keys:
            text = row.get(key)
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{path}:{lineno}: {key!r} is {text!r}; each line needs a non-empty string {key!r}")
            texts.append(text)
        if task.label_key not in row:
            raise DataError(f"{path}:{lineno}: no {task.label_key!r}; each line needs a label")
        pairs.append(Pair(texts[0], texts[1], _label(row[task.label_key], task, f"{path}:{lineno}")))
    if not pairs:
        raise DataError(f"{path}: no pairs; give one JSON object per line")
    return pairs


def _label(value, task: AuxTaskConfig, where: str) -> int | float:
    """A JSON label as a class id (or float), or a DataError saying which labels the task takes."""
    if task.loss == "regression":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"{where}: label {value!r} is not a finite number; a regression task needs numbers")
        return float(value)
    if isinstance(task.classes, int):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < task.classes:
            raise DataError(
                f"{where}: label {value!r} is not an integer in 0..{task.classes - 1}; use those, or name the "
                f"classes (classes: [...]) when labels are strings"
            )
        return value
    if value not in task.classes:
        raise DataError(f"{where}: label {value!r} is not one of the classes {task.classes}; fix the line or classes")
    return task.classes.index(value)


def tokenize_pairs(pairs: Sequence[Pair], tokenizer) -> list[tuple[list[int], list[int]]]:
    """Token ids of both texts of every pair, without special tokens (the corpus tokenizer)."""
    a = tokenizer([p.text_a for p in pairs], add_special_tokens=False)["input_ids"]
    b = tokenizer([p.text_b for p in pairs], add_special_tokens=False)["input_ids"]
    return list(zip(a, b))


def truncate(la: int, lb: int, room: int) -> tuple[int, int]:
    """Lengths kept of a and b so that they fit `room`: the longer one is cut first (BERT's longest_first)."""
    if la + lb <= room:
        return la, lb
    keep_a = min(la, max(room - lb, (room + 1) // 2))
    return keep_a, min(lb, room - keep_a)


def pair_batch(
    ids: Sequence[tuple[Sequence[int], Sequence[int]]],
    labels: Sequence[int | float],
    max_length: int,
    tokenizer,
    regression: bool = False,
) -> dict[str, torch.Tensor]:
    """[CLS] a [SEP] b [SEP] per pair (token types 0 then 1), cut to max_length, padded to the longest row."""
    rows, types = [], []
    for a, b in ids:
        ka, kb = truncate(len(a), len(b), max_length - 3)
        rows.append([tokenizer.cls_token_id, *a[:ka], tokenizer.sep_token_id, *b[:kb], tokenizer.sep_token_id])
        types.append([0] * (ka + 2) + [1] * (kb + 1))
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(rows), width), dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, typ) in enumerate(zip(rows, types)):
        input_ids[i, : len(row)] = torch.tensor(row)
        token_type_ids[i, : len(row)] = torch.tensor(typ)
        attention_mask[i, : len(row)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": torch.tensor(labels, dtype=torch.float32 if regression else torch.long),
    }
