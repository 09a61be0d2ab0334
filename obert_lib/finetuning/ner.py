"""Slot filling / NER data and scores: BIO checks, seqeval-compatible span F1, KgCLUE subject mentions, CoNLL files.

Scheme: IOB2 (BIO): "O", "B-<type>" starts an entity, "I-<type>" continues one of the same type.
Gold sequences (read from files, or given to `span_f1`) must follow it (`check_bio`). Predicted sequences are
read the way seqeval's default (non-strict, CoNLL `conlleval`) mode reads them (Ramshaw & Marcus 1995; seqeval
`get_entities`): an I-X after O, at the start, or after a tag of another type starts a new X entity; an entity
ends before O, before any B-, and before a tag of another type.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ..config import ConfigError, DataError
from ..jsonlines import json_objects
from .example_types import Example, TaskData, require_labelled, split_file

KGCLUE_TAGS = ["O", "B-SUBJ", "I-SUBJ"]
TAG_PATTERN = re.compile(r"O|[BI]-\S+")


# --- BIO ------------------------------------------------------------------------------------------------------


def _parse(tag: str) -> tuple[str, str]:
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise DataError(f"{tag!r} is not a BIO tag; write O, B-<type> or I-<type> (IOB2)")
    return (tag, "") if tag == "O" else (tag[0], tag[2:])


def bio_error(prev: str | None, tag: str) -> str | None:
    """Why `tag` cannot follow `prev` (None: at the start) in IOB2, or None when it can."""
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        return f"{tag!r} is not a BIO tag; write O, B-<type> or I-<type> (IOB2)"
    if not tag.startswith("I-"):
        return None
    after = "the sentence start" if prev is None else repr(prev)
    if prev is None or prev == "O" or prev[2:] != tag[2:]:
        return f"{tag!r} follows {after}; an I- tag must continue a B-/I- of its type (start it with B-{tag[2:]})"
    return None


def check_bio(tags: Sequence[str], where: str) -> None:
    """Raise DataError naming `where` (file:line or example id) and the position when `tags` breaks IOB2."""
    prev = None
    for i, tag in enumerate(tags):
        problem = bio_error(prev, tag)
        if problem:
            raise DataError(f"{where}: tag {i} {problem}")
        prev = tag


def spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Entities (type, start, end) of one sequence, `end` exclusive, read as seqeval's default mode reads them."""
    found = set()
    prev_kind, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        kind, type_ = _parse(tag)
        if prev_kind != "O" and (kind in ("B", "O") or type_ != prev_type):
            found.add((prev_type, begin, i))
        if kind == "B" or (kind == "I" and (prev_kind == "O" or type_ != prev_type)):
            begin = i
        prev_kind, prev_type = kind, type_
    return found


def span_f1(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> dict:
    """Micro precision/recall/F1 over exact entity matches (type, start, end) of all sequences, as seqeval's
    `f1_score` (default mode); 0.0 where a denominator is 0. Gold sequences are checked with `check_bio`.
    Also returns the counts: gold, predicted, correct."""
    if len(gold_seqs) != len(pred_seqs):
        raise ValueError(f"{len(gold_seqs)} gold sequences but {len(pred_seqs)} predicted ones; give one per example")
    gold, pred = set(), set()
    for i, (g, p) in enumerate(zip(gold_seqs, pred_seqs)):
        if len(g) != len(p):
            raise ValueError(f"sequence {i}: {len(g)} gold tags but {len(p)} predicted; give one tag per token")
        check_bio(g, f"gold sequence {i}")
        gold |= {(i, *s) for s in spans(g)}
        pred |= {(i, *s) for s in spans(p)}
    correct = len(gold & pred)
    precision = correct / len(pred) if pred else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "gold": len(gold),
        "predicted": len(pred),
        "correct": correct,
    }


def all_o_f1(gold_seqs: Sequence[Sequence[str]]) -> dict:
    """`span_f1` of the trivial tagger that predicts O everywhere (F1 0.0 whenever there are gold entities)."""
    return span_f1(gold_seqs, [["O"] * len(g) for g in gold_seqs])


def tag_sequences(labels, predictions, tags: Sequence[str], ignore: int = -100) -> tuple[list, list]:
    """(gold, predicted) tag-name sequences from [B, T] label ids and predicted ids (tensors or lists), keeping the
    positions whose label is not `ignore` (the first token of each word, `encoding.encode`).

    A gold I-X that no longer continues an X (its entity began inside the previous non-CJK word) becomes B-X.
    """
    labels = labels.tolist() if hasattr(labels, "tolist") else labels
    predictions = predictions.tolist() if hasattr(predictions, "tolist") else predictions
    gold_seqs, pred_seqs = [], []
    for row, pred in zip(labels, predictions):
        g = [tags[t] for t in row if t != ignore]
        gold_seqs.append([f"B-{t[2:]}" if bio_error(prev, t) else t for prev, t in zip([None, *g], g)])
        pred_seqs.append([tags[p] for t, p in zip(row, pred) if t != ignore])
    return gold_seqs, pred_seqs


def tag_ids(tags: Sequence[str], names: Sequence[str]) -> list[int]:
    index = {n: i for i, n in enumerate(names)}
    return [index[t] for t in tags]


# --- KgCLUE ---------------------------------------------------------------------------------------------------


def strip_disambiguation(entity: str) -> str:
    """The entity name without its trailing full-width `（…）` suffix (nested brackets included):
    '守望星光（韩玉玲、刘东考演唱歌曲）' -> '守望星光'; '完美（中国）有限公司' stays (the bracket is not a suffix)."""
    entity = entity.strip()
    if not entity.endswith("）"):
        return entity
    depth = 0
    for i in range(len(entity) - 1, -1, -1):
        depth += {"）": 1, "（": -1}.get(entity[i], 0)
        if depth == 0:
            return entity[:i].strip() or entity
    return entity  # unbalanced: keep as written


def longest_common_substring(text: str, other: str) -> tuple[int, int]:
    """(start in `text`, length) of the longest substring shared with `other`; the earliest in `text` on ties."""
    best = (0, 0)
    prev = [0] * (len(other) + 1)
    for i in range(1, len(text) + 1):
        cur = [0] * (len(other) + 1)
        for j in range(1, len(other) + 1):
            if text[i - 1] == other[j - 1]:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best[1]:
                    best = (i - cur[j], cur[j])
        prev = cur
    return best


def kgclue_mentions(rows: Sequence[dict], min_fallback: int = 2) -> tuple[list[Example], dict]:
    """Tagging examples of KgCLUE questions: the answer's subject (`answer.split('|||')[0]`, suffix `（…）`
    removed) tagged B-SUBJ/I-SUBJ (ids 1/2 of KGCLUE_TAGS) over the question's characters, others O.

    Located by its first exact occurrence; else the longest common substring of >= `min_fallback` characters.
    Questions with neither are dropped (all-O labels would teach the tagger to miss a subject that is there).
    stats: rows, exact, fallback, none, mention_rate ((exact + fallback) / rows), exact_rate, none_ids.
    """
    examples, stats = [], {"rows": len(rows), "exact": 0, "fallback": 0, "none": 0, "none_ids": []}
    for row in rows:
        question = row["question"]
        subject = strip_disambiguation(row["answer"].split("|||")[0])
        start, length = (question.find(subject), len(subject)) if subject else (-1, 0)
        how = "exact"
        if start < 0:
            start, length = longest_common_substring(question, subject)
            how = "fallback" if length >= min_fallback else "none"
        stats[how] += 1
        if how == "none":
            stats["none_ids"].append(row["id"])
            continue
        label = [0] * len(question)
        label[start : start + length] = [1] + [2] * (length - 1)
        examples.append(Example(row["id"], question, label=label))
    n = max(1, len(rows))
    stats["mention_rate"] = (stats["exact"] + stats["fallback"]) / n
    stats["exact_rate"] = stats["exact"] / n
    return examples, stats


def read_kgclue(path: str | Path) -> list[dict]:
    """Rows of a KgCLUE file ({"id", "question", "answer": "entity ||| attribute ||| value"} per line), checked;
    DataError naming file:line for a bad row and naming the file and count for rows without an answer."""
    path = Path(path)
    rows, unlabelled = [], 0
    for lineno, row in json_objects(path, '"id", "question" and "answer"'):
        where = f"{path}:{lineno}"
        if not isinstance(row.get("question"), str) or not row["question"]:
            raise DataError(f'{where}: a KgCLUE row needs "id", a non-empty "question" and "answer"')
        row.setdefault("id", lineno)
        if row.get("answer") is None:
            unlabelled += 1
            continue
        if not isinstance(row["answer"], str) or len(row["answer"].split("|||")) != 3:
            raise DataError(f"{where}: answer {row['answer']!r} is not 'entity ||| attribute ||| value'")
        rows.append(row)
    if unlabelled:
        raise DataError(f"{path}: {unlabelled} rows have no answer; NER training and evaluation need labelled rows")
    if not rows:
        raise DataError(f"{path} holds no rows; give a split with questions")
    return rows


def load_kgclue(data_dir: str | Path, train_split: str, eval_split: str) -> TaskData:
    """KgCLUE subject tagging: <data_dir>/<split>.json; mention statistics per split in `stats`."""
    splits, skipped, stats = [], {}, {}
    for split in (train_split, eval_split):
        examples, stats[split] = kgclue_mentions(read_kgclue(split_file(data_dir, split, (".json", ".jsonl"))))
        skipped[split] = stats[split]["none"]
        splits.append(examples)
    return TaskData("tagging", list(KGCLUE_TAGS), splits[0], splits[1], skipped=skipped, stats=stats)


# --- CoNLL ----------------------------------------------------------------------------------------------------


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2FA1F or 0xF900 <= cp <= 0xFAFF


def _merges(left: str, right: str) -> bool:
    """Whether `left` + `right` written together would read as one word (both sides non-CJK letters/digits)."""
    a, b = left[-1], right[0]
    return a.isalnum() and b.isalnum() and not _is_cjk(a) and not _is_cjk(b)


def join_tokens(tokens: Sequence[str], tags: Sequence[str]) -> tuple[str, list[str]]:
    """Text and per-character tags of a tagged token sequence. Tokens are joined directly, with one space where
    two would merge into one word ('New', 'York' -> 'New York'); a token's later characters continue its tag
    (B-X -> I-X); a space gets the next token's tag when that is an I- (inside an entity), else O."""
    text, char_tags = "", []
    for i, (token, tag) in enumerate(zip(tokens, tags)):
        if i and _merges(tokens[i - 1], token):
            text += " "
            char_tags.append(tag if tag.startswith("I-") else "O")
        text += token
        char_tags += [tag] + [tag if tag == "O" else f"I-{tag[2:]}"] * (len(token) - 1)
    return text, char_tags


def read_conll(path: str | Path) -> list[tuple[int, list[str], list[str]]]:
    """(first line, tokens, tags) per sentence: one token per line, its tag in the last column (CoNLL-2003's
    four columns read too), blank lines between sentences, -DOCSTART- lines skipped. Tags are checked with
    IOB2 rules; a break raises DataError naming file:line."""
    path = Path(path)
    sentences, tokens, tags, first = [], [], [], 0
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if tokens:
                    sentences.append((first, tokens, tags))
                tokens, tags = [], []
                continue
            if len(parts) < 2:
                raise DataError(f"{path}:{lineno}: {line.strip()!r} has no tag; write the token and its tag")
            problem = bio_error(tags[-1] if tags else None, parts[-1])
            if problem:
                raise DataError(f"{path}:{lineno}: {problem}")
            if not tokens:
                first = lineno
            tokens.append(parts[0])
            tags.append(parts[-1])
    if tokens:
        sentences.append((first, tokens, tags))
    if not sentences:
        raise DataError(f"{path} holds no sentences; write one token and tag per line")
    return sentences


def conll_tags(types: set[str]) -> list[str]:
    """ "O", then B-/I- of each entity type in sorted order."""
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in "BI"]


def load_conll(data_dir: str | Path, train_split: str, eval_split: str, labels: list[str] | None = None) -> TaskData:
    """CoNLL BIO files <data_dir>/<split>.txt or .conll; labels: the tag list (None: O and the B-/I- tags of the
    types seen in training). A tag outside the list raises DataError naming file:line."""
    paths = [split_file(data_dir, s, (".txt", ".conll")) for s in (train_split, eval_split)]
    read = [read_conll(p) for p in paths]
    if labels is None:
        labels = conll_tags({t[2:] for _, _, tags in read[0] for t in tags if t != "O"})
    elif "O" not in labels or any(bio_error(None, t.replace("I-", "B-", 1)) for t in labels):
        raise ConfigError(f"labels: {labels} must be BIO tags including 'O' (e.g. ['O', 'B-PER', 'I-PER'])")
    splits = []
    for path, sentences in zip(paths, read):
        examples = []
        for first, tokens, tags in sentences:
            for offset, tag in enumerate(tags):
                if tag not in labels:
                    raise DataError(f"{path}:{first + offset}: tag {tag!r} is not one of {labels}")
            text, char_tags = join_tokens(tokens, tags)
            examples.append(Example(f"{path.name}:{first}", text, label=tag_ids(char_tags, labels)))
        require_labelled(examples, path)
        splits.append(examples)
    return TaskData("tagging", list(labels), splits[0], splits[1], skipped={train_split: 0, eval_split: 0})
