"""What deduplication compares: exact keys and character shingles (the MinHash/LSH stages are datatrove's).

MinHash/LSH follows Broder (1997) and Leskovec et al., Mining of Massive Datasets, ch. 3.
"""
from __future__ import annotations

import re
import zlib

import numpy as np

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
