"""One paragraph -> WordPiece ids, token spans of every type and linked entities, in three C calls.

The C path (native/segmenter.c, native/wordpiece.c, native/spans.c) gives the same output as the
reference path (rjieba.tag, the tokenizers backend, annotate.spans_from_words and
tokenizer.spans_by_type_to_tokens); tests/corpus/test_paragraph_annotator.py checks that on real text.
Results are packed native int32 `bytes`, which ShardWriter turns into Arrow columns without Python lists.
"""

from __future__ import annotations

import array
import functools
from dataclasses import dataclass

from .annotate import (
    ENTITY_POS,
    MODIFIER_POS,
    NOUN_POS,
    SPAN_TYPES,
    EntityMatcher,
    jieba_analyse_dir,
    jieba_idf,
    jieba_stop_words,
    linked_ids,
    spans_from_words,
)

# Class bits of a POS tag, as native/spans.c reads them (one byte per tag id).
CLASS_X, CLASS_M, CLASS_ENTITY, CLASS_NOUN, CLASS_MODIFIER, CLASS_UJ, CLASS_V = 1, 2, 4, 8, 16, 32, 64


def tag_class(tag: str) -> int:
    """The class bits of one POS tag (annotate.py's ENTITY_POS, NOUN_POS, MODIFIER_POS, x, m, uj, v)."""
    return (
        (tag == "x") * CLASS_X
        | (tag == "m") * CLASS_M
        | (tag in ENTITY_POS) * CLASS_ENTITY
        | (tag in NOUN_POS) * CLASS_NOUN
        | (tag in MODIFIER_POS) * CLASS_MODIFIER
        | (tag == "uj") * CLASS_UJ
        | (tag == "v") * CLASS_V
    )


@functools.lru_cache(maxsize=1)
def _keyword_table_loaded() -> bool:
    """Hand jieba's IDF table and stop words to the C keyword rule, once per process."""
    from . import _spans

    stop = jieba_stop_words()
    if any(not w.isascii() for w in stop):  # spans.c compares only ASCII words with the stop list
        raise RuntimeError("jieba's stop words are no longer ASCII: native/spans.c's stop-word test needs updating")
    # Non-ASCII BMP characters whose lower case is ASCII (KELVIN SIGN -> k): such words go to the Python rule.
    to_ascii = [c for c in range(0x80, 0x10000) if chr(c).lower().isascii()]
    try:  # C reads idf.txt itself (0.03 s against 0.4 s through Python); same table, tested
        _spans.load_idf_file(str(jieba_analyse_dir() / "idf.txt"), sorted(stop), to_ascii)
    except ValueError:  # a line C does not read exactly as annotate.jieba_idf does
        idf, median, _ = jieba_idf()
        _spans.set_keyword_table(list(idf), list(idf.values()), sorted(stop), median, to_ascii)
    return True


def load_shared_tables() -> None:
    """Build the process-wide tables every ParagraphAnnotator uses: jieba's segmenter and the keyword IDF table.

    Called once before workers start (worker_preload), so that workers inherit them instead of each
    building them (about 0.25 s and 0.15 s).
    """
    from .segmenter import default_segmenter

    default_segmenter()
    _keyword_table_loaded()


@dataclass
class AnnotatedParagraph:
    input_ids: bytes  # int32 [n_tokens]
    spans: dict[str, bytes]  # span type -> int32 [n_spans, 2] token [start, end)
    knowledge_ids: list[str]  # linked knowledge-base ids, in order of first mention


def pack_pairs(pairs: list[tuple[int, int]]) -> bytes:
    """[(a, b), ...] -> packed native int32 [n, 2]."""
    return array.array("i", [v for pair in pairs for v in pair]).tobytes()


def unpack_pairs(packed: bytes) -> list[tuple[int, int]]:
    """Packed native int32 [n, 2] -> [(a, b), ...]."""
    flat = array.array("i")
    flat.frombytes(packed)
    return list(zip(flat[0::2], flat[1::2]))


class ParagraphAnnotator:
    """Annotate and tokenise paragraphs with the C segmenter, WordPiece encoder and span rules."""

    def __init__(
        self, tokenizer_dir: str, matcher: EntityMatcher | None = None, keywords_top_k: int = 3, segmenter=None
    ):
        from . import _spans
        from .segmenter import default_segmenter
        from .wordpiece import WordPieceEncoder

        if keywords_top_k < 0:
            raise ValueError(f"keywords_top_k: {keywords_top_k} must be >= 0")
        self._spans = _spans
        self.segmenter = segmenter or default_segmenter()
        self.encoder = WordPieceEncoder.from_tokenizer_dir(tokenizer_dir)
        self.matcher, self.keywords_top_k = matcher, keywords_top_k
        self.python_fallbacks = 0  # paragraphs whose keywords needed Python's str.lower()
        _keyword_table_loaded()
        self._n_tags = -1
        self._sync_tags()

    def _sync_tags(self) -> None:
        if self.segmenter.n_tags != self._n_tags:  # add_word may have brought new tags
            names = self.segmenter.tag_names
            self._spans.set_tag_classes(bytes(tag_class(t) for t in names))
            self._n_tags = len(names)

    def words(self, text: str) -> list[tuple[int, int, str]]:
        """[(start, end, POS)] of the segmenter's words (the reference rules' input)."""
        flat = array.array("i")
        flat.frombytes(self.segmenter.tag_offsets(text))
        names = self.segmenter.tag_names
        return [(flat[i], flat[i + 1], names[flat[i + 2]]) for i in range(0, len(flat), 4)]

    def __call__(self, text: str) -> AnnotatedParagraph:
        ids, spans, linked = self.annotate_packed(text)
        return AnnotatedParagraph(ids, dict(zip(SPAN_TYPES, spans)), linked)

    def annotate_packed(self, text: str) -> tuple[bytes, tuple[bytes, ...], list[str]]:
        """(input ids, token spans in SPAN_TYPES order, linked ids): __call__ without building objects (the hot
        loop)."""
        if self.segmenter.n_tags != self._n_tags:
            self._sync_tags()
        words = self.segmenter.tag_offsets(text)
        ids, offsets = self.encoder.encode_packed(text)
        if self.matcher is None:
            links, kb = [], b""
        else:
            links = self.matcher.link(text)
            kb = pack_pairs([(s, e) for s, e, _ in links])
        packed = self._spans.annotate(text, words, offsets, kb, self.keywords_top_k)
        if packed is None:
            self.python_fallbacks += 1
            packed = self._python_spans(text, links, offsets)
        return ids, packed, linked_ids(links) if links else []

    def _python_spans(self, text: str, links, offsets: bytes) -> list[bytes]:
        """The reference rules on the same words and tokens (for the rare paragraph spans.c hands back)."""
        from .tokenizer import spans_by_type_to_tokens

        spans = spans_from_words(text, self.words(text), links, self.keywords_top_k)
        token_spans = spans_by_type_to_tokens(unpack_pairs(offsets), spans)
        return [pack_pairs(token_spans[t]) for t in SPAN_TYPES]


class ReferenceAnnotator:
    """ParagraphAnnotator's Python reference: a Python tagger (rjieba or jieba.posseg), the tokenizers
    backend and annotate.py's rules (paragraphs.Annotate's tagger "rjieba" / "jieba_posseg")."""

    def __init__(self, tokenizer_dir: str, matcher: EntityMatcher | None, keywords_top_k: int, tagger: str = "rjieba"):
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(f"{tokenizer_dir}/tokenizer.json")
        self.backend.no_padding()
        self.backend.no_truncation()
        self.matcher, self.keywords_top_k, self.tagger = matcher, keywords_top_k, tagger

    def __call__(self, text: str) -> AnnotatedParagraph:
        ids, spans, linked = self.annotate_packed(text)
        return AnnotatedParagraph(ids, dict(zip(SPAN_TYPES, spans)), linked)

    def annotate_packed(self, text: str) -> tuple[bytes, tuple[bytes, ...], list[str]]:
        """(input ids, token spans in SPAN_TYPES order, linked ids), as ParagraphAnnotator.annotate_packed."""
        from .annotate import annotate_linked
        from .tokenizer import spans_by_type_to_tokens

        enc = self.backend.encode(text, add_special_tokens=False)
        spans, linked = annotate_linked(text, self.matcher, self.keywords_top_k, self.tagger)
        token_spans = spans_by_type_to_tokens(enc.offsets, spans)
        return array.array("i", enc.ids).tobytes(), tuple(pack_pairs(token_spans[t]) for t in SPAN_TYPES), linked
