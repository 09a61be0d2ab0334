"""What deduplication compares: exact keys, paragraph keys and character shingles (the MinHash/LSH stages are
datatrove's, with CharMinhashSignature computing signatures over character shingles, many documents per numpy
call, and SortedMinhashBuckets pairing equal signatures by one sort; both write datatrove's files byte for byte).

MinHash/LSH follows Broder (1997) and Leskovec et al., Mining of Massive Datasets, ch. 3.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.dedup.minhash import MinhashDedupBuckets, MinhashDedupSignature
from datatrove.utils.typeshelper import StatHints
from datatrove.utils.word_tokenizers import WordTokenizer

_NOT_WORD = re.compile(r"[\W_]+")
MERSENNE_61 = np.uint64((1 << 61) - 1)  # the modulus of datatrove's MinHash permutations, a*x + b mod 2**61 - 1
_SHIFT_61 = np.uint64(61)
# Shingles whose signatures are computed at once: the [shingles, 128 hashes] uint64 products take 4 MB, which stay
# in the CPU caches across the five passes over them; 32 MB batches took twice as long, 1,024 no less (measured).
BATCH_SHINGLES = 1 << 12


def mod_mersenne_61(x: np.ndarray) -> np.ndarray:
    """x % (2**61 - 1) in place, for uint64 x: x = hi * 2**61 + lo is hi + lo modulo 2**61 - 1, and hi + lo is
    below twice the modulus, so one subtraction is left. Three times faster than numpy's uint64 `%`."""
    hi = x >> _SHIFT_61
    x &= MERSENNE_61
    x += hi
    np.subtract(x, MERSENNE_61, out=x, where=x >= MERSENNE_61)
    return x


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
    """datatrove's MinHash stage 1 over character n-grams (Chinese has no spaces to make word n-grams).

    run() writes the same bucket files as datatrove's (tests/corpus/test_dedup.py compares them byte for byte),
    but computes the signatures of many documents in one numpy call and writes each bucket's records of a batch
    in one write: datatrove's run makes about 20 numpy calls and 16 struct.pack calls per document, which took
    most of the MinHash time on FewCLUE's 75-character documents. skip_existing_sigs is not supported (the
    corpus stage never sets it; datatrove's executor skips completed tasks).
    """

    def __init__(self, output_folder, config, shingle_size: int = 5):
        super().__init__(output_folder, config=config, language=CharacterShingles())
        self.shingle_size = shingle_size

    def get_shingles(self, text: str) -> np.ndarray:
        return shingles(text, self.shingle_size).reshape((-1, 1))  # [n_shingles, 1] uint64

    def record_dtype(self) -> np.dtype:
        """One bucket record as datatrove packs it: hashes_per_bucket hashes, then the document's index (uint32)."""
        fmt, per = self.config.hash_config.struct_format, self.config.hashes_per_bucket
        return np.dtype([(f"field{i + 1}", f"<{fmt}") for i in range(per)] + [(f"field{per + 1}", "<I")])

    def batch_signatures(self, grams: list[np.ndarray]) -> np.ndarray:
        """The signatures of several documents' shingles (each non-empty, uint64): [documents, num_hashes], as
        datatrove's get_signature computes them one document at a time."""
        a, b = self.parameters
        counts = np.fromiter((g.size for g in grams), dtype=np.int64, count=len(grams))
        starts = np.zeros(len(grams), dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        phv = np.multiply(np.concatenate(grams).reshape((-1, 1)), a)  # uint64 products wrap, as datatrove's do
        phv += b
        mod_mersenne_61(phv)
        if self.config.hash_config.precision == 32:
            np.bitwise_and(phv, self.config.hash_config.max, out=phv)
        return np.minimum.reduceat(phv, starts, axis=0).astype(self.config.hash_config.np_dtype)

    def write_batch(self, buckets: list, grams: list[np.ndarray], doc_idx: list[int]) -> None:
        """Append the records of one batch of documents to each bucket file."""
        sig = self.batch_signatures(grams)
        dtype, per = self.record_dtype(), self.config.hashes_per_bucket
        for bi, bucket in enumerate(buckets):
            records = np.empty(len(doc_idx), dtype=dtype)
            for i in range(per):
                records[f"field{i + 1}"] = sig[:, bi * per + i]
            records[f"field{per + 1}"] = doc_idx
            bucket.write(records.tobytes())

    def sort_bucket_files(self, rank: int) -> None:
        """Sort each bucket file's records, as datatrove's run does after writing them (MinhashDedupBuckets merges
        the sorted files)."""
        dtype = self.record_dtype()
        for bi in range(self.config.num_buckets):
            path = f"bucket_{bi:03d}/{rank:05d}.minhash.sig"
            with self.output_folder.open(path, mode="rb") as fi:
                records = np.frombuffer(fi.read(), dtype=dtype).copy()
            records.sort(order=dtype.names)
            with self.output_folder.open(path, mode="wb") as fo:
                fo.write(records.tobytes())

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1):
        with self.track_time():
            buckets = [
                self.output_folder.open(f"bucket_{bi:03d}/{rank:05d}.minhash.sig", mode="wb")
                for bi in range(self.config.num_buckets)
            ]
            grams, doc_idx, pending, total = [], [], 0, 0
            for idx, doc in enumerate(data):
                total += 1
                g = shingles(doc.text, self.shingle_size)
                if g.size:  # a document without shingles has no signature, as in datatrove
                    grams.append(g)
                    doc_idx.append(idx)
                    pending += g.size
                    if pending >= BATCH_SHINGLES:
                        self.write_batch(buckets, grams, doc_idx)
                        grams, doc_idx, pending = [], [], 0
            if grams:
                self.write_batch(buckets, grams, doc_idx)
            for bucket in buckets:
                bucket.close()
            if total:
                self.stat_update(StatHints.total, value=total)
            self.sort_bucket_files(rank)


class SortedMinhashBuckets(MinhashDedupBuckets):
    """datatrove's MinHash stage 2 for one task per bucket and no index, with one numpy sort instead of a heap merge.

    datatrove merges the bucket's sorted files record by record in Python (a heap of dataclasses), which took
    longer than computing the signatures. Here all records of the bucket are read at once and sorted by
    (signature, file, document), the order of datatrove's merge, and every record equal in signature to the one
    before it is written as the pair (earlier file, earlier document, file, document): the same `.dups` file,
    byte for byte (tests/corpus/test_dedup.py). Other setups (several tasks per bucket, an index) run
    datatrove's own run.
    """

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1):
        if world_size != self.config.num_buckets or self.index_folder or self.create_index_name:
            return super().run(data, rank, world_size)
        assert data is None, "You should not use an input block before MinhashDedupBuckets"
        with self.track_time():
            per = self.config.hashes_per_bucket
            dtype = np.dtype(
                [(f"field{i + 1}", f"<{self.config.hash_config.struct_format}") for i in range(per)]
                + [(f"field{per + 1}", "<I")]
            )
            files = self.input_folder.list_files(subdirectory=f"bucket_{rank:03d}")
            parts, stems = [], []
            for name in files:
                with self.input_folder.open(name, mode="rb") as f:
                    parts.append(np.frombuffer(f.read(), dtype=dtype))
                stems.append(np.full(len(parts[-1]), int(Path(name).name.removesuffix(".minhash.sig")), np.uint32))
            records = np.concatenate(parts) if parts else np.empty(0, dtype)
            file_stem = np.concatenate(stems) if stems else np.empty(0, np.uint32)
            doc = records[f"field{per + 1}"]
            keys = [doc, np.repeat(np.arange(len(parts)), [len(p) for p in parts])]
            keys += [records[f"field{i + 1}"] for i in reversed(range(per))]
            order = np.lexsort(keys)  # the last key sorts first: signature, then file, then document
            sig = np.stack([records[f"field{i + 1}"][order] for i in range(per)], axis=1)
            same = (sig[1:] == sig[:-1]).all(axis=1) if len(sig) else np.zeros(0, bool)
            first, second = order[:-1][same], order[1:][same]
            pairs = np.stack([file_stem[first], doc[first], file_stem[second], doc[second]], axis=1).astype("<u4")
            with self.output_folder.open(f"{rank:05d}_00.dups", mode="wb") as out:
                out.write(pairs.tobytes())
            if len(pairs):
                self.stat_update("total_matches", value=len(pairs))
