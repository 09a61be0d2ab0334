"""Line-level removal rules and document-level quality rules, each with a named reason.

The measures and the cheap "cannot match" tests run as one-pass scans of obert_lib.corpus._textscan
(native/textscan.c); the regular expressions run only when a line might match them. The pure-Python
definitions are kept as `_reference_*`: they are what tests/corpus/test_native_textscan.py compares against.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import NamedTuple

from . import _textscan
from .char_class_cache import cached_classes

_CJK = re.compile(r"[\u3400-\u9fff]")
_NAV_SPLIT = re.compile(r"\s*[|｜>»›/·]\s*|\s{1,}")
_SEO_SPLIT = re.compile(r"[\s_\-|｜,，]+")
_SENTENCE_END = re.compile(r"[。！？!?]")

# Lines that are site furniture rather than content. Matched only on short lines (see
# BOILERPLATE_MAX_CHARS) so that an article sentence that merely mentions 转载 survives.
# Each pattern with the characters every match of it contains (its literals outside classes and optional
# parts): a line without all of them cannot match, which the one-pass screen of line_rules_may_apply uses.
BOILERPLATE_RULES = (
    (r"版权所有", "版权所有"),
    (r"版权声明", "版权声明"),
    (r"[Cc]opyright", "opyright"),
    (r"©", "©"),
    (r"ICP备", "ICP备"),
    (r"免责声明", "免责声明"),
    (r"转载", "转载"),
    (r"侵权", "侵权"),
    (r"责任编辑", "责任编辑"),
    (r"^\(?（?编辑[:：]", "编辑"),
    (r"^原标题[:：]", "原标题"),
    (r"^来源[:：]", "来源"),
    (r"^相关阅读", "相关阅读"),
    (r"^参考资料", "参考资料"),
    (r"^上一篇", "上一篇"),
    (r"^下一篇", "下一篇"),
    (r"分享到[:：]", "分享到"),
    (r"点击关注", "点击关注"),
    (r"^举报", "举报"),
    (r"收藏\s*\|", "收藏|"),
    (r"点赞\s*\d*$", "点赞"),
    (r"关注我们", "关注我们"),
    (r"扫码", "扫码"),
    (r"^本文", "本文"),
    (r"^声明[:：]", "声明"),
)
BOILERPLATE_PATTERNS = tuple(pattern for pattern, _ in BOILERPLATE_RULES)
BOILERPLATE_MAX_CHARS = 80  # longest footer line seen in the sample corpus is ~50 chars
_BOILERPLATE = re.compile("|".join(BOILERPLATE_PATTERNS))

SPAM_KEYWORDS = (
    "加微信",
    "代开发票",
    "领取红包",
    "免费领取",
    "低价代购",
    "点击领取",
    "日赚",
    "包过",
    "刷单",
    "微信同号",
    "欢迎来电",
    "领红包",
    "客服QQ",
    "恭喜您获得",
)

# ASCII-only character classes: \w would also eat the Chinese text around an address.
_URL = re.compile(r"(https?://|www\.)[A-Za-z0-9\-._~/?%&=#:+@!$]+", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}-\d{7,8})(?!\d)")

_SPACE = re.compile(r"\s")
_PUNCT = re.compile(r"[，。！？：；、“”‘’（）《》【】…—·,.!?:;'\"()\[\]<>/\\|~`@#$%^&*_+=\-]")
_DIGIT = re.compile(r"\d")

_REQUIRED = dict(BOILERPLATE_RULES)


def _required_chars(pattern: str) -> str:
    """The characters declared beside `pattern` in BOILERPLATE_RULES; '' (nothing required: the screen never
    rules the pattern out) for any other pattern."""
    return _REQUIRED.get(pattern, "")


# Keyword group slots of _textscan.groups_present: a keyword / pattern can only occur in a text that
# holds all of its (required) characters.
_SPAM_SLOT, _BOILERPLATE_SLOT = 0, 1


def class_chars() -> dict[str, str]:
    """The characters of each class bit that the scans of this module read (by its _textscan name), from the
    patterns they stand for; the separators of the two splits are every character some match consumes."""
    everything = _textscan.code_points(0, sys.maxunicode + 1)
    return {
        name: "".join(pattern.findall(everything))
        for name, pattern in (
            ("SPACE", _SPACE),
            ("DIGIT", _DIGIT),
            ("PUNCT", _PUNCT),
            ("CJK", _CJK),
            ("SENT_END", _SENTENCE_END),
            ("NAV_SEP", _NAV_SPLIT),
            ("SEO_SEP", _SEO_SPLIT),
        )
    }


def _mark_classes() -> None:
    """Mark the class bits and keyword groups that the scans of this module read (class_chars, kept on disk by
    char_class_cache)."""
    for name, chars in cached_classes(__file__, class_chars).items():
        _textscan.mark(chars, getattr(_textscan, name))
    _textscan.set_groups(_SPAM_SLOT, SPAM_KEYWORDS)
    _textscan.set_groups(_BOILERPLATE_SLOT, tuple(_required_chars(p) for p in BOILERPLATE_PATTERNS))


_mark_classes()


def _reference_cjk_count(text: str) -> int:
    return len(_CJK.findall(text))


def cjk_count(text: str) -> int:
    """Number of CJK ideographs in `text`."""
    return _textscan.count(text, _textscan.CJK)


def _reference_is_navigation_line(line: str) -> bool:
    if _SENTENCE_END.search(line):
        return False
    parts = [p for p in _NAV_SPLIT.split(line) if p]
    if len(parts) < 4:
        return False
    return sum(len(p) for p in parts) / len(parts) <= 4.0


def is_navigation_line(line: str) -> bool:
    """A menu/breadcrumb line: 4+ short items (<= 4 chars on average) split by | > / · or spaces, no sentence end."""
    # The non-empty items of _NAV_SPLIT.split are the runs of characters that no match of it consumes.
    items, chars, classes = _textscan.runs(line, _textscan.NAV_SEP)
    if classes & _textscan.SENT_END or items < 4:
        return False
    return chars / items <= 4.0


def _reference_is_boilerplate_line(line: str) -> bool:
    return len(line) <= BOILERPLATE_MAX_CHARS and bool(_BOILERPLATE.search(line))


def is_boilerplate_line(line: str) -> bool:
    """A copyright, disclaimer, reprint, editor, share or 'related reading' line."""
    return (
        len(line) <= BOILERPLATE_MAX_CHARS
        and _textscan.groups_present(line, _BOILERPLATE_SLOT)
        and bool(_BOILERPLATE.search(line))
    )


def _reference_is_seo_spam_line(line: str) -> bool:
    parts = [p for p in _SEO_SPLIT.split(line) if p]
    if len(parts) < 4 or _SENTENCE_END.search(line):
        return False
    for p in set(parts):
        if len(p) >= 2 and sum(p in q for q in parts) >= 3:
            return True
    return False


def is_seo_spam_line(line: str) -> bool:
    """A keyword-stuffed line: 4+ items split by spaces/_/-/| where one item is contained in 3+ others."""
    return _textscan.seo_spam(line)


def _reference_scrub_private(text: str) -> tuple[str, int]:
    total = 0
    for pattern in (_URL, _EMAIL, _PHONE):
        text, n = pattern.subn("", text)
        total += n
    return text, total


def scrub_private(text: str) -> tuple[str, int]:
    """Remove URLs, e-mail addresses and phone numbers; returns the text and how many were removed."""
    candidates = _textscan.private_candidates(text)
    if not candidates:
        return text, 0
    total = 0
    for bit, pattern in ((_textscan.MAY_URL, _URL), (_textscan.MAY_EMAIL, _EMAIL), (_textscan.MAY_PHONE, _PHONE)):
        if candidates & bit:
            text, n = pattern.subn("", text)
            total += n
    return text, total


def line_rule_bits(
    private: bool = True, spam: bool = True, boilerplate: bool = True, navigation: bool = True, seo: bool = True
) -> int:
    """The rules of cleaning.LineRules that are on, as the `rules` bits of line_rules_may_apply."""
    return (
        (_textscan.RULE_PRIVATE if private else 0)
        | (_textscan.RULE_SPAM if spam else 0)
        | (_textscan.RULE_BOILERPLATE if boilerplate else 0)
        | (_textscan.RULE_NAVIGATION if navigation else 0)
        | (_textscan.RULE_SEO if seo else 0)
    )


def line_rules_may_apply(text: str, rules: int) -> bool:
    """Whether a line rule that `rules` turns on could change `text` (one scan; False: cleaning.LineRules would only
    drop the spaces between CJK characters). Each test is a necessary condition of its rule: a URL/e-mail/phone
    candidate or whitespace that normalize_whitespace changes; the characters of a spam keyword; per line, a short
    line with a boilerplate pattern's required characters, a navigation line, an SEO-spam line."""
    return _textscan.line_rules_may_apply(text, rules, _SPAM_SLOT, _BOILERPLATE_SLOT, BOILERPLATE_MAX_CHARS)


def _reference_non_space_count(text: str) -> int:
    return len(text) - len(_SPACE.findall(text))


def non_space_count(text: str) -> int:
    """Number of non-whitespace characters."""
    return len(text) - _textscan.count(text, _textscan.SPACE)


def _reference_cjk_ratio(text: str) -> float:
    chars = _reference_non_space_count(text)
    return _reference_cjk_count(text) / chars if chars else 0.0


def cjk_ratio(text: str) -> float:
    """CJK ideographs over non-space characters (0 for empty text)."""
    cjk, space, _, _ = _textscan.class_counts(text)
    chars = len(text) - space
    return cjk / chars if chars else 0.0


def _reference_top_char_fraction(text: str) -> float:
    counts = Counter(text)
    for ws in [c for c in counts if c.isspace()]:
        del counts[ws]
    total = sum(counts.values())
    return max(counts.values()) / total if total else 0.0


def top_char_fraction(text: str) -> float:
    """Share of the single most frequent non-space character: high for '哈哈哈…' or symbol noise."""
    total = non_space_count(text)
    return _textscan.top_count(text) / total if total else 0.0


def _reference_duplicate_line_fraction(text: str) -> float:
    lines = [line for line in text.split("\n") if line]
    return (len(lines) - len(set(lines))) / len(lines) if lines else 0.0


def duplicate_line_fraction(text: str) -> float:
    """Fraction of lines that repeat an earlier line of the same document (Gopher's dup_line_frac, Rae et al. 2021)."""
    if "\n" not in text:  # at most one line
        return 0.0
    return _reference_duplicate_line_fraction(text)


def _reference_spam_keyword_hits(text: str) -> int:
    return sum(text.count(k) for k in SPAM_KEYWORDS)


def spam_keyword_hits(text: str) -> int:
    """How many spam keywords occur in the text."""
    if not _textscan.groups_present(text, _SPAM_SLOT):  # no keyword has all its characters in the text
        return 0
    return _reference_spam_keyword_hits(text)


def _reference_punctuation_ratio(text: str) -> float:
    chars = _reference_non_space_count(text)
    return len(_PUNCT.findall(text)) / chars if chars else 0.0


def punctuation_ratio(text: str) -> float:
    """Punctuation characters over non-space characters (symbol soup and keyword lists score high)."""
    _, space, punct, _ = _textscan.class_counts(text)
    chars = len(text) - space
    return punct / chars if chars else 0.0


def _reference_digit_ratio(text: str) -> float:
    chars = _reference_non_space_count(text)
    return len(_DIGIT.findall(text)) / chars if chars else 0.0


def digit_ratio(text: str) -> float:
    """Digits over non-space characters (tables of numbers, phone lists, timetables score high)."""
    _, space, _, digit = _textscan.class_counts(text)
    chars = len(text) - space
    return digit / chars if chars else 0.0


def _reference_duplicate_ngram_char_fraction(text: str, n: int = 10) -> float:
    clean = "".join(text.split())
    if len(clean) < 2 * n:
        return 0.0
    first_seen: dict[str, int] = {}
    covered = bytearray(len(clean))
    for i in range(len(clean) - n + 1):
        gram = clean[i : i + n]
        j = first_seen.setdefault(gram, i)
        if j != i:
            covered[j : j + n] = b"\x01" * n
            covered[i : i + n] = b"\x01" * n
    return sum(covered) / len(clean)


def duplicate_ngram_char_fraction(text: str, n: int = 10) -> float:
    """Share of characters inside character n-grams that occur more than once (Gopher's
    dup_n_gram_char_frac, Rae et al. 2021, with characters in place of words for Chinese)."""
    if type(n) is not int or n < 1:  # the reference's own behaviour for odd n (n <= 0 divides by zero)
        return _reference_duplicate_ngram_char_fraction(text, n)
    chars = non_space_count(text)
    return _textscan.ngram_covered(text, n) / chars if chars >= 2 * n else 0.0


class QualityMetrics(NamedTuple):
    """Every document measure of QualityFilter, each equal to the function of the same name."""

    cjk_count: int
    non_space_count: int
    cjk_ratio: float
    top_char_fraction: float
    duplicate_line_fraction: float
    punctuation_ratio: float
    digit_ratio: float
    duplicate_ngram_char_fraction: float


def quality_metrics(text: str, n: int = 10) -> QualityMetrics:
    """All quality measures of a document in one character scan (n: the n-gram size of
    duplicate_ngram_char_fraction); cheaper than calling the functions one by one."""
    if type(n) is not int or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    cjk, space, punct, digit, top, covered = _textscan.metrics(text, n)
    chars = len(text) - space
    dup_lines = _reference_duplicate_line_fraction(text) if "\n" in text else 0.0
    if not chars:
        return _new_metrics(QualityMetrics, (cjk, 0, 0.0, 0.0, dup_lines, 0.0, 0.0, 0.0))
    # tuple.__new__ straight away: the NamedTuple's own __new__ is a Python function (a frame per document)
    return _new_metrics(
        QualityMetrics,
        (
            cjk,
            chars,
            cjk / chars,
            top / chars,
            dup_lines,
            punct / chars,
            digit / chars,
            covered / chars if chars >= 2 * n else 0.0,
        ),
    )


_new_metrics = tuple.__new__
