"""Examples -> model tensors for the four kinds of `examples.KINDS`, and the length check run before training.

- classification / pair: [CLS] text [SEP] (pair [SEP]); pairs truncated longest-first (BERT, Devlin et al. 2019).
- multiple_choice: every choice one sequence [CLS] choice [SEP]; a choice too long keeps the span where the
  choices differ (chid: the filled idiom) and cuts the shared context from both ends, evenly where it can.
- tagging: the text tokenised as usual; the first token of each word (every CJK character is a word of its
  own in BERT's Chinese vocabulary) carries the tag of the word's first character, later sub-tokens of a
  non-CJK word, [CLS], [SEP] and padding carry IGNORE_INDEX (transformers' token-classification convention).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..config import ConfigError, DataError
from .examples import KINDS, Example

IGNORE_INDEX = -100


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"kind: {kind!r} is not a task kind; use one of {list(KINDS)}")


def _class_labels(examples: Sequence[Example]) -> torch.Tensor | None:
    """Labels [B], or None when no example is labelled (prediction on a test split)."""
    missing = [e.id for e in examples if e.label is None]
    if len(missing) == len(examples):
        return None
    if missing:
        raise DataError(f"examples {missing[:5]} have no label while others do; label every row or none")
    return torch.tensor([int(e.label) for e in examples], dtype=torch.long)


def encode(
    kind: str, tokenizer, examples: Sequence[Example], max_length: int, pad_to_max_length: bool = False
) -> dict[str, torch.Tensor]:
    """A batch: input_ids, attention_mask, token_type_ids [B, T] ([B, C, T] for multiple_choice, with choice_mask
    [B, C], True for real choices), and labels ([B]; [B, T] for tagging) when the examples are labelled.

    T is the batch's longest sequence (max_length with `pad_to_max_length`), at most `max_length`. C is the most
    choices of an example; a padding choice is all [PAD] with attention on its first position only (so no
    attention row is fully masked, which gives NaN under SDPA) and choice_mask False: mask its score out.
    """
    _check_kind(kind)
    if not examples:
        raise ValueError("encode needs at least one example")
    padding = "max_length" if pad_to_max_length else "longest"
    if kind == "multiple_choice":
        return _encode_choices(tokenizer, examples, max_length, pad_to_max_length)
    if kind == "tagging":
        return _encode_tags(tokenizer, examples, max_length, padding)
    pairs = None
    if kind == "pair":
        pairs = [e.pair for e in examples]
        if any(p is None for p in pairs):
            raise DataError(f"example {examples[pairs.index(None)].id}: a pair task needs `pair` text in every example")
    enc = tokenizer(
        [e.text for e in examples],
        pairs,
        truncation="longest_first",
        max_length=max_length,
        padding=padding,
        return_token_type_ids=True,
        return_tensors="pt",
    )
    out = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    labels = _class_labels(examples)
    if labels is not None:
        out["labels"] = labels
    return out


def _window(ids: list[list[int]], budget: int) -> tuple[list[list[int]], bool]:
    """Cut every choice to `budget` tokens keeping the span where the choices differ; (ids, whether cut)."""
    if max(map(len, ids)) <= budget:
        return ids, False
    shortest = min(map(len, ids))
    prefix = 0
    while len(ids) > 1 and prefix < shortest and all(x[prefix] == ids[0][prefix] for x in ids):
        prefix += 1
    suffix = 0
    while len(ids) > 1 and prefix + suffix < shortest and all(x[-1 - suffix] == ids[0][-1 - suffix] for x in ids):
        suffix += 1
    middles = [x[prefix : len(x) - suffix] for x in ids]
    room = budget - max(map(len, middles))
    if room < 0:  # the differing spans alone are too long: keep their heads
        return [m[:budget] for m in middles], True
    left = min(prefix, max(room // 2, room - suffix))
    right = min(suffix, room - left)
    return [
        x[prefix - left : prefix] + m + x[len(x) - suffix : len(x) - suffix + right] for x, m in zip(ids, middles)
    ], True


def choice_ids(tokenizer, example: Example, max_length: int) -> tuple[list[list[int]], bool]:
    """Token ids of each choice with [CLS]/[SEP], each at most `max_length`, and whether any was cut."""
    if not example.choices:
        raise DataError(f"example {example.id}: a multiple-choice example needs a non-empty `choices` list")
    ids = [list(x) for x in tokenizer(list(example.choices), add_special_tokens=False)["input_ids"]]
    ids, cut = _window(ids, max_length - 2)
    return [[tokenizer.cls_token_id, *x, tokenizer.sep_token_id] for x in ids], cut


def _encode_choices(tokenizer, examples, max_length: int, pad_to_max_length: bool) -> dict[str, torch.Tensor]:
    per_example = [choice_ids(tokenizer, e, max_length)[0] for e in examples]
    B, C = len(examples), max(map(len, per_example))
    T = max_length if pad_to_max_length else max(len(x) for choices in per_example for x in choices)
    input_ids = torch.full((B, C, T), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((B, C, T), dtype=torch.long)
    attention_mask[:, :, 0] = 1  # padding choices too (see encode)
    choice_mask = torch.zeros((B, C), dtype=torch.bool)
    for b, choices in enumerate(per_example):
        for c, ids in enumerate(choices):
            input_ids[b, c, : len(ids)] = torch.tensor(ids)
            attention_mask[b, c, : len(ids)] = 1
            choice_mask[b, c] = True
    out = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": torch.zeros_like(input_ids),
        "choice_mask": choice_mask,
    }
    labels = _class_labels(examples)
    if labels is not None:
        for e in examples:
            if not 0 <= e.label < len(e.choices):
                raise DataError(f"example {e.id}: label {e.label} is not an index into its {len(e.choices)} choices")
        out["labels"] = labels
    return out


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            "tokenizer: tagging aligns tags through character offsets, which only fast (tokenizers-backed) "
            "tokenizers give; load the checkpoint's tokenizer.json"
        )


def _encode_tags(tokenizer, examples, max_length: int, padding: str) -> dict[str, torch.Tensor]:
    _require_fast(tokenizer)
    labelled = [e.label is not None for e in examples]
    if any(labelled) and not all(labelled):
        raise DataError("some tagging examples have labels and others not; label every row or none")
    for e in examples:
        if e.label is not None and len(e.label) != len(e.text):
            raise DataError(
                f"example {e.id}: {len(e.label)} tags for {len(e.text)} characters; give one tag per character"
            )
    enc = tokenizer(
        [e.text for e in examples],
        truncation=True,
        max_length=max_length,
        padding=padding,
        return_offsets_mapping=True,
        return_token_type_ids=True,
        return_tensors="pt",
    )
    out = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    if not all(labelled):
        return out
    labels = torch.full_like(enc["input_ids"], IGNORE_INDEX)
    for b, e in enumerate(examples):
        previous = None
        for t, word in enumerate(enc.word_ids(b)):
            if word is not None and word != previous:
                labels[b, t] = e.label[int(enc["offset_mapping"][b, t, 0])]
            previous = word
    out["labels"] = labels
    return out


def sequence_lengths(kind: str, tokenizer, examples: Sequence[Example]) -> list[int]:
    """Untruncated length in tokens, [CLS]/[SEP] included, of each example (its longest choice for multiple_choice)."""
    _check_kind(kind)
    if kind == "multiple_choice":
        return [max(map(len, choice_ids(tokenizer, e, 10**9)[0])) for e in examples]
    pairs = [e.pair or "" for e in examples] if kind == "pair" else None
    enc = tokenizer([e.text for e in examples], pairs, add_special_tokens=True, truncation=False)
    return [len(x) for x in enc["input_ids"]]


def check_lengths(
    kind: str, tokenizer, examples: Sequence[Example], max_length: int, max_positions: int | None
) -> dict:
    """Before training: ConfigError when `max_length` exceeds the model's positions (max_position_embeddings;
    None: no limit, e.g. relative positions) or cannot hold the special tokens. Longer texts are truncated by
    `encode`; returns {"examples", "truncated" (how many will be cut), "longest" (tokens, specials included)}."""
    _check_kind(kind)
    if max_positions is not None and max_length > max_positions:
        raise ConfigError(
            f"max_length: {max_length} tokens is more than the model's {max_positions} positions "
            f"(max_position_embeddings); use max_length <= {max_positions}"
        )
    least = 5 if kind == "pair" else 3
    if max_length < least:
        raise ConfigError(f"max_length: {max_length} cannot hold the special tokens and a text; use >= {least}")
    lengths = sequence_lengths(kind, tokenizer, examples) if examples else []
    return {
        "examples": len(lengths),
        "truncated": sum(n > max_length for n in lengths),
        "longest": max(lengths, default=0),
    }
