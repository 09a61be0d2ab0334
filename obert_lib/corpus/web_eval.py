"""Cleaning measured on real pages: CJK-character precision and recall of what a config keeps of each page.

../shared/data/web/<page>/ holds page.txt (every visible text block of a saved page, one per line) and, for
most pages, body.txt (the main text marked by hand). Each page.txt is one document; it goes through the
corpus stage's own cleaning steps (pipeline.cleaning_steps) and paragraph split (paragraphs.ParagraphSplit),
with the paragraph dedup of one document, as `obert preprocess` runs them on a corpus of that one document.

Precision and recall are on character multisets: with K the multiset of CJK characters (U+3400-U+9FFF) of
the kept paragraphs and B that of body.txt, precision = |K ∩ B| / |K| and recall = |K ∩ B| / |B|
(Counter intersection: a character counts as many times as it occurs in both). Both sides are normalised
as the pipeline normalises documents, traditional characters converted to simplified with OpenCC (t2s).

Pages whose body is not Chinese (a Japanese page) are negatives: the config must drop them. Pages without a
body.txt are reported by kept characters only. Thresholds of the main-text rule are chosen over a small
grid (GRID) by `choose`, and `leave_one_out` chooses them without each page and scores them on it. On the
HTML path the grid also holds leaving trafilatura's main text whole (lines.main_text_on_html off).

The HTML path (`load_html_pages`): each page's text is instead what `obert preprocess` makes of its
source.html read as an HTML file (html_input.page_document decodes it, html_extract.ExtractMainText keeps
trafilatura's main text), then scored the same way. Extraction does not depend on the cleaning thresholds, so
it runs once per page and the grid and leave-one-page-out reuse it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from datatrove.data import Document

from .config import CorpusConfig
from .html_extract import EXTRACTED_KEY
from .language import identify
from .normalize import DocumentNormalizer

# What the issue measured on the four Chinese pages with a body (issue 19), for the script's table.
ISSUE_BASELINE = {"gmw": 0.95, "youth": 0.79, "qq": 0.54, "pixnet": 0.30}
ISSUE_BASELINE_MEAN = (0.64, 0.98)  # precision, recall
TRAFILATURA = (0.94, 0.98)  # trafilatura on the same pages' HTML (issue 19)
# The issue's goal: mean precision >= 0.90 at mean recall >= 0.95; for extraction from HTML plus cleaning
# (part 5), precision >= 0.95 at the same recall.
TARGET_PRECISION, TARGET_RECALL = 0.90, 0.95
TARGET_HTML_PRECISION = 0.95
# The grid the main-text thresholds are chosen from (LineRulesConfig.main_text_*): a text line from 8 to 20
# CJK characters (a short sentence to a long one), 1-5 short lines to end a block, and the largest block only
# (1.0) or also blocks with a fifth or half of its characters.
GRID = {
    "main_text_min_cjk": (8, 10, 12, 15, 20),
    "main_text_max_gap": (1, 2, 3, 4, 5),
    "main_text_min_share": (0.2, 0.5, 1.0),
}


@dataclass(frozen=True)
class Page:
    name: str
    text: str  # page.txt
    body: str | None  # body.txt, normalised as the pipeline normalises (t2s included); None without one
    chinese: bool  # whether the body is Chinese (pages without a body: True)
    html_chars: int | None = None  # HTML path: the length of the HTML that `text` was extracted from


@dataclass(frozen=True)
class PageScore:
    page: str
    kept_cjk: int
    body_cjk: int
    precision: float | None  # None when the page was dropped or has no body
    recall: float | None
    dropped: str | None  # the drop reason, or None when kept

    @property
    def f1(self) -> float:
        p, r = self.precision or 0.0, self.recall or 0.0
        return 2 * p * r / (p + r) if p + r else 0.0


class _Collect:
    """A stand-in exclusion writer that remembers the reasons of dropped documents."""

    def __init__(self):
        self.reasons: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, doc: Document, rank: int = 0) -> None:
        self.reasons.append(doc.metadata.get("filter_reason", ""))


def cjk_counter(text: str) -> Counter:
    """The multiset of CJK ideographs (U+3400-U+9FFF, as filters.cjk_count) of `text`."""
    return Counter(ch for ch in text if "\u3400" <= ch <= "\u9fff")


def kept_paragraphs(text: str, cfg: CorpusConfig, metadata: dict | None = None) -> tuple[list[str], str | None]:
    """The paragraphs `cfg` keeps of one document `text` (with `metadata`, as ExtractMainText leaves it for
    text extracted from HTML), or ([], reason) when the document is dropped."""
    from .paragraphs import ParagraphSplit
    from .pipeline import cleaning_steps

    collect = _Collect()
    docs = [Document(text=text, id="page", metadata=dict(metadata or {}))]
    for step in cleaning_steps(cfg, exclusion_writer=collect):
        docs = step.run(docs)
    docs = list(docs)
    if not docs:
        return [], collect.reasons[0] if collect.reasons else "dropped"
    paragraphs = [p.text for p in ParagraphSplit(cfg.min_paragraph_chars).run(docs)]
    if cfg.dedup.paragraphs:  # the paragraph dedup of a one-document corpus: a repeat of a long paragraph goes
        seen: set[str] = set()
        unique = []
        for para in paragraphs:
            if len(para) >= cfg.dedup.min_paragraph_chars:
                if para in seen:
                    continue
                seen.add(para)
            unique.append(para)
        paragraphs = unique
    return paragraphs, None


def score_page(page: Page, cfg: CorpusConfig) -> PageScore:
    """Precision and recall of the CJK characters `cfg` keeps of `page` (module doc)."""
    metadata = {} if page.html_chars is None else {EXTRACTED_KEY: page.html_chars}
    paragraphs, reason = kept_paragraphs(page.text, cfg, metadata)
    kept = cjk_counter("\n".join(paragraphs))
    if page.body is None:
        return PageScore(page.name, sum(kept.values()), 0, None, None, reason)
    body = cjk_counter(page.body)
    both = sum((kept & body).values())
    n_kept, n_body = sum(kept.values()), sum(body.values())
    if reason:
        return PageScore(page.name, 0, n_body, None, None, reason)
    return PageScore(page.name, n_kept, n_body, both / n_kept if n_kept else 0.0, both / n_body, None)


def load_pages(folder: Path) -> list[Page]:
    """Every page folder under `folder` (sorted by name) with its page.txt."""
    normalizer = DocumentNormalizer(True, True, True)
    pages = []
    for sub in sorted(p for p in folder.iterdir() if (p / "page.txt").is_file()):
        text = (sub / "page.txt").read_text(encoding="utf-8")
        body_file = sub / "body.txt"
        body = normalizer(body_file.read_text(encoding="utf-8")) if body_file.is_file() else None
        # whether the hand-marked body is Chinese, by the same identifier and candidates as the pipeline
        chinese = body is None or identify(body, ("zh", "ja", "ko", "en"), 1000) == "zh"
        pages.append(Page(sub.name, text, body, chinese))
    return pages


def html_main_text(path: Path, cfg: CorpusConfig) -> tuple[str, int]:
    """The main text `obert preprocess` extracts from the HTML file `path` ('' when it drops the page), and
    the length of the decoded HTML."""
    from .html_extract import ExtractMainText
    from .html_input import page_document
    from .readers import DROP_KEY

    cap = cfg.html.max_page_bytes
    with open(path, "rb") as fh:
        body = fh.read(cap + 1)
    doc = page_document(body, None, str(path), {"file": str(path)}, cap)
    if doc.metadata.get(DROP_KEY):
        return "", 0
    html_chars = len(doc.text)
    kept = list(ExtractMainText(cfg.html.favor_precision).run([doc]))
    return (kept[0].text if kept else ""), html_chars


def load_html_pages(folder: Path, cfg: CorpusConfig) -> list[Page]:
    """load_pages, each page's text being the main text extracted from its source.html (module doc)."""
    pages = []
    for page in load_pages(folder):
        if (folder / page.name / "source.html").is_file():
            text, html_chars = html_main_text(folder / page.name / "source.html", cfg)
            pages.append(replace(page, text=text, html_chars=html_chars))
    return pages


def scored(pages: list[Page]) -> list[Page]:
    """The pages precision and recall are measured on: a Chinese body."""
    return [p for p in pages if p.body is not None and p.chinese]


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def summary(scores: list[PageScore]) -> tuple[float, float]:
    """Mean precision and recall over scored pages (a dropped Chinese page counts 0 for both)."""
    return mean(s.precision or 0.0 for s in scores), mean(s.recall or 0.0 for s in scores)


def before_config(cfg: CorpusConfig) -> CorpusConfig:
    """`cfg` as the web preset was before issue 19: its line rules alone (page_furniture, main_text and
    language identification off)."""
    lines = replace(cfg.lines, page_furniture=False, main_text=False)
    return replace(cfg, lines=lines, language=replace(cfg.language, enabled=False))


def grid_configs(cfg: CorpusConfig, html: bool = False) -> list[CorpusConfig]:
    """`cfg` with main_text on and each combination of GRID's thresholds. For the HTML path (`html`), also
    whether the block rule cuts trafilatura's main text at all: first the config that leaves it whole
    (lines.main_text_on_html off), then every threshold combination with it on."""
    out = [replace(cfg, lines=replace(cfg.lines, main_text=True, main_text_on_html=False))] if html else []
    for values in itertools.product(*GRID.values()):
        lines = replace(cfg.lines, main_text=True, main_text_on_html=html, **dict(zip(GRID, values)))
        out.append(replace(cfg, lines=lines))
    return out


def thresholds(cfg: CorpusConfig) -> dict:
    """The main-text settings the grid varies, as `cfg` sets them (with main_text_on_html)."""
    return {key: getattr(cfg.lines, key) for key in (*GRID, "main_text_on_html")}


def choose(table: dict[int, dict[str, PageScore]], names: list[str]) -> int:
    """The index of the grid config to use, judged on pages `names` only: the highest mean precision among
    those reaching TARGET_RECALL, else the highest mean F1 (ties: the earlier config of the grid)."""
    best, best_key = 0, None
    for i, by_page in table.items():
        p, r = summary([by_page[n] for n in names])
        f1 = mean(by_page[n].f1 for n in names)
        key = (1, p, r) if r >= TARGET_RECALL else (0, f1, r)
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


def grid_table(pages: list[Page], configs: list[CorpusConfig]) -> dict[int, dict[str, PageScore]]:
    """Scores of every config of the grid on every scored page."""
    return {i: {p.name: score_page(p, c) for p in pages} for i, c in enumerate(configs)}


def leave_one_out(pages: list[Page], configs: list[CorpusConfig]) -> list[tuple[PageScore, dict]]:
    """For each scored page: the thresholds `choose` picks on the other pages, and that config's score on it."""
    table = grid_table(pages, configs)
    out = []
    for page in pages:
        others = [p.name for p in pages if p.name != page.name]
        i = choose(table, others)
        out.append((table[i][page.name], thresholds(configs[i])))
    return out
