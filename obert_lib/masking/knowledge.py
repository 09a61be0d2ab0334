"""Knowledge segments for knowledge-enhanced masking: tokenised summaries of linked knowledge-base entries.

OBERT (like ERNIE 3.0 and REALM) appends what the knowledge base says about the entities in a
paragraph as a second segment, `[CLS] context [SEP] K_w [SEP]` with token type 1, and masks only the
context, so the model learns to use the knowledge to recover masked context tokens.

K_w holds the entries' summaries in order of first mention, separated by [SEP]: `S_1 [SEP] S_2`. [SEP]
because it costs one token of the budget, is an id the fine-tuning tokenizer produces (it ends each
segment of a sentence pair), and is never part of a summary, so two entries cannot read as one sentence
(`…浪漫主义诗人杜甫字子美…`). A summary longer than its share of the budget is cut at its last sentence
end (`。！？；`) within the share, else at its last word boundary (rjieba, the corpus stage's segmenter),
never inside a word; an entry whose first word does not fit is left out. Knowledge takes no random draws.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..config import ConfigError
from ..corpus.annotate import KnowledgeEntry, load_knowledge_base, tag_words

# A sentence (or clause) end a summary may be cut after, with any closing quotes or brackets right after it.
SUMMARY_END = re.compile(r"[。！？；!?;]+[”’」』）)\"']*")


@dataclass
class KnowledgePart:
    """One entry's piece of K_w: its summary token ids (whole, or cut at a boundary) and whether it was cut."""

    entry: str
    ids: np.ndarray  # [L]
    cut: bool


def token_cuts(offsets: Sequence[tuple[int, int]], char_cuts: Iterable[int]) -> np.ndarray:
    """Sorted token counts k > 0 such that tokens [0, k) end at one of `char_cuts` and no token straddles it."""
    starts = np.array([s for s, _ in offsets], dtype=np.int64)
    ends = np.array([e for _, e in offsets], dtype=np.int64)
    chars = np.array(sorted(set(char_cuts)), dtype=np.int64)
    k = np.searchsorted(ends, chars, side="right")  # tokens ending at or before each cut
    whole = np.searchsorted(starts, chars, side="left") == k  # ... and every token starting before it
    return np.unique(k[whole & (k > 0)])


class KnowledgeSegments:
    """Entity id -> summary token ids ([L]) and where they may be cut; builds a row's K_w within a token budget."""

    def __init__(self, entries: list[KnowledgeEntry], tokenizer):
        texts = [e.summary or e.description for e in entries]
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else {}
        self.summary_ids: dict[str, np.ndarray] = {}
        self.sentence_cuts: dict[str, np.ndarray] = {}  # token counts ending at a sentence end
        self.word_cuts: dict[str, np.ndarray] = {}  # token counts ending at a word boundary
        for e, text, ids, offsets in zip(entries, texts, enc.get("input_ids", []), enc.get("offset_mapping", [])):
            self.summary_ids[e.id] = np.asarray(ids, dtype=np.int64)
            self.sentence_cuts[e.id] = token_cuts(offsets, (m.end() for m in SUMMARY_END.finditer(text)))
            self.word_cuts[e.id] = token_cuts(offsets, (end for _, end, _ in tag_words(text)))
        self.names = {e.id: e.name for e in entries}
        self.separator_id = tokenizer.sep_token_id

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path, tokenizer) -> "KnowledgeSegments":
        """The knowledge base a corpus output directory was annotated with (its config.json says which)."""
        from ..paths import resolve_data_path
        from .corpus_files import corpus_config

        cfg = corpus_config(corpus_dir)
        if not cfg.get("knowledge_base"):
            raise ConfigError(
                f"knowledge: {corpus_dir} was built without a knowledge_base; set knowledge_base in the "
                "corpus config and rerun `obert preprocess`, or turn mask.knowledge.enabled off"
            )
        return cls(load_knowledge_base(resolve_data_path(cfg["knowledge_base"])), tokenizer)

    def cut(self, entry: str, room: int) -> KnowledgePart:
        """`entry`'s summary within `room` tokens: whole, else up to its last sentence end, else its last word end."""
        ids = self.summary_ids[entry]
        if len(ids) <= room:
            return KnowledgePart(entry, ids, False)
        for cuts in (self.sentence_cuts[entry], self.word_cuts[entry]):
            fit = cuts[cuts <= room]
            if len(fit):
                return KnowledgePart(entry, ids[: fit[-1]], True)
        return KnowledgePart(entry, ids[:0], True)

    def parts(self, ids: list[str] | None, max_entries: int, budget: int) -> list[KnowledgePart]:
        """The pieces of K_w: the first `max_entries` known ids' summaries, with their [SEP]s within `budget`.

        The budget is shared: each entry gets an equal share of what the entries still to place leave after
        their separators (the first ones one more while the remainder lasts); an entry that takes less
        (a short summary, a cut at a boundary) or nothing leaves the rest to the next.
        """
        used = [i for i in dict.fromkeys(ids if ids is not None else []) if i in self.summary_ids][:max_entries]
        parts: list[KnowledgePart] = []
        left = budget
        for k, i in enumerate(used):
            room = left - (1 if parts else 0)  # the [SEP] before this entry
            later = len(used) - k - 1  # entries still to place after this one, each after its own [SEP]
            part = self.cut(i, -(-(room - later) // (later + 1)))
            if len(part.ids):
                parts.append(part)
                left = room - len(part.ids)
        return parts

    def join(self, parts: Sequence[KnowledgePart]) -> np.ndarray:
        """K_w token ids: the parts' ids with [SEP] between them."""
        pieces: list[np.ndarray] = []
        for p in parts:
            if pieces:
                pieces.append(np.array([self.separator_id], dtype=np.int64))
            pieces.append(p.ids)
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def segment(self, ids: list[str] | None, max_entries: int, budget: int) -> tuple[np.ndarray, list[str]]:
        """(K_w token ids [<= budget], the entry ids used): `join(parts(...))`."""
        parts = self.parts(ids, max_entries, budget)
        return self.join(parts), [p.entry for p in parts]
