"""Auxiliary tasks any corpus provides, built from the shards themselves, so they need no labelled data.

same_document (SameDocumentPairs): do two paragraphs come from the same document? The document-level relative
of BERT's next-sentence prediction (Devlin et al. 2019), from the shards' `doc_id` column. Each example takes an
anchor paragraph (of a document with two or more paragraphs) and, with probability 1/2, another paragraph of the
same document (label 1), else a paragraph of another document (label 0).

sentence_order (SentenceOrderPairs): ALBERT's sentence-order prediction (Lan et al. 2020). Each example is two
consecutive segments of one document, in their original order (label 1) or swapped (label 0), with probability
1/2 each; both segments always come from the same document, so topic cannot give the answer away (ALBERT's
point against next-sentence prediction). A segment is a sentence of the shards' `sentence_spans` (token spans
of `input_ids`), or a whole paragraph where a row has no sentence spans; a document's segments run in paragraph
order, so the last sentence of a paragraph and the first of the next are consecutive too.

Every draw comes from the generator the caller passes, one per micro-batch (data.py), so a batch is a
function of its index: resumable exactly.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from ..config import DataError


class SameDocumentPairs:
    """Anchor paragraphs and their partners from corpus rows (`doc_id`, `input_ids`)."""

    def __init__(self, rows: Sequence[dict[str, Any]]):
        docs: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            docs[row["doc_id"]].append(i)
        self.rows = rows
        self.doc_of = [row["doc_id"] for row in rows]
        self.docs = dict(docs)
        self.anchors = np.array([i for i, row in enumerate(rows) if len(docs[row["doc_id"]]) >= 2], dtype=np.int64)
        if len(self.anchors) == 0 or len(self.docs) < 2:
            raise DataError(
                f"aux task same_document: the corpus has {len(self.docs)} documents and {len(self.anchors)} "
                "paragraphs in documents of two or more paragraphs; it needs two documents and one such "
                "paragraph: use a corpus of multi-paragraph documents, or a pairs task"
            )

    def __len__(self) -> int:
        return len(self.anchors)

    def examples(self, positions: Sequence[int], rng: np.random.Generator) -> tuple[list, list[int]]:
        """(token-id pairs, labels) for anchors at `positions` (indices into `anchors`), drawn with `rng`."""
        ids, labels = [], []
        n = len(self.rows)
        for pos in positions:
            anchor = int(self.anchors[pos])
            doc = self.doc_of[anchor]
            label = int(rng.integers(2))
            if label:
                others = [i for i in self.docs[doc] if i != anchor]
                partner = others[int(rng.integers(len(others)))]
            else:
                partner = int(rng.integers(n))
                while self.doc_of[partner] == doc:  # ends: another document exists; each draw is in rng's stream
                    partner = int(rng.integers(n))
            ids.append((self.rows[anchor]["input_ids"], self.rows[partner]["input_ids"]))
            labels.append(label)
        return ids, labels


class SentenceOrderPairs:
    """Consecutive segment pairs of one document from corpus rows (`doc_id`, `input_ids`, optionally `paragraph`
    and `sentence_spans`); `pairs[k]` = (row, start, end) of the first segment, then of the second."""

    def __init__(self, rows: Sequence[dict[str, Any]]):
        docs: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            docs[row["doc_id"]].append(i)
        pairs = []
        for members in docs.values():  # documents in order of first appearance
            members = sorted(members, key=lambda i: rows[i].get("paragraph") or 0)  # stable: row order breaks ties
            segments = [seg for i in members for seg in _segments(i, rows[i])]
            pairs += [(*a, *b) for a, b in zip(segments, segments[1:])]
        self.rows = rows
        self.pairs = np.array(pairs, dtype=np.int64).reshape(-1, 6)
        if len(self.pairs) == 0:
            raise DataError(
                f"aux task sentence_order: none of the corpus's {len(docs)} documents has two consecutive "
                "sentences (sentence_spans) or paragraphs; it needs one: use a corpus of multi-sentence "
                "paragraphs or multi-paragraph documents, or another task"
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def examples(self, positions: Sequence[int], rng: np.random.Generator) -> tuple[list, list[int]]:
        """(token-id pairs, labels) for the pairs at `positions`: one draw of `rng` each, 1 = in order, 0 = swapped."""
        ids, labels = [], []
        for pos in positions:
            ra, sa, ea, rb, sb, eb = (int(v) for v in self.pairs[pos])
            first, second = self.rows[ra]["input_ids"][sa:ea], self.rows[rb]["input_ids"][sb:eb]
            label = int(rng.integers(2))
            ids.append((first, second) if label else (second, first))
            labels.append(label)
        return ids, labels


def _segments(index: int, row: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(row, start, end) of each non-empty sentence of a row, or of the whole paragraph without sentence spans."""
    n = len(row["input_ids"])
    spans = [(max(0, int(s)), min(n, int(e))) for s, e in (row.get("sentence_spans") or [])]
    spans = [(s, e) for s, e in spans if e > s]
    if not spans:
        return [(index, 0, n)] if n else []
    return [(index, s, e) for s, e in spans]
