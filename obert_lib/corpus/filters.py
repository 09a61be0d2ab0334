"""Line-level removal rules and document-level quality rules, each with a named reason."""
from __future__ import annotations

import re
from collections import Counter

_CJK = re.compile(r"[\u3400-\u9fff]")
_NAV_SPLIT = re.compile(r"\s*[|｜>»›/·]\s*|\s{1,}")
_SENTENCE_END = re.compile(r"[。！？!?]")

# Lines that are site furniture rather than content. Matched only on short lines (see
# BOILERPLATE_MAX_CHARS) so that an article sentence that merely mentions 转载 survives.
BOILERPLATE_PATTERNS = (
    r"版权所有", r"版权声明", r"[Cc]opyright", r"©", r"ICP备", r"免责声明", r"转载", r"侵权",
    r"责任编辑", r"^\(?（?编辑[:：]", r"^原标题[:：]", r"^来源[:：]", r"^相关阅读", r"^参考资料",
    r"^上一篇", r"^下一篇", r"分享到[:：]", r"点击关注", r"^举报", r"收藏\s*\|", r"点赞\s*\d*$",
    r"关注我们", r"扫码", r"^本文", r"^声明[:：]",
)
BOILERPLATE_MAX_CHARS = 80  # longest footer line seen in the sample corpus is ~50 chars
_BOILERPLATE = re.compile("|".join(BOILERPLATE_PATTERNS))

SPAM_KEYWORDS = ("加微信", "代开发票", "领取红包", "免费领取", "低价代购", "点击领取", "日赚", "包过", "刷单", "微信同号", "欢迎来电", "领红包", "客服QQ", "恭喜您获得")

# ASCII-only character classes: \w would also eat the Chinese text around an address.
_URL = re.compile(r"(https?://|www\.)[A-Za-z0-9\-._~/?%&=#:+@!$]+", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}-\d{7,8})(?!\d)")


def cjk_count(text: str) -> int:
    """Number of CJK ideographs in `text`."""
    return len(_CJK.findall(text))


def is_navigation_line(line: str) -> bool:
    """A menu/breadcrumb line: 4+ short items (<= 4 chars on average) split by | > / · or spaces, no sentence end."""
    if _SENTENCE_END.search(line):
        return False
    parts = [p for p in _NAV_SPLIT.split(line) if p]
    if len(parts) < 4:
        return False
    return sum(len(p) for p in parts) / len(parts) <= 4.0


def is_boilerplate_line(line: str) -> bool:
    """A copyright, disclaimer, reprint, editor, share or 'related reading' line."""
    return len(line) <= BOILERPLATE_MAX_CHARS and bool(_BOILERPLATE.search(line))


def is_seo_spam_line(line: str) -> bool:
    """A keyword-stuffed line: 4+ items split by spaces/_/-/| where one item is contained in 3+ others."""
    parts = [p for p in re.split(r"[\s_\-|｜,，]+", line) if p]
    if len(parts) < 4 or _SENTENCE_END.search(line):
        return False
    for p in set(parts):
        if len(p) >= 2 and sum(p in q for q in parts) >= 3:
            return True
    return False


def scrub_private(text: str) -> tuple[str, int]:
    """Remove URLs, e-mail addresses and phone numbers; returns the text and how many were removed."""
    total = 0
    for pattern in (_URL, _EMAIL, _PHONE):
        text, n = pattern.subn("", text)
        total += n
    return text, total


_SPACE = re.compile(r"\s")


def non_space_count(text: str) -> int:
    """Number of non-whitespace characters."""
    return len(text) - len(_SPACE.findall(text))


def cjk_ratio(text: str) -> float:
    """CJK ideographs over non-space characters (0 for empty text)."""
    chars = non_space_count(text)
    return cjk_count(text) / chars if chars else 0.0


def top_char_fraction(text: str) -> float:
    """Share of the single most frequent non-space character: high for '哈哈哈…' or symbol noise."""
    counts = Counter(text)
    for ws in [c for c in counts if c.isspace()]:
        del counts[ws]
    total = sum(counts.values())
    return max(counts.values()) / total if total else 0.0


def duplicate_line_fraction(text: str) -> float:
    """Fraction of lines that repeat an earlier line of the same document (Gopher's dup_line_frac)."""
    lines = [l for l in text.split("\n") if l]
    return (len(lines) - len(set(lines))) / len(lines) if lines else 0.0


def spam_keyword_hits(text: str) -> int:
    """How many spam keywords occur in the text."""
    return sum(text.count(k) for k in SPAM_KEYWORDS)


_PUNCT = re.compile(r"[，。！？：；、“”‘’（）《》【】…—·,.!?:;'\"()\[\]<>/\\|~`@#$%^&*_+=\-]")
_DIGIT = re.compile(r"\d")


def punctuation_ratio(text: str) -> float:
    """Punctuation characters over non-space characters (symbol soup and keyword lists score high)."""
    chars = non_space_count(text)
    return len(_PUNCT.findall(text)) / chars if chars else 0.0


def digit_ratio(text: str) -> float:
    """Digits over non-space characters (tables of numbers, phone lists, timetables score high)."""
    chars = non_space_count(text)
    return len(_DIGIT.findall(text)) / chars if chars else 0.0


def duplicate_ngram_char_fraction(text: str, n: int = 10) -> float:
    """Share of characters inside character n-grams that occur more than once (Gopher's
    dup_n_gram_char_frac, Rae et al. 2021, with characters in place of words for Chinese)."""
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
