"""An auxiliary task any corpus provides: do two paragraphs come from the same document?

The document-level relative of BERT's next-sentence prediction (Devlin et al. 2019), built from the corpus
shards' `doc_id` column, so it needs no labelled data. Each example takes an anchor paragraph (of a
document with two or more paragraphs) and, with probability 1/2, another paragraph of the same document
(label 1), else a paragraph of another document (label 0). Every draw comes from the generator the caller
passes, one per micro-batch (data.py), so a batch is a function of its index: resumable exactly.
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
