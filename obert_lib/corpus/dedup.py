"""Deduplication: exact (normalised hash), near (MinHash LSH over character shingles), paragraph level.

MinHash/LSH follows Broder (1997) and Leskovec et al., Mining of Massive Datasets, ch. 3.
"""
from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np

_NOT_WORD = re.compile(r"[\W_]+")
_MERSENNE = (1 << 31) - 1  # prime modulus: a*h+b with a,h < 2^32 stays below 2^63, no uint64 overflow


def normalised_hash(text: str) -> str:
    """Hash of the text with whitespace and punctuation removed and letters lower-cased."""
    return hashlib.sha1(_NOT_WORD.sub("", text).lower().encode("utf-8")).hexdigest()


def shingles(text: str, n: int) -> np.ndarray:
    """crc32 hashes of the distinct character n-grams of the punctuation-free text (uint64 array)."""
    clean = _NOT_WORD.sub("", text)
    if len(clean) < n:
        grams = {clean} if clean else set()
    else:
        grams = {clean[i : i + n] for i in range(len(clean) - n + 1)}
    return np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))


class MinHasher:
    """MinHash signatures with `num_perm` universal hash functions (a*h + b) mod (2^31 - 1)."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, _MERSENNE, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, _MERSENNE, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """Signature of a shingle-hash set: uint64 [num_perm]."""
        if hashes.size == 0:
            return np.full(self.num_perm, _MERSENNE, dtype=np.uint64)
        h = hashes % _MERSENNE
        # [num_perm, n_shingles] -> min over shingles
        return ((self.a[:, None] * h[None, :] + self.b[:, None]) % _MERSENNE).min(axis=1)


class NearDuplicateIndex:
    """LSH index: `bands` x `rows` signature bands; a candidate is a duplicate if estimated Jaccard >= threshold."""

    def __init__(self, num_perm: int = 128, bands: int = 16, threshold: float = 0.7, shingle_size: int = 5, seed: int = 1):
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be divisible by bands ({bands})")
        self.hasher = MinHasher(num_perm, seed)
        self.bands, self.rows = bands, num_perm // bands
        self.threshold, self.shingle_size = threshold, shingle_size
        self.buckets: list[dict[bytes, int]] = [dict() for _ in range(bands)]
        self.signatures: list[np.ndarray] = []

    def find_or_add(self, text: str) -> tuple[int | None, float]:
        """Return (index of a near-duplicate already indexed, its estimated Jaccard) or add `text` and return (None, 0)."""
        sig = self.hasher.signature(shingles(text, self.shingle_size))
        keys = [sig[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]
        for band, key in enumerate(keys):
            other = self.buckets[band].get(key)
            if other is not None:
                jaccard = float((self.signatures[other] == sig).mean())
                if jaccard >= self.threshold:
                    return other, jaccard
        idx = len(self.signatures)
        self.signatures.append(sig)
        for band, key in enumerate(keys):
            self.buckets[band].setdefault(key, idx)
        return None, 0.0
