"""Text normalisation steps: HTML remnants, NFKC (keeping Chinese punctuation), control chars, whitespace, t2s.

Each step first asks a one-pass scan of obert_lib.corpus._textscan (native/textscan.c) whether it can change
the text at all and returns the text as it is when it cannot; otherwise it runs its pure-Python reference
(`_reference_*` below; remove_spaces_between_cjk is done in C outright). tests/corpus/test_native_textscan.py checks
that results equal the references'. The scans' character classes are marked at import from the reference
patterns and the Unicode tables themselves (from OpenCC's dictionaries at the first t2s call).
"""

from __future__ import annotations

import functools
import html
import json
import re
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

from . import _textscan
from .char_class_cache import cached_classes

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


_SPACES = re.compile(r"[ \t\u3000\xa0]+")  # textscan.c whitespace_is_normal knows these four characters
_CJK_OR_STOP = r"[\u3400-\u9fff，。！？：；、]"  # a space between two of these is a scraping artefact
_SPACE_BETWEEN_CJK = re.compile(f"(?<={_CJK_OR_STOP}) (?={_CJK_OR_STOP})")

# No code point from U+30000 on has a decomposition or a non-zero combining class (Unicode 14, the tables of
# Python 3.11; tests/corpus/test_native_textscan.py checks the whole range), so NFKC leaves all of them alone.
_DECOMPOSABLE_BELOW = 0x30000


def _nfkc_unstable_chars() -> str:
    """Characters that NFKC may change, or that may change with a neighbour: NFKC of the char differs from it,
    a non-zero combining class (canonical reordering), or a char that may compose with the one before it (any
    but the first char of a canonical decomposition, and the jamo of Hangul syllables). A str without them has
    only NFKC_QC=Yes characters of combining class 0, so it and all its parts are NFKC-normalised (UAX #15,
    quick check). Chinese punctuation is left out: nfkc_keep_cjk_punct never normalises it."""
    chars = []
    for c in _textscan.code_points(0, _DECOMPOSABLE_BELOW):
        decomposition = unicodedata.decomposition(c)  # NFKC(c) == c when c has none
        if unicodedata.combining(c) or (decomposition and unicodedata.normalize("NFKC", c) != c):
            chars.append(c)
        if decomposition and not decomposition.startswith("<"):
            chars.extend(chr(int(h, 16)) for h in decomposition.split()[1:])
    chars.extend(unicodedata.normalize("NFD", _textscan.code_points(0xAC00, 0xD7A4)))  # all Hangul syllables
    return "".join(c for c in chars if c not in _CJK_PUNCT)


def class_chars() -> dict[str, str]:
    """The characters of each class bit that the scans of this module read (by its _textscan name), from the
    patterns and the Unicode tables they stand for; "control_pattern" is the regex of _reference_remove_control."""
    everything = _textscan.code_points(0, sys.maxunicode + 1)
    control = _control_class()
    return {
        "control_pattern": control,
        "SPACE": "".join(re.findall(r"\s", everything)),
        "CONTROL": "".join(re.findall(control, everything)),
        "NFKC": _nfkc_unstable_chars(),
        "CJK_STOP": "".join(re.findall(_CJK_OR_STOP, everything)),
        "HTML": "<&",  # strip_html changes nothing in a text without a tag or an entity
    }


def _mark_classes() -> re.Pattern:
    """Mark the class bits that the scans of this module read (class_chars, kept on disk by char_class_cache);
    returns the compiled control-character pattern."""
    classes = cached_classes(__file__, class_chars)
    for name, chars in classes.items():
        if name != "control_pattern":
            _textscan.mark(chars, getattr(_textscan, name))
    return re.compile(classes["control_pattern"])


_CONTROL = _mark_classes()  # every Cc/Cf code point but \n and \t


def _reference_strip_html(text: str) -> str:
    text = re.sub(r"<\s*(br|/p|p|/div|div)\b[^<>]*>", "\n", text, flags=re.I)
    text = _TAG.sub("", text)
    return html.unescape(text)


def strip_html(text: str) -> str:
    """Remove HTML tags, then decode entities (&nbsp; &amp; ...); <br>/<p> become line breaks."""
    if "<" not in text and "&" not in text:  # no tag, no entity
        return text
    return _reference_strip_html(text)


def _reference_nfkc_keep_cjk_punct(text: str) -> str:
    return _NOT_CJK_PUNCT_RUN.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)


def nfkc_keep_cjk_punct(text: str) -> str:
    """Unicode NFKC (full-width ASCII -> half-width, compatibility forms), except Chinese punctuation."""
    if not _textscan.has(text, _textscan.NFKC):  # every run between Chinese punctuation is NFKC already
        return text
    return _reference_nfkc_keep_cjk_punct(text)


def _reference_remove_control_chars(text: str) -> str:
    return _CONTROL.sub("", text)


def remove_control_chars(text: str) -> str:
    """Drop zero-width and control characters (Unicode category Cc/Cf) except newline and tab."""
    if not _textscan.has(text, _textscan.CONTROL):
        return text
    return _reference_remove_control_chars(text)


def _reference_normalize_whitespace(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces (full-width too), strip lines, drop empty lines."""
    if _textscan.whitespace_is_normal(text):
        return text
    return _reference_normalize_whitespace(text)


def _reference_remove_spaces_between_cjk(text: str) -> str:
    return _SPACE_BETWEEN_CJK.sub("", text)


def remove_spaces_between_cjk(text: str) -> str:
    """Drop single spaces between CJK characters (scraping artefacts); run after line rules, which use them."""
    return _textscan.drop_spaces_between(text, _textscan.CJK_STOP)


def _opencc_dictionary_entries(config: Path) -> list[tuple[str, str]] | None:
    """(key, first value) of every entry of every dictionary an OpenCC config uses, dumped to text with the
    opencc_dict tool of the opencc package; None when a dictionary or the tool cannot be read."""
    import opencc

    tool = Path(opencc.__file__).parent / "clib" / "bin" / "opencc_dict"
    files: list[tuple[Path, str]] = []

    def collect(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append((config.parent / node["file"], node.get("type", "")))
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    try:
        collect(json.loads(config.read_text(encoding="utf-8")))
        entries = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, (path, kind) in enumerate(files):
                if kind in ("ocd2", "ocd"):
                    dumped = Path(tmp) / f"{i}.txt"
                    subprocess.run(
                        [str(tool), "-i", str(path), "-o", str(dumped), "-f", kind, "-t", "text"],
                        check=True,
                        capture_output=True,
                    )
                elif kind == "text":
                    dumped = path
                else:
                    return None
                for line in dumped.read_text(encoding="utf-8").splitlines():
                    key, values = line.split("\t", 1)
                    entries.append((key, values.split(" ")[0]))
        return entries
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None


def _t2s_trigger_chars(entries: list[tuple[str, str]]) -> str:
    """Characters at least one of which is in every dictionary key that OpenCC replaces by something else.

    OpenCC only ever replaces a dictionary key by its value, so a text containing none of these characters
    contains no such key and converts to itself. All single-character keys that change are taken; the
    phrase keys left (答覆 -> 答复: 覆 alone stays 覆) are covered greedily, preferring characters that are
    keys themselves (覆, 沈, 藉, ...), which are rare in simplified text.
    """
    changing = list(dict.fromkeys(key for key, value in entries if key != value))
    keys = {key for key, _ in entries if len(key) == 1}
    chars = {key for key in changing if len(key) == 1}
    rest = [key for key in changing if chars.isdisjoint(key)]
    while rest:
        counts = Counter(c for key in rest for c in set(key))
        best = max(sorted(counts), key=lambda c: (counts[c], c in keys))
        chars.add(best)
        rest = [key for key in rest if best not in key]
    return "".join(sorted(chars))


@functools.lru_cache(maxsize=1)
def _t2s_converter():
    """OpenCC's t2s converter; loading it marks the T2S class (every char when the dictionaries cannot be read)."""
    import opencc

    converter = opencc.OpenCC("t2s")
    entries = _opencc_dictionary_entries(Path(converter.config))
    triggers = _t2s_trigger_chars(entries) if entries is not None else _textscan.code_points(0, sys.maxunicode + 1)
    _textscan.mark(triggers, _textscan.T2S)
    _textscan.mark(_textscan.code_points(0xD800, 0xE000), _textscan.T2S)  # surrogates: OpenCC raises on them
    return converter


def _reference_traditional_to_simplified(text: str) -> str:
    return _t2s_converter().convert(text)


def traditional_to_simplified(text: str) -> str:
    """Convert traditional characters to simplified with OpenCC's t2s table."""
    converter = _t2s_converter()
    if not _textscan.has(text, _textscan.T2S):  # no character of any key that t2s converts
        return text
    return converter.convert(text)


def _reference_normalize_document(text: str, html: bool = True, nfkc: bool = True, t2s: bool = True) -> str:
    if html:
        text = _reference_strip_html(text)
    if nfkc:
        text = _reference_nfkc_keep_cjk_punct(text)
    text = _reference_remove_control_chars(text)
    if t2s:
        text = _reference_traditional_to_simplified(text)
    return _reference_normalize_whitespace(text)


class DocumentNormalizer:
    """cleaning.Normalize on one text: HTML, NFKC, t2s as enabled, and always control characters and whitespace.

    One scan first: a text with none of the enabled steps' trigger characters and normal whitespace is returned
    as it is (each step would return it unchanged, so every later step would see it unchanged too). Most
    documents take this path, one C call instead of five Python calls.
    """

    def __init__(self, html: bool = True, nfkc: bool = True, t2s: bool = True):
        self.html, self.nfkc, self.t2s = html, nfkc, t2s
        self.triggers = (
            _textscan.CONTROL
            | (_textscan.HTML if html else 0)
            | (_textscan.NFKC if nfkc else 0)
            | (_textscan.T2S if t2s else 0)
        )
        if t2s:
            _t2s_converter()  # loading it marks the T2S class

    def __call__(self, text: str) -> str:
        if _textscan.is_clean(text, self.triggers):
            return text
        if self.html:
            text = strip_html(text)
        if self.nfkc:
            text = nfkc_keep_cjk_punct(text)
        text = remove_control_chars(text)
        if self.t2s:
            text = traditional_to_simplified(text)
        return normalize_whitespace(text)
