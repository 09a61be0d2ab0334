"""FewCLUE task files (Xu et al. 2021, CLUEbenchmark/FewCLUE): one JSON object per line, per split.

The nine tasks keep their real formats: cluewsc names its id `idx` in labelled splits (`id` in test.json),
chid's label field is `answer` (an index into `candidates`), tnews and iflytek write labels as integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, DataError
from ..jsonlines import json_objects
from ..paths import resolve_data_path
from .label_maps import FIXED_WORDS, task_labels


@dataclass(frozen=True)
class TaskSpec:
    """Which fields a row must hold (text fields are strings) and where its label is."""

    name: str
    text_keys: tuple[str, ...]
    labels: tuple[str, ...] = ()  # fixed label strings; () when read from the task's label file (or chid)
    label_key: str = "label"
    list_keys: tuple[str, ...] = ()  # fields that are lists of strings
    skip_unknown_labels: bool = False  # ocnli: rows labelled outside the set ('-', no consensus) are skipped


def _fixed(task: str) -> tuple[str, ...]:
    return tuple(FIXED_WORDS[task])


TASKS = {
    # e-commerce review sentiment
    "eprstmt": TaskSpec("eprstmt", ("sentence",), _fixed("eprstmt")),
    # scientific abstract -> one of 67 disciplines (labels are the full Chinese names)
    "csldcp": TaskSpec("csldcp", ("content",)),
    # news headline -> one of 15 categories (labels are ids such as 102)
    "tnews": TaskSpec("tnews", ("sentence",), _fixed("tnews")),
    # app description -> one of 119 categories (labels are ids such as 110)
    "iflytek": TaskSpec("iflytek", ("sentence",)),
    # natural language inference
    "ocnli": TaskSpec("ocnli", ("sentence1", "sentence2"), _fixed("ocnli"), skip_unknown_labels=True),
    # do two short queries mean the same?
    "bustm": TaskSpec("bustm", ("sentence1", "sentence2"), _fixed("bustm")),
    # which of 7 idioms fills #idiom#?
    "chid": TaskSpec("chid", ("content",), label_key="answer", list_keys=("candidates",)),
    # do the keywords fit the abstract?
    "csl": TaskSpec("csl", ("abst",), _fixed("csl"), list_keys=("keyword",)),
    # does the pronoun refer to the entity?
    "cluewsc": TaskSpec("cluewsc", ("text",), _fixed("cluewsc")),
}

IDIOM_MARK = "#idiom#"


def task_spec(name: str) -> TaskSpec:
    """The TaskSpec of a supported task, or a clear error listing the supported ones."""
    if name not in TASKS:
        raise ConfigError(f"task: {name!r} is not a FewCLUE task; use one of {sorted(TASKS)}")
    return TASKS[name]


def split_path(task: str, data_dir: str | Path, split: str) -> Path:
    return resolve_data_path(data_dir) / task / f"{split}.json"


def row_id(row: dict):
    """The row's id as the data writes it (`idx` in cluewsc's labelled splits)."""
    return row["id"] if "id" in row else row.get("idx")


def row_label(task: str, row: dict) -> str | None:
    """The row's label as a string ('102', 'entailment', chid '3'), or None for an unlabelled row."""
    value = row.get(task_spec(task).label_key)
    return None if value is None else str(value)


def _check_row(spec: TaskSpec, row: dict, labels: tuple[str, ...], where: str) -> None:
    """Raise DataError (prefixed with file:line) when a row lacks a field the protocol reads."""
    if "id" not in row and "idx" not in row:
        raise DataError(f"{where}: the row has no `id` (or `idx`); the fields are {sorted(row)}")
    missing = [k for k in spec.text_keys if not isinstance(row.get(k), str)]
    missing += [k for k in spec.list_keys if not _is_str_list(row.get(k))]
    if missing:
        raise DataError(f"{where}: missing or mistyped field(s) {missing}; the row has {sorted(row)}")
    if spec.name == "chid":
        count = row["content"].count(IDIOM_MARK)
        if count != 1:
            raise DataError(f"{where}: content holds {IDIOM_MARK} {count} times; chid needs exactly one")
        if len(row["candidates"]) < 2:
            raise DataError(f"{where}: candidates {row['candidates']} must name at least two idioms")
    if spec.name == "cluewsc":
        _check_spans(row, where)
    label = row.get(spec.label_key)
    if label is None:
        return
    if spec.name == "chid":
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(row["candidates"]):
            raise DataError(f"{where}: answer {label!r} is not an index into its {len(row['candidates'])} candidates")
    elif str(label) not in labels and not spec.skip_unknown_labels:
        shown = list(labels) if len(labels) <= 20 else [*labels[:20], "..."]
        raise DataError(f"{where}: label {label!r} is not one of {spec.name}'s labels {shown}")


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_spans(row: dict, where: str) -> None:
    target = row.get("target")
    if not isinstance(target, dict):
        raise DataError(f"{where}: cluewsc rows need a `target` object with the two spans")
    for k in ("1", "2"):
        index, text = target.get(f"span{k}_index"), target.get(f"span{k}_text")
        if not isinstance(index, int) or not isinstance(text, str) or not text:
            raise DataError(f"{where}: target needs span{k}_index (integer) and span{k}_text (text)")
        if row["text"][index : index + len(text)] != text:
            found = row["text"][index : index + len(text)]
            raise DataError(f"{where}: span{k}_text {text!r} is not at span{k}_index {index} (found {found!r})")


def load_split(task: str, data_dir: str | Path, split: str) -> list[dict]:
    """Rows of <data_dir>/<task>/<split>.json, each checked for the fields the task's protocol reads.

    Split on newline only (rows may hold U+2028); a leading UTF-8 BOM is accepted. A row that is not a JSON
    object, lacks a field, holds an unknown label, and a split without rows raise DataError naming the file
    and line. Unlabelled rows (test.json) are kept.
    """
    spec = task_spec(task)
    path = split_path(task, data_dir, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; check data_dir ('sample:fewclue' or 'shared:fewclue') and split "
            "(dev_0, dev_few_all, test, test_public, ...)"
        )
    labels = spec.labels or task_labels(task, path.parent)
    rows = []
    for lineno, row in json_objects(path, f"the fields {list(spec.text_keys)}"):
        _check_row(spec, row, labels, f"{path}:{lineno}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path} holds no rows; pick a split with examples")
    return rows


def label_index(task: str, row: dict) -> int:
    """Index of the row's label in the task's fixed label list (tasks with fixed labels only)."""
    spec = task_spec(task)
    if not spec.labels:
        raise ConfigError(f"task: {task}'s labels come from its label file; use label_maps.task_labels")
    return spec.labels.index(str(row[spec.label_key]))
