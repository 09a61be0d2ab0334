"""What deduplication compares: exact keys, paragraph keys and character shingles (the MinHash/LSH stages are
datatrove's, with CharMinhashSignature computing signatures over character shingles).

MinHash/LSH follows Broder (1997) and Leskovec et al., Mining of Massive Datasets, ch. 3.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.utils.word_tokenizers import WordTokenizer

_NOT_WORD = re.compile(r"[\W_]+")


def exact_dedup_key(doc) -> bytes:
    """A document's exact-duplicate key: text without whitespace/punctuation, lower-cased, UTF-8."""
    return _NOT_WORD.sub("", doc.text).lower().encode("utf-8")


def shingles(text: str, n: int) -> np.ndarray:
    """crc32 hashes of the distinct character n-grams of the punctuation-free text: uint64 [n_shingles]."""
    clean = _NOT_WORD.sub("", text)
    if len(clean) < n:
        grams = {clean} if clean else set()
    else:
        grams = {clean[i : i + n] for i in range(len(clean) - n + 1)}
    return np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))


def paragraph_dedup_key(doc, min_chars: int) -> bytes:
    """Exact-dedup key of a paragraph document: its text; short paragraphs get a unique key (never duplicates)."""
    text = doc.text if len(doc.text) >= min_chars else f"{doc.text}\x00{doc.id}"
    return text.encode("utf-8")


class CharacterShingles(WordTokenizer):
    """The word tokenizer CharMinhashSignature hands datatrove: none is needed, its shingles are characters.

    datatrove has no word tokenizer for Chinese without spaCy; get_shingles never calls this one.
    """

    def __init__(self):
        super().__init__("zh")

    def word_tokenize(self, text: str) -> list[str]:
        return list(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


class CharMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash stage 1 over character n-grams (Chinese has no spaces to make word n-grams)."""

    def __init__(self, output_folder, config, shingle_size: int = 5):
        super().__init__(output_folder, config=config, language=CharacterShingles())
        self.shingle_size = shingle_size

    def get_shingles(self, text: str) -> np.ndarray:
        return shingles(text, self.shingle_size).reshape((-1, 1))  # [n_shingles, 1] uint64
