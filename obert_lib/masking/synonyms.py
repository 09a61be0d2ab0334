"""Near-synonym tables for Motian's synonym replacement, from a lexicon file or a model's input embeddings.

A masked word is shown as a synonym sampled in proportion to its weight (lexicon) or to
softmax(cosine / temperature) over its nearest neighbours (embeddings). Only synonyms with the same
number of tokens qualify, so every label stays aligned with its position.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

Key = tuple[int, ...]  # the token ids of a word


class SynonymTable:
    """word token ids -> (candidate token ids [C, L], sampling probabilities [C])."""

    def __init__(self, table: dict[Key, tuple[np.ndarray, np.ndarray]], source: str = ""):
        self.table, self.source = table, source

    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, key: Key) -> bool:
        return key in self.table

    def sample(self, key: Key, rng: np.random.Generator) -> np.ndarray | None:
        """A synonym's token ids for `key` ([L]), or None when the word has none."""
        entry = self.table.get(key)
        if entry is None:
            return None
        cands, probs = entry
        return cands[rng.choice(len(probs), p=probs)]

    @classmethod
    def from_lexicon(cls, path: str | Path, tokenizer) -> "SynonymTable":
        """Read a `word<TAB>synonym<TAB>weight` TSV (header line first; see data/README.md)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"synonym.lexicon: {path} does not exist; give a TSV word/synonym/weight file")
        pairs: dict[str, list[tuple[str, float]]] = {}
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines or lines[0].split("\t")[:2] != ["word", "synonym"]:
            raise ValueError(f"{path}:1: expected the header 'word<TAB>synonym<TAB>weight'")
        for lineno, line in enumerate(lines[1:], 2):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            try:
                word, syn = parts[0].strip(), parts[1].strip()
                weight = float(parts[2]) if len(parts) > 2 and parts[2].strip() else 1.0
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{lineno}: expected 'word<TAB>synonym<TAB>weight', got {line!r}") from None
            if not word or not syn or weight <= 0:
                raise ValueError(f"{path}:{lineno}: empty word/synonym or weight <= 0 in {line!r}")
            pairs.setdefault(word, []).append((syn, weight))
        vocab = sorted({w for w in pairs} | {s for v in pairs.values() for s, _ in v})
        ids = dict(zip(vocab, tokenizer(vocab, add_special_tokens=False)["input_ids"])) if vocab else {}
        table: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
        for word, syns in pairs.items():
            key = tuple(ids[word])
            same = [(ids[s], w) for s, w in syns if len(ids[s]) == len(key) and tuple(ids[s]) != key]
            if key and same:
                weights = np.array([w for _, w in same], dtype=np.float64)
                table[key] = (np.array([c for c, _ in same], dtype=np.int64), weights / weights.sum())
        return cls(table, source=str(path))

    @classmethod
    def from_embeddings(
        cls,
        embeddings: np.ndarray,
        words: Iterable[Key],
        top_k: int = 8,
        temperature: float = 0.05,
        min_similarity: float = 0.0,
    ) -> "SynonymTable":
        """Nearest neighbours among `words` by cosine of their mean input embeddings ([V, H]), same token length
        only."""
        emb = np.asarray(embeddings, dtype=np.float32)
        by_len: dict[int, list[Key]] = {}
        for w in dict.fromkeys(words):
            if w and max(w) < len(emb):
                by_len.setdefault(len(w), []).append(w)
        table: dict[Key, tuple[np.ndarray, np.ndarray]] = {}
        for length, group in by_len.items():
            if len(group) < 2:
                continue
            ids = np.array(group, dtype=np.int64)  # [G, L]
            vec = emb[ids].mean(axis=1)  # [G, H]
            vec /= np.linalg.norm(vec, axis=1, keepdims=True).clip(1e-12)
            for lo in range(0, len(group), 2048):  # [chunk, G] similarities, a block at a time
                sim = vec[lo : lo + 2048] @ vec.T
                np.fill_diagonal(sim[:, lo : lo + 2048], -np.inf)
                k = min(top_k, len(group) - 1)
                nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # [chunk, k]
                for i, nn in enumerate(nearest):
                    s = sim[i, nn]
                    keep = s >= min_similarity
                    if not keep.any():
                        continue
                    s, nn = s[keep], nn[keep]
                    p = np.exp((s - s.max()) / temperature)
                    table[group[lo + i]] = (ids[nn], p / p.sum())
        return cls(table, source="embeddings")


def corpus_words(rows: Iterable[dict], min_count: int = 2, max_words: int = 20000) -> list[Key]:
    """The most frequent word-span token tuples of corpus rows (candidates for embedding neighbours)."""
    counts: Counter = Counter()
    for row in rows:
        ids = row["input_ids"]
        counts.update(tuple(ids[s:e]) for s, e in row.get("word_spans") or [])
    return [w for w, n in counts.most_common(max_words) if n >= min_count]
