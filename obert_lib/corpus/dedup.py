"""What deduplication compares: exact keys, paragraph keys, line keys and the MinHash signatures of character
shingles. dedup_index.py computes them for every cleaned document in one pass and decides, over the whole
corpus at once, what goes; kept_paragraphs.py applies the decisions.

MinHash/LSH follows Broder (1997) and Leskovec et al., Mining of Massive Datasets, ch. 3, with datatrove's hash
family and parameters (MinhashDedupSignature.get_signature): the C module _minhash computes the signatures;
`shingles` and `minhash_reference` here are its Python references (tests/corpus/test_dedup.py).
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import xxhash
from datatrove.utils.word_tokenizers import WordTokenizer

_NOT_WORD = re.compile(r"[\W_]+")
MERSENNE_61 = np.uint64((1 << 61) - 1)  # the modulus of datatrove's MinHash permutations, a*x + b mod 2**61 - 1
MINHASH_SEED = 1  # datatrove's MinhashConfig.seed: the same permutations as its MinHash steps draw
# Exact, paragraph and line keys: xxh64 as datatrove's HashConfig(precision=64, hash_fc="xxhash") hashes (tested).
# Made without HashConfig, whose check that xxhash is installed parses every distribution's metadata (0.1-0.2 s).
HASH64 = xxhash.xxh64_intdigest


def minhash_parameters(num_perm: int, seed: int = MINHASH_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of the num_perm permutations a*x + b mod 2**61 - 1, drawn as datatrove draws them:
    uint64 [num_perm] each."""
    gen = np.random.RandomState(seed)
    a = gen.randint(1, MERSENNE_61, dtype=np.uint64, size=(1, num_perm))
    b = gen.randint(0, MERSENNE_61, dtype=np.uint64, size=(1, num_perm))
    return np.ascontiguousarray(a[0]), np.ascontiguousarray(b[0])


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


def minhash_reference(text: str, n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The MinHash signature of `text` as datatrove's get_signature computes it: uint64 [num_perm], or None
    for a text without a word character (no shingle, no signature)."""
    grams = shingles(text, n)
    if not grams.size:
        return None
    return ((grams.reshape((-1, 1)) * a + b) % MERSENNE_61).min(axis=0)


class CharacterShingles(WordTokenizer):
    """The word tokenizer `obert bench preprocess` hands datatrove's stock MinhashDedupSignature: one token per
    character, so that its n-grams are character n-grams (datatrove has no Chinese tokenizer without spaCy)."""

    def __init__(self):
        super().__init__("zh")

    def word_tokenize(self, text: str) -> list[str]:
        return list(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]
