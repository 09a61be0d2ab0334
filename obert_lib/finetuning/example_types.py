"""The data types every fine-tuning loader returns (finetuning.examples for FewCLUE and custom files,
finetuning.ner for KgCLUE and CoNLL), and the two checks they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataError
from ..paths import resolve_data_path


@dataclass
class Example:
    """One input. label: class index (classification, pair), index into `choices` (multiple_choice), one tag id
    per character of `text` (tagging), or None when unlabelled."""

    id: object
    text: str
    pair: str | None = None
    choices: list[str] | None = None
    label: int | list[int] | None = None


@dataclass
class TaskData:
    """A task ready to encode. labels: class names (classification, pair), tag names (tagging, "O" first), []
    for multiple choice (one shared head scores each choice). skipped: split -> rows dropped on purpose (ocnli
    rows labelled outside its three classes; KgCLUE questions where no subject mention was found). stats:
    per-loader details (KgCLUE: split -> mention statistics of `ner.kgclue_mentions`)."""

    kind: str
    labels: list[str]
    train: list[Example]
    eval: list[Example]
    skipped: dict[str, int] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


def split_file(data_dir: str | Path, split: str, suffixes: tuple[str, ...]) -> Path:
    """<data_dir>/<split><suffix> for the first suffix that exists, or <data_dir>/<split> when it is a file."""
    base = resolve_data_path(data_dir)
    for candidate in [base / f"{split}{s}" for s in suffixes] + [base / split]:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{base / split}{{{','.join(suffixes)}}} does not exist; check data_dir ({data_dir}) and the split name"
    )


def require_labelled(examples: list[Example], path: Path | str) -> None:
    """DataError naming `path` and the count when some examples have no label."""
    missing = sum(e.label is None for e in examples)
    if missing:
        raise DataError(
            f"{path}: {missing} of {len(examples)} rows have no label; training and evaluation need labelled "
            "splits (test.json is for predictions)"
        )
