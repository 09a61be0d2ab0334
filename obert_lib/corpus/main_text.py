"""The main text block of a page: lines outside it (menus, teaser lists, comments, footers) are removed.

A page dumped as text (one visible block per line) holds its article as one run of long lines, with short
lines (menu items, share buttons, dates) and runs of mid-length teasers around it. As in Body Text
Extraction (Finn, Kushmerick and Smyth 2001) and jusText's context rules (Pomikálek 2011), a line is judged
with its neighbours rather than alone:

- a *text line* has at least `min_cjk` CJK characters;
- a *block* runs from a text line to the last text line before `max_gap` other lines in a row (lines
  without any CJK character, such as '#1', '>' or an image file name, are markup debris and do not count);
- the block with the most CJK characters is the main text, and so is any block with at least
  `min_share` of that; everything outside the kept blocks is removed (reason `outside_main_text`), the
  short lines inside them (subheadings, captions) stay.

Text that trafilatura extracted from an HTML page (html_extract.py) is already that page's main text: the
rule leaves it whole (counted as documents_main_text_by_trafilatura) unless `on_html` asks otherwise.

The thresholds are chosen on the hand-marked pages of ../shared/data/web (web_eval.py), and reported
leave-one-page-out there, so that they are not tuned to the pages they are scored on.
"""

from __future__ import annotations

from time import perf_counter

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from . import filters
from .html_extract import EXTRACTED_KEY
from .step_stats import report_step_time

REASON = "outside_main_text"


def main_text_blocks(lines: list[str], min_cjk: int, max_gap: int, min_share: float) -> list[tuple[int, int]]:
    """The kept blocks of `lines` as inclusive (first, last) line indexes, in order."""
    counts = [filters.cjk_count(line) for line in lines]
    blocks: list[tuple[int, int]] = []
    start = last = -1
    gap = 0
    for i, n in enumerate(counts):
        if n >= min_cjk:
            if start < 0 or gap >= max_gap:
                if start >= 0:
                    blocks.append((start, last))
                start = i
            last, gap = i, 0
        elif n:
            gap += 1
    if start >= 0:
        blocks.append((start, last))
    if not blocks:
        return []
    mass = [sum(counts[a : b + 1]) for a, b in blocks]
    floor = min_share * max(mass)
    return [block for block, m in zip(blocks, mass) if m >= floor]


def main_text_mask(lines: list[str], min_cjk: int, max_gap: int, min_share: float) -> list[bool]:
    """For each line, whether it lies in a kept block (see the module doc)."""
    keep = [False] * len(lines)
    for a, b in main_text_blocks(lines, min_cjk, max_gap, min_share):
        keep[a : b + 1] = [True] * (b + 1 - a)
    return keep


class MainTextBlocks(PipelineStep):
    """Remove the lines outside a document's main text block(s); counted as line_removed_outside_main_text.

    A document without any text line (every line under `min_cjk` CJK characters) is left as it is: the
    quality rules then drop it as too short, under their own reason.
    """

    name = "main text"
    type = "✂️ - FORMATTER"

    def __init__(self, min_cjk: int = 10, max_gap: int = 4, min_share: float = 1.0, on_html: bool = False):
        super().__init__()
        self.min_cjk, self.max_gap, self.min_share = min_cjk, max_gap, min_share
        self.on_html = on_html  # also cut the main text trafilatura extracted (lines.main_text_on_html)

    def clean(self, text: str) -> tuple[str, int]:
        """`text` without the lines outside its main text, and how many lines were removed."""
        lines = text.split("\n")
        keep = main_text_mask(lines, self.min_cjk, self.max_gap, self.min_share)
        if not any(keep):
            return text, 0
        kept = [line for line, k in zip(lines, keep) if k]
        removed = sum(1 for line, k in zip(lines, keep) if not k and line.strip())
        return "\n".join(kept), removed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        spent = 0.0
        removed_total = extracted = 0
        for doc in data:
            if not self.on_html and EXTRACTED_KEY in doc.metadata:
                extracted += 1
                yield doc
                continue
            start = perf_counter()
            doc.text, removed = self.clean(doc.text)
            removed_total += removed
            spent += perf_counter() - start
            yield doc
        if removed_total:
            self.stat_update(f"line_removed_{REASON}", value=removed_total)
        if extracted:
            self.stat_update("documents_main_text_by_trafilatura", value=extracted)
        report_step_time(self, spent)
