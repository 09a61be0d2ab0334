"""Line rules for the furniture of a page dumped as text, each with a named reason (lines.page_furniture).

These complement filters.py's rules (menus, footers, spam), which judge short lines by keywords; the lines
here are recognised by their form, so that no site's wording is needed:

- `title_with_site_suffix`: a page title with its channel and site glued on, 'Headline_Channel_Site' or
  'Headline - Site' (two or more such separators, every part after the first short);
- `byline`: a date or time with little else, the publication line of a news page ('发稿时间：2017-03-10
  08:42', '2017-03-10 09:58 来源：某某网');
- `truncated_teaser`: a short link text cut off with an ellipsis and no sentence in it, as related-article
  lists print headlines ('江苏最大规模作弊案27人获刑涉案考生达50...');
- `rights_notice`: a reprint prohibition or rights warning of any length ('未经授权，不得转载、摘编',
  '违者必究'), which filters.py's boilerplate rule catches only up to its 80 characters.
"""

from __future__ import annotations

import re
from time import perf_counter

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from . import filters
from .step_stats import report_step_time

# Separators of a title's parts: underscore, pipe (ASCII or full width), or a dash with spaces around it.
_TITLE_SEP = re.compile(r"\s*(?:_|\||｜|\s[-—–]\s)\s*")
# Channel and site names ('教育频道', '中国青年网', '腾讯网', 'PIXNET') are short; 12 characters leave room for
# 'Yahoo!ニュース'-length names and keep clauses of prose (a sentence part is longer) out.
TITLE_PART_MAX_CHARS = 12
_DATE = re.compile(r"(?<!\d)(?:19|20)\d\d\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}(?!\d)|(?<!\d)\d{1,2}:\d\d(?!\d)")
# A byline is a date or time with a few words ('来源：某某网', '发稿时间'); 15 CJK characters leave a source name
# in and keep out a sentence that merely mentions a date.
BYLINE_MAX_CJK = 15
# A headline cut by a site's template ends in exactly "..." or one "…" right after a word; chatty prose trails
# off with longer runs ("......", "……") or after a space.
_ELLIPSIS_END = re.compile(r"[^\s.…](?:\.{3}|…)$")
_SENTENCE = re.compile(r"[。！？!?；;]")
# Related-article teasers are headlines cut at a fixed width, 10-30 characters on the pages of
# ../shared/data/web; a line of prose cut with an ellipsis is longer or holds a sentence end.
TEASER_MAX_CHARS = 40
# The wording of a reprint prohibition: without permission ... may not ... reprint; or a warning of legal
# action. An article about copyright reports such rules in other words ('未经授权转载构成侵权' has no 不得).
_RIGHTS = re.compile(
    r"(?:未经|未获).{0,20}?(?:授权|许可|同意).{0,20}?(?:不得|禁止|严禁|谢绝).{0,10}?(?:转载|复制|摘编|转贴|使用)"
    r"|违者必究|盗用必究|追究.{0,8}法律责任"
)


def is_title_with_site_suffix(line: str) -> bool:
    """'Headline_Channel_Site': 2+ title separators, every part after the first at most TITLE_PART_MAX_CHARS."""
    parts = [p for p in _TITLE_SEP.split(line.strip()) if p]
    if len(parts) < 3:
        return False
    return all(len(p) <= TITLE_PART_MAX_CHARS for p in parts[1:])


def is_byline(line: str) -> bool:
    """A date or time with at most BYLINE_MAX_CJK CJK characters and no sentence end."""
    return bool(_DATE.search(line)) and filters.cjk_count(line) <= BYLINE_MAX_CJK and not _SENTENCE.search(line)


def is_truncated_teaser(line: str) -> bool:
    """A line of at most TEASER_MAX_CHARS characters ending in an ellipsis, without a sentence end."""
    text = line.strip()
    return len(text) <= TEASER_MAX_CHARS and bool(_ELLIPSIS_END.search(text)) and not _SENTENCE.search(text)


def is_rights_notice(line: str) -> bool:
    """A reprint prohibition ('未经...授权...不得...转载') or a warning of legal action ('违者必究')."""
    return bool(_RIGHTS.search(line))


RULES = (
    ("title_with_site_suffix", is_title_with_site_suffix),
    ("byline", is_byline),
    ("truncated_teaser", is_truncated_teaser),
    ("rights_notice", is_rights_notice),
)


def line_reason(line: str) -> str | None:
    """The reason the first matching rule gives `line`, or None when no rule matches."""
    for reason, rule in RULES:
        if rule(line):
            return reason
    return None


class PageLineRules(PipelineStep):
    """Remove page-furniture lines (module doc); each counted as line_removed_<reason>."""

    name = "page lines"
    type = "✂️ - FORMATTER"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        spent = 0.0
        removed: dict[str, int] = {}
        for doc in data:
            start = perf_counter()
            kept = []
            for line in doc.text.split("\n"):
                reason = line_reason(line)
                if reason is None:
                    kept.append(line)
                else:
                    removed[reason] = removed.get(reason, 0) + 1
            doc.text = "\n".join(kept)
            spent += perf_counter() - start
            yield doc
        for reason, n in removed.items():
            self.stat_update(f"line_removed_{reason}", value=n)
        report_step_time(self, spent)
