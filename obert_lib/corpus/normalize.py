"""Text normalisation steps: HTML remnants, NFKC (keeping Chinese punctuation), control chars, whitespace, t2s."""
from __future__ import annotations

import functools
import html
import re
import unicodedata

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^<>]*>")
# Full-width Chinese punctuation that NFKC would fold to ASCII (，-> ,); Chinese BERT vocabularies
# and fine-tuning inputs use the full-width forms, so they are kept as they are.
_CJK_PUNCT = "，。！？：；（）【】《》「」『』、～“”‘’—…·"
_NOT_CJK_PUNCT_RUN = re.compile(f"[^{re.escape(_CJK_PUNCT)}]+")
# Every Cc/Cf code point except \n and \t, as one character class (built once from the Unicode tables).
def _control_class() -> str:
    ranges: list[list[int]] = []
    for c in range(0x30000):  # Cc/Cf beyond U+30000 are only tags (E0001-E007F), added below
        if unicodedata.category(chr(c)) in ("Cc", "Cf") and chr(c) not in "\n\t":
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    ranges.append([0xE0001, 0xE007F])
    return "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"


_CONTROL = re.compile(_control_class())
_SPACES = re.compile(r"[ \t\u3000\xa0]+")
_SPACE_BETWEEN_CJK = re.compile(r"(?<=[\u3400-\u9fff，。！？：；、]) (?=[\u3400-\u9fff，。！？：；、])")


def strip_html(text: str) -> str:
    """Remove HTML tags, then decode entities (&nbsp; &amp; ...); <br>/<p> become line breaks."""
    text = re.sub(r"<\s*(br|/p|p|/div|div)\b[^<>]*>", "\n", text, flags=re.I)
    text = _TAG.sub("", text)
    return html.unescape(text)


def nfkc_keep_cjk_punct(text: str) -> str:
    """Unicode NFKC (full-width ASCII -> half-width, compatibility forms), except Chinese punctuation."""
    return _NOT_CJK_PUNCT_RUN.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


def remove_control_chars(text: str) -> str:
    """Drop zero-width and control characters (Unicode category Cc/Cf) except newline and tab."""
    return _CONTROL.sub("", text)


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces (full-width too), strip lines, drop empty lines."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def remove_spaces_between_cjk(text: str) -> str:
    """Drop single spaces between CJK characters (scraping artefacts); run after line rules, which use them."""
    return _SPACE_BETWEEN_CJK.sub("", text)


@functools.lru_cache(maxsize=1)
def _t2s_converter():
    import opencc

    return opencc.OpenCC("t2s")


def traditional_to_simplified(text: str) -> str:
    """Convert traditional characters to simplified with OpenCC's t2s table."""
    return _t2s_converter().convert(text)
