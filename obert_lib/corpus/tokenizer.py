"""WordPiece tokenizer (given vocab or trained on the corpus) and character-span -> token-span mapping."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizer

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _wrap(backend: BertWordPieceTokenizer) -> BertTokenizer:
    return BertTokenizer(tokenizer_object=backend._tokenizer)


def load_vocab_tokenizer(vocab_file: str | Path) -> BertTokenizer:
    """A BERT WordPiece tokenizer over an existing vocab.txt (e.g. the 21,128-token Chinese BERT one)."""
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer.vocab_file: {path} does not exist; give a BERT vocab.txt or null to train one")
    return _wrap(BertWordPieceTokenizer(str(path), handle_chinese_chars=True, strip_accents=False, lowercase=True))


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 1) -> BertTokenizer:
    """Train a WordPiece vocab (CJK characters split one per token, as in Chinese BERT) on `texts`."""
    backend = BertWordPieceTokenizer(handle_chinese_chars=True, strip_accents=False, lowercase=True)
    backend.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=min_frequency,
                                special_tokens=SPECIAL_TOKENS, show_progress=False)
    return _wrap(backend)


def char_spans_to_token_spans(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Map [start, end) character spans to [start, end) token spans covering every token they touch.

    offsets: per-token (char_start, char_end) without special tokens. A span touching no token
    (e.g. only spaces) is dropped; adjacent duplicates are merged away.
    """
    if not offsets:
        return []
    starts = np.array([s for s, _ in offsets])  # [n_tokens]
    ends = np.array([e for _, e in offsets])  # [n_tokens]
    out: list[tuple[int, int]] = []
    for cs, ce in spans:
        first = int(np.searchsorted(ends, cs, side="right"))  # first token ending after cs
        last = int(np.searchsorted(starts, ce, side="left"))  # first token starting at/after ce
        if first < last and (not out or out[-1] != (first, last)):
            out.append((first, last))
    return out
