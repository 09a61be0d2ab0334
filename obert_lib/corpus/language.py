"""Language identification: documents in no language of `language.keep` are dropped as `other_language`.

The identifier is py3langid (a fork of langid.py, Lui and Baldwin 2012): a naive Bayes model over byte n-grams
whose model file ships inside the package, so nothing is downloaded at run time. Japanese shares the CJK
ideographs with Chinese; its kana n-grams are what tell it apart. The model reads only the first
`prefix_chars` characters of the cleaned document (LanguageConfig.prefix_chars).
"""

from __future__ import annotations

import copy
import functools

from datatrove.data import Document

from .cleaning import CountingFilter


@functools.lru_cache(maxsize=1)
def _model():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)


@functools.lru_cache(maxsize=1)
def known_languages() -> frozenset[str]:
    """The language codes py3langid's shipped model knows."""
    return frozenset(_model().labels)


@functools.lru_cache(maxsize=8)
def identifier(candidates: tuple[str, ...]):
    """A py3langid identifier restricted to `candidates` (one per set of candidates per process).

    A shallow copy of the full model: set_languages assigns the copy new column slices of the full model's
    arrays, so the model file is decompressed once per process (about 1 s here), not once per identifier.
    """
    ident = copy.copy(_model())
    ident.set_languages(list(candidates))
    return ident


def identify(text: str, candidates: tuple[str, ...], prefix_chars: int) -> str | None:
    """The language code of `text`'s first `prefix_chars` characters, or None when they hold no letter
    (symbols and digits only: nothing to identify; the quality rules judge such documents)."""
    prefix = text[:prefix_chars]
    if not any(ch.isalpha() for ch in prefix):
        return None
    return identifier(candidates).classify(prefix)[0]


class LanguageFilter(CountingFilter):
    """Drop documents whose identified language is not in `keep` (reason `other_language`, detail the code)."""

    name = "language"

    def __init__(self, keep: list[str], candidates: list[str], prefix_chars: int = 1000, exclusion_writer=None) -> None:
        super().__init__(exclusion_writer)
        self.keep = frozenset(keep)
        self.candidates = tuple(candidates)
        self.prefix_chars = prefix_chars

    def filter(self, doc: Document):
        lang = identify(doc.text, self.candidates, self.prefix_chars)
        if lang is None or lang in self.keep:
            return True
        doc.metadata["detail"] = f"identified as '{lang}' in the first {self.prefix_chars} characters"
        return False, "other_language"
