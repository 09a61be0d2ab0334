"""Cross-document boilerplate: paragraph lines found in many documents of the corpus (site furniture) go.

A menu, footer or disclaimer line of a site repeats on each of its pages; within one page it looks like text.
As CCNet (Wenzek et al. 2020) hashes normalised paragraphs across a shard to remove boilerplate, and C4
(Raffel et al. 2020) and RefinedWeb (Penedo et al. 2023) remove text repeated across documents, three steps
count each normalised line once per document over the whole corpus and drop every copy of a line found in at
least `min_documents` documents (reason `repeated_line`). The paragraph dedup, by contrast, keeps the first
copy of a repeated paragraph: a line that only a few documents share (a quotation) keeps one copy there.

1. LineDocumentHashes (per task, after the paragraph split): each document's distinct line hashes, sorted,
   to <folder>/<rank>.npy.
2. RepeatedLineCount (one task): the hashes found in >= min_documents documents, to <out>.
3. RepeatedLineFilter (per task, before annotation, after the paragraph dedup, whose index counts paragraphs by
   position): drops the paragraphs whose hash is among them. A repeat of a paragraph of at least
   dedup.min_paragraph_chars characters is by then gone as a duplicate_paragraph; repeated_line counts the
   rest: its first copy, and every copy of shorter lines.

The count holds 8 bytes per (document, distinct line) of the corpus in memory at once (np.unique): 1e9 such
pairs are 8 GB, so a corpus beyond that needs the count split by hash range first.
"""

from __future__ import annotations

import re
from pathlib import Path
from time import perf_counter

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.hashing import HashConfig, create_hash_func

from .step_stats import report_step_time

REASON = "repeated_line"
_NOT_WORD = re.compile(r"[\W_]+")
_DIGIT = re.compile(r"\d")
_HASH = create_hash_func(HashConfig(precision=64, hash_fc="xxhash"), bytes)


def line_key(text: str) -> str:
    """What makes two lines the same furniture: no whitespace or punctuation, lower case, every digit '0'
    (a footer's year and a view counter change from page to page)."""
    return _DIGIT.sub("0", _NOT_WORD.sub("", text).lower())


def line_hash(text: str) -> int | None:
    """The 64-bit hash of line_key(text); None for a line without letters or digits (nothing to count)."""
    key = line_key(text)
    return _HASH(key.encode("utf-8")) if key else None


def _rank_file(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"{rank:05d}.npy"


class LineDocumentHashes(PipelineStep):
    """Write each document's distinct line hashes (paragraph documents, grouped by doc_id) for the count."""

    name = "line document hashes"
    type = "🫂 - DEDUP"

    def __init__(self, output_folder: str):
        super().__init__()
        self.output_folder = output_folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        hashes: list[int] = []
        current, seen = None, set()
        for doc in data:
            doc_id = doc.metadata.get("doc_id", doc.id)
            if doc_id != current:  # ParagraphSplit yields a document's paragraphs one after another
                hashes.extend(seen)
                current, seen = doc_id, set()
            h = line_hash(doc.text)
            if h is not None:
                seen.add(h)
            yield doc
        hashes.extend(seen)
        out = _rank_file(self.output_folder, rank)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, np.sort(np.array(hashes, dtype=np.uint64)))


def repeated_hashes(folder: str | Path, min_documents: int) -> np.ndarray:
    """The sorted line hashes found in at least `min_documents` documents, from LineDocumentHashes' files."""
    parts = [np.load(f) for f in sorted(Path(folder).glob("*.npy"))]
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    values, counts = np.unique(np.concatenate(parts), return_counts=True)
    return values[counts >= min_documents]


class RepeatedLineCount(PipelineStep):
    """Count the lines of all tasks by documents; save the repeated ones' hashes (one task)."""

    name = "repeated line count"
    type = "🫂 - DEDUP"

    def __init__(self, input_folder: str, output_file: str, min_documents: int):
        super().__init__()
        self.input_folder, self.output_file, self.min_documents = input_folder, output_file, min_documents

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        repeated = repeated_hashes(self.input_folder, self.min_documents)
        Path(self.output_file).parent.mkdir(parents=True, exist_ok=True)
        np.save(self.output_file, repeated)
        self.stat_update("repeated_lines_found", value=len(repeated))
        if data:
            yield from data


class RepeatedLineFilter(PipelineStep):
    """Drop paragraph documents whose line is among the repeated ones; counted as line_removed_repeated_line."""

    name = "repeated lines"
    type = "🫂 - DEDUP"

    def __init__(self, repeated_file: str):
        super().__init__()
        self.repeated_file = repeated_file

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        repeated = np.load(self.repeated_file)
        removed = 0
        spent = 0.0
        for doc in data:
            start = perf_counter()
            h = line_hash(doc.text)
            hit = False
            if h is not None and len(repeated):
                i = int(np.searchsorted(repeated, np.uint64(h)))
                hit = i < len(repeated) and int(repeated[i]) == h
            spent += perf_counter() - start
            if hit:
                removed += 1
                continue
            yield doc
        if removed:
            self.stat_update(f"line_removed_{REASON}", value=removed)
        report_step_time(self, spent)
