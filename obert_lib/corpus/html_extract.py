"""The main text of an HTML page, by trafilatura (Barbaresi 2021), as datatrove's Trafilatura step extracts it.

Documents read from WARC files or HTML folders (html_input.py) hold decoded HTML (metadata markup='html');
ExtractMainText replaces it by trafilatura's plain text, one paragraph a line, before the length guard and
the other cleaning steps. Documents without markup (JSONL, text, WET records) pass untouched.

Settings as datatrove's Trafilatura step (favor_precision, no comments) except `deduplicate`: datatrove
turns on trafilatura's dedup, a per-process cache of text seen in earlier pages, so that what a page keeps
depends on which pages the same worker read before it; cross-document repeats are removed here by the
deterministic corpus-wide steps instead (dedup.paragraphs, dedup.repeated_lines). Extraction runs in the
worker itself, without datatrove's per-document sandbox process: html.max_page_bytes bounds its time.

A page where trafilatura finds no main text is dropped as `no_main_text`; one where it raises, as
`extraction_error` (the exception in the detail).
"""

from __future__ import annotations

from datatrove.data import Document

from .cleaning import CountingFilter

KEPT_HTML_CHARS = 2000  # a dropped page's start written to removed/ (the whole page can be megabytes)
# Metadata of a document whose text is trafilatura's main text: the length of the HTML it came from. The
# main-text block rule (main_text.py) leaves such documents whole unless lines.main_text_on_html.
EXTRACTED_KEY = "html_chars"


def extract_main_text(html: str, favor_precision: bool = True) -> str:
    """trafilatura's main text of `html` ('' when it finds none)."""
    from trafilatura import extract

    text = extract(
        html,
        favor_precision=favor_precision,
        include_comments=False,
        include_tables=True,
        deduplicate=False,
    )
    return text or ""


class ExtractMainText(CountingFilter):
    """Replace the HTML of each page by its main text; drop pages without one (module doc)."""

    name = "html main text"

    def __init__(self, favor_precision: bool = True, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.favor_precision = favor_precision

    def filter(self, doc: Document):
        if doc.metadata.get("markup") != "html":
            return True
        html = doc.text
        try:
            text = extract_main_text(html, self.favor_precision)
        except Exception as exc:  # noqa: BLE001 - lxml or trafilatura failing on one page: a drop, not a crash
            return self._drop(doc, "extraction_error", f"{type(exc).__name__}: {exc}")
        if not text.strip():
            return self._drop(doc, "no_main_text", f"trafilatura found no main text in {len(html)} characters")
        doc.text = text
        doc.metadata["markup"] = "text"
        doc.metadata[EXTRACTED_KEY] = len(html)
        return True

    @staticmethod
    def _drop(doc: Document, reason: str, detail: str):
        doc.metadata["detail"] = detail
        doc.metadata["chars_before"] = len(doc.text)
        doc.text = doc.text[:KEPT_HTML_CHARS]
        return False, reason
