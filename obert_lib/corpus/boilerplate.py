"""Cross-document boilerplate: paragraph lines found in many documents of the corpus (site furniture) go.

A menu, footer or disclaimer line of a site repeats on each of its pages; within one page it looks like text.
As CCNet (Wenzek et al. 2020) hashes normalised paragraphs across a shard to remove boilerplate, and C4
(Raffel et al. 2020) and RefinedWeb (Penedo et al. 2023) remove text repeated across documents, the corpus stage
counts each normalised line once per document over the whole corpus and drops every copy of a line found in at
least `min_documents` documents (reason `repeated_line`). The paragraph dedup, by contrast, keeps the first
copy of a repeated paragraph: a line that only a few documents share (a quotation) keeps one copy there.

This module says what makes two lines the same (line_key); dedup_index.py hashes every paragraph's key in
the clean stage (DedupSignatures), counts each key once per kept document in the dedup stage (DedupDecisions)
and marks the paragraphs whose key is in >= min_documents documents; kept_paragraphs.KeptParagraphs drops
them. A repeat of a paragraph of at least dedup.min_paragraph_chars characters is by then gone as a
duplicate_paragraph; repeated_line counts the rest: its first copy, and every copy of shorter lines.
"""

from __future__ import annotations

import re

from .dedup import HASH64

REASON = "repeated_line"
_NOT_WORD = re.compile(r"[\W_]+")
_DIGIT = re.compile(r"\d")


def line_key(text: str) -> str:
    """What makes two lines the same furniture: no whitespace or punctuation, lower case, every digit '0'
    (a footer's year and a view counter change from page to page)."""
    return _DIGIT.sub("0", _NOT_WORD.sub("", text).lower())


def line_hash(text: str) -> int | None:
    """The 64-bit hash of line_key(text); None for a line without letters or digits (nothing to count)."""
    key = line_key(text)
    return HASH64(key.encode("utf-8")) if key else None
