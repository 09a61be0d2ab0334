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
    return spans_by_type_to_tokens(offsets, {"_": spans})["_"]


def spans_by_type_to_tokens(offsets: list[tuple[int, int]], spans: dict[str, list[tuple[int, int]]]) -> dict[str, list[tuple[int, int]]]:
    """char_spans_to_token_spans for several span lists at once (one vectorised search for all of them)."""
    out: dict[str, list[tuple[int, int]]] = {k: [] for k in spans}
    total = sum(len(v) for v in spans.values())
    if not offsets or not total:
        return out
    bounds = np.asarray(offsets, dtype=np.int64)  # [n_tokens, 2]
    flat = np.asarray([se for v in spans.values() for se in v], dtype=np.int64).reshape(-1, 2)  # [n_spans, 2]
    first = np.searchsorted(bounds[:, 1], flat[:, 0], side="right")  # first token ending after the span start
    last = np.searchsorted(bounds[:, 0], flat[:, 1], side="left")  # first token starting at/after the span end
    pairs = np.stack([first, last], axis=1).tolist()
    i = 0
    for key, v in spans.items():
        kept = out[key]
        for f, l in pairs[i : i + len(v)]:
            if f < l and (not kept or kept[-1] != (f, l)):
                kept.append((f, l))
        i += len(v)
    return out
