"""Lexical auxiliary-task labels: word boundary (B/I) or POS per token, from the corpus stage's segmenter.

The words come from `obert_lib.corpus.segmenter.default_segmenter()` (jieba's dictionary and HMMs in C,
the same output as rjieba.tag; the corpus stage's default annotator), so fine-tuning sees the words
pretraining's span masking saw. Labels are aligned to the tokens of the plain encoding
`tokenizer(texts, truncation=True, max_length=max_length, padding=True)` through the fast tokenizer's
character offsets: a token whose first character starts a word is B, any other I (Chinese characters
are one token each; a WordPiece continuation "##x" is I). POS: every token gets its word's tag id
(an index into `lexical_tag_names("pos")`). Special tokens and padding get -100.
"""

from __future__ import annotations

import array
import bisect

import torch

IGNORE_INDEX = -100
BOUNDARY_TAGS = ("B", "I")
KINDS = ("boundary", "pos")


def _segmenter(segmenter=None):
    if segmenter is not None:
        return segmenter
    from ..corpus.segmenter import default_segmenter

    return default_segmenter()


def lexical_tag_names(kind: str = "boundary", segmenter=None) -> list[str]:
    """Label id -> tag: ["B", "I"], or the segmenter's POS tags (jieba's; 65 with its stock dictionary)."""
    _check_kind(kind)
    return list(BOUNDARY_TAGS) if kind == "boundary" else list(_segmenter(segmenter).tag_names)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"lexical kind: {kind!r} is unknown; use one of {list(KINDS)}")


def words(text: str, segmenter=None) -> list[tuple[int, int, int]]:
    """[(char_start, char_end, tag_id)] of the segmenter's words; they tile `text`."""
    flat = array.array("i")
    flat.frombytes(_segmenter(segmenter).tag_offsets(text))
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 4)]


def _token_labels(offsets, special, spans: list[tuple[int, int, int]], kind: str) -> list[int]:
    """Labels of one sequence's tokens from their (start, end) char offsets and the text's word spans."""
    starts = [s for s, _, _ in spans]
    labels = []
    for (s, e), is_special in zip(offsets, special):
        if is_special or e <= s:
            labels.append(IGNORE_INDEX)
            continue
        w = bisect.bisect_right(starts, s) - 1  # the word holding the token's first character
        if kind == "boundary":
            labels.append(0 if starts[w] == s else 1)
        else:
            labels.append(spans[w][2])
    return labels


def lexical_labels(
    tokenizer,
    texts: list[str],
    max_length: int,
    kind: str = "boundary",
    pairs: list[str] | None = None,
    segmenter=None,
) -> torch.Tensor:
    """LongTensor [B, T] of lexical labels aligned with tokenizer(texts[, pairs], truncation=True,
    max_length=max_length, padding=True)'s input_ids: boundary 0 = B, 1 = I; pos = tag id; -100 for
    special tokens and padding. Needs a fast (Rust-backed) tokenizer for the character offsets."""
    _check_kind(kind)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("lexical labels need a fast tokenizer (character offsets); load it with use_fast=True")
    if pairs is not None and len(pairs) != len(texts):
        raise ValueError(f"lexical labels: {len(texts)} texts but {len(pairs)} pairs")
    seg = _segmenter(segmenter)
    enc = tokenizer(
        texts,
        pairs,
        truncation=True,
        max_length=max_length,
        padding=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    rows = []
    for i, text in enumerate(texts):
        seq_ids = enc.sequence_ids(i)  # 0 / 1: which text a token comes from; None: special or padding
        spans = (words(text, seg), words(pairs[i], seg) if pairs is not None else [])
        row = [IGNORE_INDEX] * len(seq_ids)
        for which in (0, 1):
            idx = [t for t, s in enumerate(seq_ids) if s == which]
            if not idx:
                continue
            labels = _token_labels(
                [enc["offset_mapping"][i][t] for t in idx],
                [enc["special_tokens_mask"][i][t] for t in idx],
                spans[which],
                kind,
            )
            for t, label in zip(idx, labels):
                row[t] = label
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)
