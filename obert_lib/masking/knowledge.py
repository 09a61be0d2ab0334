"""Knowledge segments for knowledge-enhanced masking: tokenised summaries of linked knowledge-base entries.

OBERT (like ERNIE 3.0 and REALM) appends what the knowledge base says about the entities in a
paragraph as a second segment, `[CLS] context [SEP] K_w [SEP]` with token type 1, and masks only the
context, so the model learns to use the knowledge to recover masked context tokens.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..corpus.annotate import KnowledgeEntry, load_knowledge_base


class KnowledgeSegments:
    """Entity id -> summary token ids ([L]); builds the K_w segment of a row within a token budget."""

    def __init__(self, entries: list[KnowledgeEntry], tokenizer):
        texts = [e.summary or e.description for e in entries]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        self.summary_ids = {e.id: np.asarray(ids, dtype=np.int64) for e, ids in zip(entries, encoded)}
        self.names = {e.id: e.name for e in entries}

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path, tokenizer) -> "KnowledgeSegments":
        """The knowledge base a corpus output directory was annotated with (its config.json says which)."""
        from ..paths import resolve_data_path

        cfg = json.loads((Path(corpus_dir) / "config.json").read_text(encoding="utf-8"))
        if not cfg.get("knowledge_base"):
            raise ValueError(f"{corpus_dir} was built without a knowledge_base; set knowledge_base in the corpus "
                             "config and rerun `obert preprocess`, or turn mask.knowledge.enabled off")
        return cls(load_knowledge_base(resolve_data_path(cfg["knowledge_base"])), tokenizer)

    def segment(self, ids: list[str] | None, max_entries: int, budget: int) -> tuple[np.ndarray, list[str]]:
        """(K_w token ids [<= budget], the entry ids used): the first `max_entries` known ids' summaries.

        The budget is shared: each entry gets budget // entries tokens (the first ones one more while
        the remainder lasts), and an entry whose summary is shorter leaves its rest to the next.
        """
        used = [i for i in dict.fromkeys(ids if ids is not None else []) if i in self.summary_ids][:max_entries]
        used = used[:budget] if budget > 0 else []
        if not used:
            return np.zeros(0, dtype=np.int64), []
        parts, left = [], budget
        for k, i in enumerate(used):
            share = -(-left // (len(used) - k))  # ceil(left / entries still to place)
            parts.append(self.summary_ids[i][:share])
            left -= len(parts[-1])
        return np.concatenate(parts), [i for i, p in zip(used, parts) if len(p)]
