"""Deduplication as one pass over the corpus and one decision over all of it.

1. DedupSignatures (clean stage, right after the writer of the cleaned documents): for each document in the
   order written, its exact-key hash, its MinHash band keys (C, _minhash), and for each paragraph the split
   will make, the hash of its text and of its line key; to <folder>/<rank>.npz.
2. DedupDecisions (one task): reads every task's file in rank order (= input order: one task per input file)
   and decides, in this order (each on what the one before kept):
   - exact_duplicate: a later copy of an exact key (dedup.exact_dedup_key); the first copy stays;
   - near_duplicate: MinHash LSH (Leskovec et al., MMDS ch. 3): two documents whose band keys agree in any
     band are joined; of each connected group the earliest document stays (datatrove's clustering keeps one
     per cluster too);
   - duplicate_paragraph: a later copy of a paragraph of at least dedup.min_paragraph_chars characters;
   - repeated_line: every paragraph whose line key is in >= dedup.repeated_line_min_documents kept documents
     (boilerplate.py says why), when dedup.repeated_lines is on.
   To <out>/<rank>.npz; kept_paragraphs.KeptParagraphs applies them in the annotate stage.

The corpus itself is written once (cleaned) and read once more (annotate); the decision reads only hashes.
Its one task holds 8·(2 + bands) bytes per document and about 40 per paragraph: 10^8 documents of 5
paragraphs are about 35 GB, so a corpus beyond that needs the decision split by hash range first.
"""

from __future__ import annotations

from pathlib import Path
from time import perf_counter

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from .boilerplate import line_key
from .dedup import HASH64, exact_dedup_key, minhash_parameters
from .step_stats import report_step_time

KEEP, EXACT, NEAR = 0, 1, 2  # document decisions (doc_reason)
DUPLICATE_PARAGRAPH, REPEATED_LINE = 1, 2  # paragraph decisions (para_reason)
DOC_REASONS = {EXACT: "exact_duplicate", NEAR: "near_duplicate"}
PARAGRAPH_REASONS = {DUPLICATE_PARAGRAPH: "duplicate_paragraph", REPEATED_LINE: "repeated_line"}
BATCH_DOCUMENTS = 1024  # documents per call of the C MinHash: amortises the call, keeps the batch's texts small


def rank_file(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"{rank:05d}.npz"


def paragraph_key(doc_index: int, paragraph: int) -> int:
    """One int64 naming a paragraph of a task: its document's position in the task's output, its line index."""
    return (doc_index << 32) | paragraph


class DedupSignatures(PipelineStep):
    """Hash every document and paragraph for DedupDecisions; passes the documents on unchanged.

    split_min_chars: the paragraph split's minimum (CorpusConfig.min_paragraph_chars): only the paragraphs the
    split keeps are hashed, under their index in text.split("\\n"), as paragraphs.ParagraphSplit names them.
    """

    name = "dedup signatures"
    type = "🫂 - DEDUP"

    def __init__(self, output_folder: str, dedup, split_min_chars: int):
        super().__init__()
        self.output_folder, self.dedup, self.split_min_chars = output_folder, dedup, split_min_chars

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from ._minhash import bands

        d, spent = self.dedup, 0.0
        a, b = minhash_parameters(d.num_perm)
        exact: list[int] = []
        documents = 0
        band_parts, has_parts, texts = [], [], []
        para_doc, para_idx, para_hash, para_dedup, line_hash, line_has = [], [], [], [], [], []

        def flush():
            keys, has = bands(texts, d.shingle_size, a, b, d.bands)
            band_parts.append(np.frombuffer(keys, dtype=np.uint64).reshape((-1, d.bands)))
            has_parts.append(np.frombuffer(has, dtype=np.uint8))
            texts.clear()

        for i, doc in enumerate(data):
            start = perf_counter()
            documents += 1
            text = doc.text
            if d.exact:
                exact.append(HASH64(exact_dedup_key(doc)))
            if d.near:
                texts.append(text)
                if len(texts) == BATCH_DOCUMENTS:
                    flush()
            if d.paragraphs or d.repeated_lines:
                for j, para in enumerate(text.split("\n")):
                    if len(para) < self.split_min_chars:
                        continue
                    para_doc.append(i)
                    para_idx.append(j)
                    para_dedup.append(len(para) >= d.min_paragraph_chars)
                    para_hash.append(HASH64(para.encode("utf-8")) if d.paragraphs else 0)
                    key = line_key(para) if d.repeated_lines else ""
                    line_has.append(bool(key))
                    line_hash.append(HASH64(key.encode("utf-8")) if key else 0)
            spent += perf_counter() - start
            yield doc
        start = perf_counter()
        if texts:
            flush()
        out = rank_file(self.output_folder, rank)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            out,
            documents=np.array(documents, dtype=np.int64),
            exact=np.array(exact, dtype=np.uint64),
            bands=np.concatenate(band_parts) if band_parts else np.zeros((0, d.bands), np.uint64),
            has_sig=np.concatenate(has_parts).astype(bool) if has_parts else np.zeros(0, bool),
            para_doc=np.array(para_doc, dtype=np.int64),
            para_idx=np.array(para_idx, dtype=np.int64),
            para_hash=np.array(para_hash, dtype=np.uint64),
            para_dedup=np.array(para_dedup, dtype=bool),
            line_hash=np.array(line_hash, dtype=np.uint64),
            line_has=np.array(line_has, dtype=bool),
        )
        if documents:
            self.stat_update("documents_hashed", value=documents)
        report_step_time(self, spent + perf_counter() - start)


def first_copies(keys: np.ndarray) -> np.ndarray:
    """True where keys[i] occurs for the first time (the order of `keys` is the corpus order): bool [n]."""
    first = np.zeros(len(keys), dtype=bool)
    if len(keys):
        first[np.unique(keys, return_index=True)[1]] = True
    return first


def lsh_edges(bands: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (earliest document of a band bucket, another document in it), over every band: int64 [edges] twice.

    bands: uint64 [documents, bands] band keys; eligible: bool [documents], the documents that take part.
    """
    idx = np.flatnonzero(eligible)
    us, vs = [], []
    for b in range(bands.shape[1]):
        keys = bands[idx, b]
        order = np.argsort(keys, kind="stable")  # stable: within a bucket the documents stay in corpus order
        sorted_keys, members = keys[order], idx[order]
        starts = np.ones(len(sorted_keys), dtype=bool)
        starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
        leader = members[np.maximum.accumulate(np.where(starts, np.arange(len(members)), 0))]
        pair = members != leader
        us.append(leader[pair])
        vs.append(members[pair])
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(us) if us else empty), (np.concatenate(vs) if vs else empty)


def component_minimum(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each of n nodes, the smallest node of its connected component under edges (u, v): int64 [n].

    Union by hooking the larger root under the smaller, then pointer jumping, until every edge joins equal labels
    (a few rounds: each halves the distance to the root)."""
    labels = np.arange(n, dtype=np.int64)
    while len(u):
        lu, lv = labels[u], labels[v]
        if (lu == lv).all():
            break
        low = np.minimum(lu, lv)
        np.minimum.at(labels, lu, low)
        np.minimum.at(labels, lv, low)
        while True:
            jumped = labels[labels]
            if (jumped == labels).all():
                break
            labels = jumped
    return labels


def decide(parts: list[dict], dedup) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]], dict]:
    """The decisions for every task from their signatures (in rank order): per task the document reasons
    (int8 [documents]: KEEP, EXACT or NEAR) and the dropped paragraphs (sorted paragraph_key int64 [k], reason
    int8 [k]); and the counts."""
    offsets = np.concatenate([[0], np.cumsum([int(p["documents"]) for p in parts])]).astype(np.int64)
    n = int(offsets[-1])
    reason = np.zeros(n, dtype=np.int8)
    if dedup.exact:
        reason[~first_copies(np.concatenate([p["exact"] for p in parts]) if parts else np.zeros(0, np.uint64))] = EXACT
    if dedup.near and n:
        eligible = np.concatenate([p["has_sig"] for p in parts]) & (reason == KEEP)
        u, v = lsh_edges(np.concatenate([p["bands"] for p in parts]), eligible)
        reason[eligible & (component_minimum(n, u, v) != np.arange(n))] = NEAR
    counts = {"exact_duplicates": int((reason == EXACT).sum()), "near_duplicates": int((reason == NEAR).sum())}
    para_doc = np.concatenate([p["para_doc"] + offsets[r] for r, p in enumerate(parts)]) if parts else np.zeros(0)
    para_doc = para_doc.astype(np.int64)
    para_reason = np.zeros(len(para_doc), dtype=np.int8)
    kept = reason[para_doc] == KEEP if len(para_doc) else np.zeros(0, bool)
    if dedup.paragraphs and len(para_doc):
        candidates = np.flatnonzero(kept & np.concatenate([p["para_dedup"] for p in parts]))
        hashes = np.concatenate([p["para_hash"] for p in parts])[candidates]
        para_reason[candidates[~first_copies(hashes)]] = DUPLICATE_PARAGRAPH
    repeated = np.zeros(0, dtype=np.uint64)
    if dedup.repeated_lines and len(para_doc):
        lines = np.concatenate([p["line_hash"] for p in parts])
        counted = np.flatnonzero(kept & np.concatenate([p["line_has"] for p in parts]))
        per_document = np.unique(np.stack([para_doc[counted].astype(np.uint64), lines[counted]], axis=1), axis=0)
        values, documents = np.unique(per_document[:, 1], return_counts=True)
        repeated = values[documents >= dedup.repeated_line_min_documents]
        hit = np.zeros(len(para_doc), dtype=bool)
        hit[counted] = np.isin(lines[counted], repeated)
        para_reason[hit & (para_reason == KEEP)] = REPEATED_LINE
    counts.update(
        duplicate_paragraphs=int((para_reason == DUPLICATE_PARAGRAPH).sum()),
        repeated_lines_found=len(repeated),
        repeated_line_paragraphs=int((para_reason == REPEATED_LINE).sum()),
    )
    doc_reasons, para_drops, start = [], [], 0
    for r, p in enumerate(parts):
        doc_reasons.append(reason[offsets[r] : offsets[r + 1]])
        count = len(p["para_doc"])
        mine = para_reason[start : start + count]
        dropped = np.flatnonzero(mine)
        keys = (p["para_doc"][dropped].astype(np.int64) << 32) | p["para_idx"][dropped].astype(np.int64)
        para_drops.append((keys, mine[dropped]))  # already sorted: documents and their paragraphs in order
        start += count
    return doc_reasons, para_drops, counts


class DedupDecisions(PipelineStep):
    """One task: every task's signatures in, every task's decisions out (module docstring)."""

    name = "dedup decisions"
    type = "🫂 - DEDUP"

    def __init__(self, input_folder: str, output_folder: str, tasks: int, dedup):
        super().__init__()
        self.input_folder, self.output_folder, self.tasks, self.dedup = input_folder, output_folder, tasks, dedup

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.track_time():
            parts = []
            for r in range(self.tasks):  # a task that kept no document wrote a file of empty arrays
                with np.load(rank_file(self.input_folder, r)) as f:
                    parts.append({k: f[k] for k in f.files})
            doc_reasons, para_drops, counts = decide(parts, self.dedup)
            for r in range(self.tasks):
                out = rank_file(self.output_folder, r)
                out.parent.mkdir(parents=True, exist_ok=True)
                np.savez(out, doc_reason=doc_reasons[r], para_key=para_drops[r][0], para_reason=para_drops[r][1])
            for label, value in counts.items():
                if value:
                    self.stat_update(label, value=value)
        if data:
            yield from data
