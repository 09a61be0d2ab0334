"""Question × relation pairs for the KgCLUE relation classifier, as JSON lines for the fine-tuning framework.

Per KgCLUE row (question, answer 'S ||| P ||| O'):
- one positive: (question, P), label "1";
- negatives, label "0": the other relations of the same entity S in the knowledge store (at most
  `max_entity_negatives`, a seeded sample when there are more), then `negatives` relations drawn at random
  (seeded) from the pool of relations (the gold relations of the given rows, plus `extra_pool`), never one the
  row already has. A relation equal to P after the metric's normalisation (lower-case, whitespace collapsed) is
  never a negative.
The text is the question with the subject mention wrapped in MARKS ('「刘晓华」主要讲什么课啊？') when `mark_mention`
is on: the mention located as `finetuning.ner.kgclue_mentions` locates it for the tagger (first exact occurrence
of the subject without its `（…）` suffix, else the longest common substring of two characters or more). The
pipeline marks the tagger's mention the same way, so the classifier sees at prediction what it saw in training.
Rows are JSON objects {"id": "<row id>:<k>", "question_id", "text", "relation", "label"}: the finetuning custom
loader reads them with text_field "text", pair_field "relation", label_field "label", labels ["0", "1"].
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Sequence

from ..config import ConfigError, DataError
from .metric import normalize

MARKS = ("「", "」")
LABELS = ["0", "1"]  # the classifier's label order: index 1 is "this relation is the one asked about"
MIN_FALLBACK = 2  # as finetuning.ner.kgclue_mentions
RELATION_META = "kbqa_relation.json"  # beside the classifier's best/ folder: {"mark_mention": ...}


def split_answer(answer: str) -> tuple[str, str, str]:
    """(subject, relation, object) of 'S ||| P ||| O', whitespace collapsed as `store.kb_from_kgclue` writes them
    into the knowledge file; DataError for anything else."""
    parts = answer.split("|||") if isinstance(answer, str) else []
    fields = tuple(" ".join(p.split()) for p in parts)
    if len(fields) != 3 or not all(fields):
        raise DataError(f"answer {answer!r} is not 'entity ||| attribute ||| value'")
    return fields  # type: ignore[return-value]


def mention_span(question: str, subject: str) -> tuple[int, int] | None:
    """(start, end) of the subject's mention in `question` (end exclusive), as the tagger's training labels place it:
    the first exact occurrence of the subject without its `（…）` suffix, else the longest common substring of at
    least MIN_FALLBACK characters; None when there is neither."""
    from ..finetuning.ner import longest_common_substring, strip_disambiguation

    surface = strip_disambiguation(subject)
    start = question.find(surface) if surface else -1
    if start >= 0:
        return start, start + len(surface)
    start, length = longest_common_substring(question, surface)
    return (start, start + length) if length >= MIN_FALLBACK else None


def mark(question: str, span: tuple[int, int] | None) -> str:
    """The question with question[start:end] wrapped in MARKS; unchanged when `span` is None."""
    if span is None:
        return question
    start, end = span
    return f"{question[:start]}{MARKS[0]}{question[start:end]}{MARKS[1]}{question[end:]}"


def relation_examples(
    rows: Sequence[dict],
    store=None,
    negatives: int = 3,
    seed: int = 0,
    mark_mention: bool = True,
    max_entity_negatives: int = 10,
    extra_pool: Sequence[str] = (),
) -> tuple[list[dict], dict]:
    """Pair rows (module docstring) of KgCLUE `rows` and their counts.

    store: a `KnowledgeStore` (or None: random negatives only). Returns (examples, stats) with stats: questions,
    examples, positives, entity_negatives, random_negatives, unmarked (questions where no mention was found to
    mark), pool (distinct relations random negatives are drawn from).
    """
    if negatives < 0:
        raise ConfigError(f"negatives: {negatives} must be >= 0 (random negative relations per question)")
    if max_entity_negatives < 0:
        raise ConfigError(f"max_entity_negatives: {max_entity_negatives} must be >= 0")
    if not rows:
        raise DataError("rows: no KgCLUE rows given; give questions with answers")
    parsed = []
    for row in rows:
        try:
            parsed.append((row, split_answer(row.get("answer"))))
        except DataError as exc:
            raise DataError(f"row {row.get('id')!r}: {exc}") from None
    pool = sorted({p for _, (_, p, _) in parsed} | {" ".join(r.split()) for r in extra_pool if r.strip()})
    rng = random.Random(seed)
    out: list[dict] = []
    stats = {"questions": len(rows), "examples": 0, "positives": 0, "entity_negatives": 0, "random_negatives": 0,
             "unmarked": 0, "pool": len(pool)}  # fmt: skip
    for row, (subject, relation, _) in parsed:
        question = row["question"]
        span = mention_span(question, subject) if mark_mention else None
        if mark_mention and span is None:
            stats["unmarked"] += 1
        text = mark(question, span)
        gold = normalize(relation)
        used = {gold}
        chosen = [(relation, "1")]
        same = [r for r in (store.relations(subject) if store is not None else []) if normalize(r) not in used]
        same = list(dict.fromkeys(same))
        if len(same) > max_entity_negatives:
            same = rng.sample(same, max_entity_negatives)
        for r in same:
            used.add(normalize(r))
            chosen.append((r, "0"))
        stats["entity_negatives"] += len(same)
        free = [r for r in pool if normalize(r) not in used]
        drawn = rng.sample(free, min(negatives, len(free)))
        chosen += [(r, "0") for r in drawn]
        stats["random_negatives"] += len(drawn)
        stats["positives"] += 1
        for k, (r, label) in enumerate(chosen):
            out.append({"id": f"{row['id']}:{k}", "question_id": row["id"], "text": text, "relation": r,
                        "label": label})  # fmt: skip
    stats["examples"] = len(out)
    return out, stats


def write_jsonl(rows: Sequence[dict], path: str | Path) -> Path:
    """`rows` as JSON lines at `path` (UTF-8, written to a temporary file and renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, path)
    return path


def write_relation_data(rows: Sequence[dict], out_file: str | Path, store=None, **options) -> dict:
    """`relation_examples(rows, store, **options)` written as JSON lines to `out_file`; returns its stats with
    `path` added."""
    examples, stats = relation_examples(rows, store, **options)
    stats["path"] = str(write_jsonl(examples, out_file))
    return stats
