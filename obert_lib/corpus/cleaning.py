"""The document cleaning steps: reader drops, length guard, Normalize, LineRules, QualityFilter.

Each does one thing and counts what it removes under a named reason; pipeline.cleaning_steps lists them in order.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from time import perf_counter

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result
from datatrove.utils.typeshelper import StatHints

from . import filters, normalize
from .readers import DROP_KEY
from .step_stats import report_step_time


class CountingFilter(BaseFilter):
    """A datatrove filter whose counts (total, forwarded, dropped, dropped_<reason>) are summed locally.

    BaseFilter.run updates three or four shared stats and times each document, which on short documents
    costs more than most rules: `obert bench preprocess`'s single pass took 3.12 s with BaseFilter.run
    against 1.96 s with this (docs/performance.md, 2026-12-04). The totals written to the logs are the same.
    It overrides `run`, the public extension point of every PipelineStep, with BaseFilter's own contract
    (`filter` returns True, False or (False, reason); dropped documents go to the exclusion writer);
    tests/test_compat.py checks that contract on the installed datatrove.
    """

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        total = forwarded = 0
        dropped: Counter = Counter()  # reason -> count ("" when the filter gives none)
        spent = 0.0
        with self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext() as writer:
            for doc in data:
                start = perf_counter()
                result = self.filter(doc)
                spent += perf_counter() - start
                total += 1
                if result is True:  # the common case, without get_filter_result's tuple
                    forwarded += 1
                    yield doc
                    continue
                keep, reason = get_filter_result(result)
                if keep:
                    forwarded += 1
                    yield doc
                    continue
                dropped[reason or ""] += 1
                if writer:
                    if reason:
                        doc.metadata["filter_reason"] = reason
                    writer.write(doc, rank)
        for label, value in (
            (StatHints.total, total),
            (StatHints.forwarded, forwarded),
            (StatHints.dropped, sum(dropped.values())),
        ):
            if value:
                self.stat_update(label, value=value)
        for reason, value in dropped.items():
            if reason:
                self.stat_update(f"dropped_{reason}", value=value)
        report_step_time(self, spent)


class ReaderDropFilter(CountingFilter):
    """Drop the placeholders readers emit for unreadable input, under the reader's reason."""

    name = "reader drops"

    def filter(self, doc: Document):
        reason = doc.metadata.get(DROP_KEY)
        return (False, reason) if reason else True


class LengthGuardFilter(CountingFilter):
    """Drop documents longer than `max_chars` before any costly step (a 10 MB single line, say)."""

    name = "length guard"

    def __init__(self, max_chars: int, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.max_chars = max_chars

    def filter(self, doc: Document):
        if len(doc.text) > self.max_chars:
            doc.metadata["detail"] = f"{len(doc.text)} chars > {self.max_chars}"
            doc.metadata["chars_before"] = len(doc.text)
            doc.text = doc.text[:2000]  # keep the removed/ record small
            return False, "too_long"
        return True


class Normalize(PipelineStep):
    """HTML remnants, NFKC (Chinese punctuation kept), control characters, whitespace, optional t2s."""

    name = "normalize"
    type = "✂️ - FORMATTER"

    def __init__(self, strip_html: bool = True, nfkc: bool = True, traditional_to_simplified: bool = True):
        super().__init__()
        self.strip_html, self.nfkc, self.t2s = strip_html, nfkc, traditional_to_simplified

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        normalizer = normalize.DocumentNormalizer(self.strip_html, self.nfkc, self.t2s)
        spent = 0.0
        for doc in data:
            start = perf_counter()
            doc.metadata["chars_before"] = len(doc.text)
            doc.text = normalizer(doc.text)
            spent += perf_counter() - start
            yield doc
        report_step_time(self, spent)


class LineRules(PipelineStep):
    """Remove boilerplate, navigation, SEO-spam and spam lines; scrub URLs, e-mails and phone numbers.

    A document where at least `max_spam_line_fraction` of the lines carry spam keywords is tagged for
    QualityFilter to drop whole (an advert), rather than stripped line by line.
    """

    name = "line rules"
    type = "✂️ - FORMATTER"

    def __init__(
        self,
        remove_navigation=True,
        remove_boilerplate=True,
        remove_seo_spam=True,
        remove_spam=True,
        scrub_private=True,
        max_spam_line_fraction: float = 0.5,
    ):
        super().__init__()
        self.nav, self.boiler, self.seo, self.spam, self.private = (
            remove_navigation,
            remove_boilerplate,
            remove_seo_spam,
            remove_spam,
            scrub_private,
        )
        self.max_spam_line_fraction = max_spam_line_fraction
        self.rules = filters.line_rule_bits(
            scrub_private, remove_spam, remove_boilerplate, remove_navigation, remove_seo_spam
        )

    def clean(self, doc: Document) -> None:
        """Apply the line rules to one document in place."""
        text = doc.text
        if not filters.line_rules_may_apply(text, self.rules):  # most documents: no rule can remove anything
            doc.text = normalize.remove_spaces_between_cjk(text)
            self._check_title(doc)
            return
        self.apply_rules(doc)

    def apply_rules(self, doc: Document) -> None:
        """clean() without its one-scan screen: every enabled rule, line by line (the reference for the screen)."""
        text = doc.text
        if self.private:
            text, removed = filters.scrub_private(text)
            if removed:
                self.stat_update("private_spans_removed", value=removed)
            text = normalize.normalize_whitespace(text)
        lines = text.split("\n") if text else []
        spam_lines = sum(filters.spam_keyword_hits(line) > 0 for line in lines) if self.spam else 0
        if spam_lines and spam_lines / len(lines) >= self.max_spam_line_fraction:
            doc.metadata["spam_lines"] = f"{spam_lines}/{len(lines)}"  # QualityFilter drops the whole advert
            doc.text = text
            return
        kept = []
        for line in lines:
            if self.spam and spam_lines and filters.spam_keyword_hits(line):
                self.stat_update("line_removed_spam_line")
            elif self.boiler and filters.is_boilerplate_line(line):
                self.stat_update("line_removed_boilerplate")
            elif self.nav and filters.is_navigation_line(line):
                self.stat_update("line_removed_navigation")
            elif self.seo and filters.is_seo_spam_line(line):
                self.stat_update("line_removed_seo_spam")
            else:
                kept.append(line)
        doc.text = normalize.remove_spaces_between_cjk("\n".join(kept))
        self._check_title(doc)

    def _check_title(self, doc: Document) -> None:
        title = doc.metadata.get("title")
        if self.seo and isinstance(title, str) and filters.is_seo_spam_line(title):
            self.stat_update("line_removed_seo_spam_title")  # titles are not training text; counted to show the dirt

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        spent = 0.0
        for doc in data:
            start = perf_counter()
            self.clean(doc)
            spent += perf_counter() - start
            yield doc
        report_step_time(self, spent)


class QualityFilter(CountingFilter):
    """Chinese quality rules in a fixed order; the first that fails names the drop reason."""

    name = "quality"

    def __init__(
        self,
        min_cjk_chars: int,
        min_cjk_ratio: float,
        max_top_char_fraction: float,
        max_duplicate_line_fraction: float,
        max_punctuation_ratio: float = 1.0,
        max_digit_ratio: float = 1.0,
        max_duplicate_ngram_fraction: float = 1.0,
        exclusion_writer=None,
    ):
        super().__init__(exclusion_writer)
        self.min_cjk_chars, self.min_cjk_ratio = min_cjk_chars, min_cjk_ratio
        self.max_top_char_fraction, self.max_dup_lines = max_top_char_fraction, max_duplicate_line_fraction
        self.max_punct, self.max_digit, self.max_dup_ngrams = (
            max_punctuation_ratio,
            max_digit_ratio,
            max_duplicate_ngram_fraction,
        )

    def filter(self, doc: Document):
        text = doc.text
        if doc.metadata.get("spam_lines"):
            doc.metadata["detail"] = f"{doc.metadata['spam_lines']} lines carry spam keywords"
            return False, "spam_keywords"
        if not text or text.isspace():
            return False, "empty_after_cleaning"
        m = filters.quality_metrics(text)  # one C scan; each field equals the filters function of its name
        if m.cjk_ratio < self.min_cjk_ratio:  # before length, so mojibake is named as garbled, not short
            doc.metadata["detail"] = f"{m.cjk_ratio:.2f} < {self.min_cjk_ratio}"
            return False, "low_cjk_ratio"
        if m.cjk_count < self.min_cjk_chars:
            doc.metadata["detail"] = f"{m.cjk_count} CJK chars < {self.min_cjk_chars}"
            return False, "too_short"
        if m.top_char_fraction > self.max_top_char_fraction:
            doc.metadata["detail"] = f"{m.top_char_fraction:.2f} > {self.max_top_char_fraction}"
            return False, "repetitive_characters"
        if m.duplicate_line_fraction > self.max_dup_lines:
            doc.metadata["detail"] = f"{m.duplicate_line_fraction:.2f} > {self.max_dup_lines}"
            return False, "repeated_lines"
        for value, limit, reason in (
            (m.punctuation_ratio, self.max_punct, "punctuation_ratio"),
            (m.digit_ratio, self.max_digit, "digit_ratio"),
        ):
            if value > limit:
                doc.metadata["detail"] = f"{value:.2f} > {limit}"
                return False, reason
        if self.max_dup_ngrams < 1.0 and m.duplicate_ngram_char_fraction > self.max_dup_ngrams:
            doc.metadata["detail"] = f"{m.duplicate_ngram_char_fraction:.2f} > {self.max_dup_ngrams}"
            return False, "repeated_ngrams"
        return True
