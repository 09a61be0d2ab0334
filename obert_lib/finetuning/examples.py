"""Fine-tuning examples: the nine FewCLUE tasks, KgCLUE subject tagging, CoNLL BIO files and a user's JSONL/CSV,
all turned into one `Example` type of four kinds, loaded by `load_task(source, train_split, eval_split)`.

Kinds (the label of an `Example`):
- classification: one text -> class index (eprstmt, tnews, iflytek, csldcp; cluewsc, see below).
- pair: text + pair -> class index (bustm, ocnli: sentence1/sentence2; csl: keywords joined with "，" / abst).
- multiple_choice: one scored sequence per choice -> index of the right choice (chid: each candidate filled into
  the passage in place of #idiom#, spaces removed; `text` keeps the passage with its blank, for reading only).
- tagging: one BIO tag id per character of `text` (KgCLUE subjects, CoNLL files).

cluewsc is listed among the sentence pairs in issue 16, but its only input is the text with （这是实体） after span1
and （这是代词） after span2 (the ZeroCLUE markers, `evaluation.cloze.task_fields`), so it is a single-text
classification here: a pair with an empty second segment would only add a [SEP].
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import ConfigError, DataError
from ..evaluation.cloze import task_fields
from ..evaluation.fewclue import IDIOM_MARK, TASKS, load_split, row_id, row_label, split_path
from ..evaluation.label_maps import task_labels
from ..jsonlines import json_objects
from ..paths import resolve_data_path
from .example_types import Example, TaskData, require_labelled, split_file

KINDS = ("classification", "pair", "multiple_choice", "tagging")

FEWCLUE_KINDS = {
    "eprstmt": "classification",
    "tnews": "classification",
    "iflytek": "classification",
    "csldcp": "classification",
    "cluewsc": "classification",  # the marked text alone (module docstring)
    "bustm": "pair",
    "ocnli": "pair",
    "csl": "pair",
    "chid": "multiple_choice",
}
assert set(FEWCLUE_KINDS) == set(TASKS)

# FewCLUE task -> (text field, pair field) of `evaluation.cloze.task_fields`
FEWCLUE_FIELDS = {
    "eprstmt": ("sentence", None),
    "tnews": ("sentence", None),
    "iflytek": ("sentence", None),
    "csldcp": ("content", None),
    "cluewsc": ("text", None),
    "bustm": ("sentence1", "sentence2"),
    "ocnli": ("sentence1", "sentence2"),
    "csl": ("keywords", "abst"),
}

OTHER_TASKS = {"kgclue_ner": "tagging", "conll": "tagging", "custom": None}  # custom: classification or pair


@dataclass
class DataSource:
    """Where a task's data lies and how to read it (the `data:` block of a fine-tuning YAML).

    task: a FewCLUE name (files <data_dir>/<task>/<split>.json), "kgclue_ner" (<data_dir>/<split>.json),
    "conll" (<data_dir>/<split>.txt or .conll: token and tag per line, blank line between sentences) or "custom"
    (<data_dir>/<split>.jsonl or .json with `format: jsonl`, <data_dir>/<split>.csv with `format: csv`).
    A split may also name the file itself (`train.jsonl`). custom: `text_field`, optional `pair_field` (then the
    kind is pair), `label_field`, optional `id_field` (else the line number); labels: the class names in order
    (custom) or the tag list (conll); None takes the sorted labels seen in the training split.
    """

    task: str
    data_dir: str
    format: Literal["jsonl", "csv"] = "jsonl"
    text_field: str = "text"
    pair_field: str | None = None
    label_field: str = "label"
    id_field: str = "id"
    labels: list[str] | None = None

    def __post_init__(self):
        if self.task not in FEWCLUE_KINDS and self.task not in OTHER_TASKS:
            raise ConfigError(
                f"task: {self.task!r} is not a known task; use a FewCLUE task {sorted(FEWCLUE_KINDS)}, "
                f"'kgclue_ner', 'conll' or 'custom' (with text_field/label_field)"
            )
        if self.format not in ("jsonl", "csv"):
            raise ConfigError(f"format: {self.format!r} is not readable; use 'jsonl' or 'csv'")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels: {self.labels} names a label twice; list each label once")

    @property
    def kind(self) -> str:
        if self.task == "custom":
            return "pair" if self.pair_field else "classification"
        return FEWCLUE_KINDS.get(self.task) or OTHER_TASKS[self.task]


def load_task(source: DataSource | dict, train_split: str, eval_split: str) -> TaskData:
    """Both splits of `source` as Examples with checked labels.

    Every row of both splits must be labelled (DataError naming the file and how many are not); a label outside
    the task's set raises DataError naming file:line. ocnli rows labelled outside its three classes and KgCLUE
    questions without a subject mention are skipped and counted in `TaskData.skipped`.
    """
    if isinstance(source, dict):
        source = DataSource(**source)
    if source.task in FEWCLUE_KINDS:
        return _fewclue(source, train_split, eval_split)
    from . import ner

    if source.task == "kgclue_ner":
        return ner.load_kgclue(source.data_dir, train_split, eval_split)
    if source.task == "conll":
        return ner.load_conll(source.data_dir, train_split, eval_split, source.labels)
    return _custom(source, train_split, eval_split)


# --- FewCLUE ------------------------------------------------------------------------------------------------------


def fewclue_example(task: str, row: dict, labels: list[str]) -> Example | None:
    """The Example of one checked FewCLUE row; None for an ocnli row labelled outside its classes."""
    label = row_label(task, row)
    if task == "chid":
        content = row["content"].replace(" ", "")
        choices = [content.replace(IDIOM_MARK, c) for c in row["candidates"]]
        return Example(row_id(row), content, choices=choices, label=None if label is None else int(label))
    if label is not None and label not in labels:  # load_split let it through: ocnli's '-' rows
        return None
    fields = task_fields(task, row)
    text_key, pair_key = FEWCLUE_FIELDS[task]
    return Example(
        row_id(row),
        fields[text_key],
        pair=fields[pair_key] if pair_key else None,
        label=None if label is None else labels.index(label),
    )


def _fewclue(source: DataSource, train_split: str, eval_split: str) -> TaskData:
    task = source.task
    kind = FEWCLUE_KINDS[task]
    task_dir = resolve_data_path(source.data_dir) / task
    labels = [] if kind == "multiple_choice" else list(task_labels(task, task_dir))
    splits, skipped = [], {}
    for split in (train_split, eval_split):
        rows = load_split(task, source.data_dir, split)
        examples = [fewclue_example(task, row, labels) for row in rows]
        skipped[split] = sum(e is None for e in examples)
        examples = [e for e in examples if e is not None]
        require_labelled(examples, split_path(task, source.data_dir, split))
        splits.append(examples)
    return TaskData(kind, labels, splits[0], splits[1], skipped=skipped)


# --- a user's JSONL / CSV -----------------------------------------------------------------------------------------


def read_rows(path: Path, fmt: str) -> list[tuple[int, dict]]:
    """(line number, row) of a JSONL file (one object per line) or a CSV file with a header line."""
    rows = []
    if fmt == "csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                if None in row:
                    raise DataError(f"{path}:{reader.line_num}: more cells than the header's {reader.fieldnames}")
                rows.append((reader.line_num, row))
        return rows
    rows += json_objects(path)
    return rows


def _field(row: dict, key: str, where: str, optional: bool = False) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        if optional:
            return None
        raise DataError(f"{where}: no `{key}` (the row has {sorted(row)}); name the right field in the YAML")
    if isinstance(value, (dict, list, bool)):
        raise DataError(f"{where}: `{key}` is {value!r}, not text or a number")
    return str(value)


def _custom(source: DataSource, train_split: str, eval_split: str) -> TaskData:
    suffixes = (".jsonl", ".json") if source.format == "jsonl" else (".csv",)
    paths = [split_file(source.data_dir, s, suffixes) for s in (train_split, eval_split)]
    raw = []
    for path in paths:
        rows = []
        for lineno, row in read_rows(path, source.format):
            where = f"{path}:{lineno}"
            rows.append(
                (
                    lineno,
                    row.get(source.id_field) if row.get(source.id_field) not in (None, "") else lineno,
                    _field(row, source.text_field, where),
                    _field(row, source.pair_field, where) if source.pair_field else None,
                    _field(row, source.label_field, where, optional=True),
                )
            )
        if not rows:
            raise DataError(f"{path} holds no rows; give a split with examples")
        missing = sum(r[4] is None for r in rows)
        if missing:
            raise DataError(
                f"{path}: {missing} of {len(rows)} rows have no `{source.label_field}`; training and evaluation "
                "need labelled rows"
            )
        raw.append(rows)
    labels = list(source.labels) if source.labels is not None else sorted({r[4] for r in raw[0]})
    index = {label: i for i, label in enumerate(labels)}
    splits = []
    for path, rows in zip(paths, raw):
        examples = []
        for lineno, id_, text, pair, label in rows:
            if label not in index:
                origin = "the YAML's `labels`" if source.labels is not None else f"the labels seen in {paths[0].name}"
                shown = labels if len(labels) <= 20 else [*labels[:20], "..."]
                raise DataError(f"{path}:{lineno}: label {label!r} is not one of {origin} {shown}")
            examples.append(Example(id_, text, pair=pair, label=index[label]))
        splits.append(examples)
    return TaskData(source.kind, labels, splits[0], splits[1], skipped={train_split: 0, eval_split: 0})
