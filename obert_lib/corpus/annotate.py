"""Span annotation for masking, as character offsets: words+POS, entities, keywords, phrases, clauses.

These are the reference rules. Words and POS come from rjieba (jieba's dictionary and HMM, in Rust);
keywords are TF-IDF with jieba's bundled IDF table (the same scores as jieba.analyse.extract_tags,
without a second cut). The corpus stage runs the same rules in C (paragraph_annotator.py), tested
to give identical output.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

Span = tuple[int, int]  # [start, end) character offsets

SPAN_TYPES = ("word", "entity", "keyword", "phrase", "clause", "sentence")
ENTITY_POS = {"nr", "ns", "nt", "nz"}  # person, place, organisation, other proper noun (jieba tag set)
NOUN_POS = {"n", "nr", "ns", "nt", "nz", "vn", "ng", "nrt", "nrfg"}
MODIFIER_POS = {"a", "an", "b", "f", "uj"} | NOUN_POS
_CLAUSE_SPLIT = re.compile(r"[，,；;：:、。！？!?\n…]+")


@dataclass
class KnowledgeEntry:
    """One knowledge-base entity (data/sample/kb.jsonl format)."""

    id: str
    name: str
    aliases: list[str] = field(default_factory=list)
    type: str = ""
    description: str = ""
    summary: str = ""


def load_knowledge_base(path: str | Path) -> list[KnowledgeEntry]:
    """Read a knowledge-base JSONL (id, name, aliases, type, description, summary per line)."""
    entries = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                entries.append(KnowledgeEntry(**row))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a knowledge-base entry ({exc})") from None
    return entries


class EntityMatcher:
    """Aho-Corasick over entity names and aliases; longest match wins, matches never overlap."""

    def __init__(self, entries: list[KnowledgeEntry]):
        import ahocorasick

        self.automaton = ahocorasick.Automaton()
        self.descriptions = {e.id: e.description for e in entries}
        surface: dict[str, list[str]] = {}
        for e in entries:
            for name in [e.name, *e.aliases]:
                if len(name) >= 2:  # one-character aliases (京, 沪) match inside too many words
                    surface.setdefault(name, []).append(e.id)
        for name, ids in surface.items():
            self.automaton.add_word(name, (name, ids))
        self.empty = not surface
        if not self.empty:
            self.automaton.make_automaton()

    def find(self, text: str) -> list[tuple[int, int, list[str]]]:
        """[(start, end, entity ids)] of non-overlapping longest matches, in text order."""
        if self.empty:
            return []
        found = [(end + 1 - len(name), end + 1, ids) for end, (name, ids) in self.automaton.iter(text)]
        found.sort(key=lambda m: (m[0] - m[1], m[0]))  # longest first, then leftmost
        taken = bytearray(len(text))
        chosen = []
        for s, e, ids in found:
            if not any(taken[s:e]):
                taken[s:e] = b"\x01" * (e - s)
                chosen.append((s, e, ids))
        return sorted(chosen)

    def link(self, text: str) -> list[tuple[int, int, str]]:
        """[(start, end, entity id)]: each longest match resolved to one entry.

        An ambiguous name (several entries) goes to the entry whose description shares the most
        character bigrams with `text`, then the most characters; a tie keeps the knowledge-base order.
        """
        out = []
        context_bigrams = context_chars = None
        for s, e, ids in self.find(text):
            if len(ids) > 1:
                if context_bigrams is None:
                    context_bigrams, context_chars = _bigrams(text), set(text)
                ids = sorted(
                    ids,
                    key=lambda i: (
                        -len(_bigrams(self.descriptions[i]) & context_bigrams),
                        -len(set(self.descriptions[i]) & context_chars),
                    ),
                )
            out.append((s, e, ids[0]))
        return out


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def linked_ids(links: list[tuple[int, int, str]]) -> list[str]:
    """Entity ids in order of first mention, each once."""
    return list(dict.fromkeys(i for _, _, i in links))


@functools.lru_cache(maxsize=1)
def jieba_idf() -> tuple[dict[str, float], float, frozenset[str]]:
    """jieba's bundled IDF table, its median (the default for unseen words) and its stop words.

    Read from jieba's files without importing jieba.analyse: that import loads jieba.posseg's tables
    (seconds per worker process). tests/corpus/test_annotate.py checks both equal jieba.analyse's.
    """
    analyse = jieba_analyse_dir()
    idf: dict[str, float] = {}
    for line in (analyse / "idf.txt").read_text(encoding="utf-8").splitlines():
        word, _, value = line.partition(" ")
        if value:
            idf[word] = float(value)
    median = sorted(idf.values())[len(idf) // 2]  # jieba.analyse.tfidf.IDFLoader's default for unseen words
    return idf, median, jieba_stop_words()


def jieba_analyse_dir() -> Path:
    """The folder of jieba.analyse (idf.txt, tfidf.py), found without importing it."""
    import importlib.util

    return Path(importlib.util.find_spec("jieba").origin).parent / "analyse"


@functools.lru_cache(maxsize=1)
def jieba_stop_words() -> frozenset[str]:
    """jieba.analyse's keyword stop words."""
    return _jieba_stop_words(jieba_analyse_dir() / "tfidf.py")


def _jieba_stop_words(tfidf_source: Path) -> frozenset[str]:
    """KeywordExtractor.STOP_WORDS of jieba/analyse/tfidf.py, read from the source as a literal."""
    import ast

    for node in ast.walk(ast.parse(tfidf_source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STOP_WORDS" for t in node.targets):
            value = node.value.args[0] if isinstance(node.value, ast.Call) else node.value
            return frozenset(ast.literal_eval(value))
    raise RuntimeError(f"{tfidf_source} no longer defines STOP_WORDS; update annotate._jieba_stop_words")


def tag_words(text: str) -> list[tuple[int, int, str]]:
    """[(start, end, POS)] for each word of `text`, from rjieba's tagger."""
    import rjieba

    pairs = rjieba.tag(text)
    ends = list(accumulate(len(w) for w, _ in pairs))
    out = [(e - len(w), e, t) for (w, t), e in zip(pairs, ends)]
    pos = ends[-1] if ends else 0
    if pos != len(text):  # the tagger must tile the text; anything else is a bug upstream
        raise RuntimeError(f"rjieba.tag did not tile the text ({pos} != {len(text)})")
    return out


# Frequency given to a user word without one: high enough that the segmenter keeps it whole
# (jieba's most frequent dictionary words are in the hundreds of thousands; 的 is ~3.2M).
USER_WORD_DEFAULT_FREQ = 100_000


def load_user_dict(path: str | Path) -> int:
    """Add a jieba-format user dictionary (`word [freq] [tag]` per line, # comments) to rjieba and to the
    C segmenter (segmenter.default_segmenter), so both annotation paths agree; returns words added."""
    import rjieba

    from .segmenter import default_segmenter

    native = default_segmenter()
    n = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else USER_WORD_DEFAULT_FREQ
        tags = [p for p in parts[1:] if not p.isdigit()]
        rjieba.add_word(parts[0], freq, tags[0] if tags else "nz")
        native.add_word(parts[0], freq, tags[0] if tags else "nz")
        n += 1
    return n


def tag_words_jieba_posseg(text: str) -> list[tuple[int, int, str]]:
    """[(start, end, POS)] from the pure-Python jieba.posseg (the slow baseline `obert bench preprocess` compares)."""
    import jieba.posseg

    out, pos = [], 0
    for pair in jieba.posseg.cut(text):
        out.append((pos, pos + len(pair.word), pair.flag))
        pos += len(pair.word)
    return out


TAGGERS = {"rjieba": tag_words, "jieba_posseg": tag_words_jieba_posseg}


def keyword_spans(text: str, words: list[tuple[int, int, str]], top_k: int) -> list[Span]:
    """Occurrences of the top-k TF-IDF words of `text` (2+ characters; no stop words, numerals or punctuation)."""
    idf, median, stop = jieba_idf()
    tf = Counter(text[s:e] for s, e, tag in words if e - s >= 2 and tag not in ("x", "m"))
    scored = sorted((-n * idf.get(w, median), w) for w, n in tf.items() if w.lower() not in stop)
    keep = {w for _, w in scored[:top_k]}
    return [(s, e) for s, e, _ in words if e - s >= 2 and text[s:e] in keep]


def phrase_spans(words: list[tuple[int, int, str]]) -> list[Span]:
    """POS-pattern chunks: modifier/noun runs ending in a noun (2+ words), and verb + noun-run pairs."""
    spans: list[Span] = []
    i, n = 0, len(words)
    while i < n:
        if words[i][2] in MODIFIER_POS and words[i][2] != "uj":
            j = i
            while j + 1 < n and words[j + 1][2] in MODIFIER_POS:
                j += 1
            k = j
            while k > i and words[k][2] not in NOUN_POS:
                k -= 1
            if k > i:
                spans.append((words[i][0], words[k][1]))
                i = k + 1
                continue
        if words[i][2] == "v" and i + 1 < n and words[i + 1][2] in NOUN_POS:
            j = i + 1
            while j + 1 < n and words[j + 1][2] in NOUN_POS and j - i < 2:
                j += 1
            spans.append((words[i][0], words[j][1]))
            i = j + 1
            continue
        i += 1
    return spans


def clause_spans(text: str) -> list[Span]:
    """Segments between clause punctuation (，；：、 and sentence ends) of 2+ characters."""
    spans, start = [], 0
    for m in _CLAUSE_SPLIT.finditer(text):
        if m.start() - start >= 2:
            spans.append((start, m.start()))
        start = m.end()
    if len(text) - start >= 2:
        spans.append((start, len(text)))
    return spans


_SENTENCE_END = re.compile(r"(?:[。！？!?]+|…{1,2}|\.{3,})[”’」』）)\"']*")


def sentence_spans(text: str) -> list[Span]:
    """Sentences: up to and including 。！？!? or an ellipsis, plus any closing quotes/brackets right after."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if text[start : m.end()].strip():
            spans.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def annotate(
    text: str, matcher: EntityMatcher | None = None, keywords_top_k: int = 3, tagger: str = "rjieba"
) -> dict[str, list[Span]]:
    """All span types of one paragraph as character offsets, each list sorted and non-overlapping."""
    return annotate_linked(text, matcher, keywords_top_k, tagger)[0]


def annotate_linked(
    text: str, matcher: EntityMatcher | None = None, keywords_top_k: int = 3, tagger: str = "rjieba"
) -> tuple[dict[str, list[Span]], list[str]]:
    """annotate() plus the knowledge-base ids linked in the paragraph, in order of first mention."""
    links = matcher.link(text) if matcher else []
    return spans_from_words(text, TAGGERS[tagger](text), links, keywords_top_k), linked_ids(links)


def spans_from_words(
    text: str, words: list[tuple[int, int, str]], links: list[tuple[int, int, str]], keywords_top_k: int
) -> dict[str, list[Span]]:
    """Every span type of a paragraph from its tagged words and knowledge-base links (the reference rules).

    obert_lib.corpus.native/spans.c computes the same in one C call; tests check both agree.
    """
    word_spans = [(s, e) for s, e, tag in words if tag != "x"]  # jieba tags punctuation and spaces 'x'
    entities = [(s, e) for s, e, _ in links]
    taken = bytearray(len(text))
    for s, e in entities:
        taken[s:e] = b"\x01" * (e - s)
    for s, e, tag in words:  # proper nouns the knowledge base does not know
        if tag in ENTITY_POS and e - s >= 2 and not any(taken[s:e]):
            entities.append((s, e))
    return {
        "word": word_spans,
        "entity": sorted(entities),
        "keyword": keyword_spans(text, words, keywords_top_k),
        "phrase": phrase_spans(words),
        "clause": clause_spans(text),
        "sentence": sentence_spans(text),
    }
