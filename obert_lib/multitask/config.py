"""Auxiliary pretraining tasks beside MLM: what PretrainConfig.aux_tasks lists (docs/multitask.md).

Each task adds a pooled-[CLS] head and a loss, weighted against MLM by a learned log-variance
(Kendall, Gal and Cipolla 2018; uncertainty.py). Three kinds:

* pairs: sentence-pair classification (or regression) from a JSONL of {"text_a", "text_b", "label"} lines,
  e.g. Motian's query-title click/exposure log (pairs.py);
* same_document: built from the corpus itself, so it runs on any corpus: are two paragraphs from the
  same document? (corpus_tasks.py);
* sentence_order: also from the corpus: are two consecutive sentences (or paragraphs) of one document in
  their original order or swapped? (ALBERT's sentence-order prediction, Lan et al. 2020; corpus_tasks.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..config import ConfigError, require

RESERVED = ("mlm", "total")  # task names the metrics already use (loss/mlm, loss/total)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # a metrics column and a module key: no dots, no slashes


@dataclass
class AuxTaskConfig:
    """One auxiliary task: its data, its loss and its batch (per micro-batch, beside the MLM micro-batch)."""

    name: str = ""
    kind: Literal["pairs", "same_document", "sentence_order"] = "pairs"
    path: str | None = None  # pairs: the JSONL file ('sample:' and 'shared:' prefixes work); corpus kinds: none
    # classification: cross-entropy, Kendall's exp(-s)·L + s/2; regression: MSE on one output, 0.5·exp(-s)·L + s/2
    loss: Literal["classification", "regression"] = "classification"
    # classification: the number of classes (labels are integers 0..n-1) or their names in id order
    # (labels are those strings); regression: unused (one output)
    classes: int | list[str] = 2
    micro_batch: int | None = None  # pairs per micro-batch (None: the stage's micro_batch)
    max_length: int | None = None  # tokens per pair with [CLS] and both [SEP] (None: the stage's seq_len)
    text_a_key: str = "text_a"  # the JSONL fields (pairs), so FewCLUE/LCQMC-style files read unchanged
    text_b_key: str = "text_b"
    label_key: str = "label"

    def __post_init__(self):
        require(
            bool(_NAME.match(self.name)),
            "name",
            f"{self.name!r} is not a task name; use letters, digits and '_', starting with a letter (e.g. click)",
        )
        require(
            self.name not in RESERVED,
            "name",
            f"{self.name!r} is reserved for the metrics ({list(RESERVED)}); pick another name",
        )
        if self.kind == "pairs":
            require(bool(self.path), "path", f"task {self.name} (kind pairs) needs path: a JSONL file of pairs")
        else:
            require(
                self.path is None,
                "path",
                f"task {self.name} (kind {self.kind}) is built from the corpus; remove path",
            )
            require(
                self.loss == "classification" and self.classes == 2,
                "loss",
                f"task {self.name} (kind {self.kind}) is a two-class task; "
                "leave loss (classification) and classes (2) out",
            )
        if self.loss == "regression":
            require(
                self.classes == 2,
                "classes",
                f"task {self.name} is a regression (one output); remove classes",
            )
        elif isinstance(self.classes, int):
            require(self.classes >= 2, "classes", f"{self.classes} classes; give >= 2 or the class names")
        else:
            require(
                len(self.classes) >= 2 and len(set(self.classes)) == len(self.classes),
                "classes",
                f"{self.classes}: give two or more distinct class names",
            )
        require(self.micro_batch is None or self.micro_batch >= 1, "micro_batch", "must be >= 1 (or leave it out)")
        require(
            self.max_length is None or self.max_length >= 8,
            "max_length",
            f"{self.max_length} is too short for [CLS] a [SEP] b [SEP]; use >= 8 (or leave it out)",
        )

    @property
    def outputs(self) -> int:
        """The head's outputs: one per class, or one for a regression."""
        if self.loss == "regression":
            return 1
        return self.classes if isinstance(self.classes, int) else len(self.classes)


def check_tasks(tasks: list[AuxTaskConfig]) -> None:
    """Distinct task names, or a ConfigError naming aux_tasks."""
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"aux_tasks[].name: names {names} repeat; give each task its own name")
