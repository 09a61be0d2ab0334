"""Decoding a web page's bytes: the declared charset when it holds, detection when it is missing or lies.

The rule, in order (after the HTML Standard's "determining the character encoding", §13.2.3.2, and the
WHATWG Encoding Standard's label table):

1. A byte order mark (UTF-8, UTF-16) decides.
2. The declared charset: the HTTP header's `Content-Type: ...; charset=X` (WARC response records), else a
   `<meta charset=X>` or `<meta http-equiv="Content-Type" content="...; charset=X">` in the first
   META_PRESCAN_BYTES of the page. Labels are mapped as the Encoding Standard maps them: gb2312, gbk,
   cp936, x-gbk ... decode as GB18030 (a superset of both: a page labelled GB2312 that uses a GBK-only
   character, common on Chinese sites, still decodes); big5 as Big5-HKSCS; latin1 / ascii as
   windows-1252. An unknown label counts as no declaration.
3. The declaration lies when (a) it names a legacy charset but the bytes are valid UTF-8 with non-ASCII
   bytes (a page re-encoded to UTF-8 that kept its old meta tag; GBK text is valid UTF-8 by chance only
   for a few bytes, not a page), or (b) decoding with it fails. Then, as without a declaration: valid
   UTF-8 is UTF-8, else faust-cchardet (uchardet, the detector datatrove's WarcReader uses) guesses.
4. When no strict decoding succeeds, the best candidate (declared, else detected) decodes with U+FFFD for
   the bad bytes, accepted when they are at most MAX_REPLACED_FRACTION of the characters (a stray byte or a
   multi-byte character cut at a buffer edge); otherwise the page is undecodable (None).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# The HTML Standard's prescan reads 1024 bytes; 4 KB also finds a meta tag after a long comment or script
# in the head. A declaration further on is missed and the page decodes as undeclared (UTF-8 or detected).
META_PRESCAN_BYTES = 4096
# 1%: a long page with a handful of broken bytes is kept; a page decoded with the wrong charset, where most
# non-ASCII characters break, is not.
MAX_REPLACED_FRACTION = 0.01

# Encoding Standard labels whose decoder is GB18030's (gbk and gb2312 labels get the GBK decoder, which
# decodes GB18030's two-byte range; Python's gb18030 codec is the superset), Big5's and windows-1252's.
_LABELS = {
    **dict.fromkeys(
        (
            "gb2312",
            "gb_2312",
            "gb_2312-80",
            "gbk",
            "x-gbk",
            "cp936",
            "ms936",
            "windows-936",
            "chinese",
            "csgb2312",
            "csiso58gb231280",
            "iso-ir-58",
            "gb18030",
        ),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"), "big5hkscs"),
    **dict.fromkeys(("iso-8859-1", "latin1", "l1", "ascii", "us-ascii", "iso8859-1", "cp1252"), "cp1252"),
}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_META = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # Python codec name used
    source: str  # "bom", "declared", "utf-8" (valid UTF-8, no usable declaration) or "detected"
    declared: str | None  # the declared label as given, or None
    declaration_wrong: bool  # a declaration was given and the rule (module doc, 3) overruled it
    replaced: int = 0  # bytes decoded as U+FFFD (rule 4)


def encoding_of_label(label: str | None) -> str | None:
    """The Python codec for a charset label (Encoding Standard mapping for the Chinese and Latin labels)."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _LABELS:
        return _LABELS[label]
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return "gb18030" if name in ("gb2312", "gbk") else name


def charset_in_content_type(content_type: str | None) -> str | None:
    """The charset label of a Content-Type header value ('text/html; charset=GBK' -> 'GBK'), or None."""
    if not content_type:
        return None
    found = _CHARSET.search(content_type.encode("latin-1", "replace"))
    return found.group(1).decode("ascii") if found else None


def meta_charset(body: bytes) -> str | None:
    """The charset label of the first `<meta>` declaring one within META_PRESCAN_BYTES, or None."""
    for tag in _META.finditer(body[:META_PRESCAN_BYTES]):
        found = _CHARSET.search(tag.group(0))
        if found:
            return found.group(1).decode("ascii")
    return None


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def detect_encoding(body: bytes) -> str | None:
    """faust-cchardet's guess as a Python codec (GB2312 / GBK guesses as GB18030), or None."""
    import cchardet

    return encoding_of_label(cchardet.detect(body).get("encoding"))


def decode_page(body: bytes, header_charset: str | None = None) -> Decoded | None:
    """`body` decoded by the rule of the module doc; None when it cannot be decoded."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            text = body[len(bom) :].decode(encoding, "replace")
            return Decoded(text, encoding, "bom", None, False, text.count("\ufffd"))
    label = header_charset or meta_charset(body)
    declared = encoding_of_label(label)
    if declared:
        non_ascii = not body.isascii()
        if declared != "utf-8" and non_ascii and _strict(body, "utf-8") is not None:
            return Decoded(body.decode("utf-8"), "utf-8", "utf-8", label, True)
        text = _strict(body, declared)
        if text is not None:
            return Decoded(text, declared, "declared", label, False)
    text = _strict(body, "utf-8")
    if text is not None:
        return Decoded(text, "utf-8", "utf-8", label, declared is not None)
    detected = detect_encoding(body)
    if detected and detected != declared:
        text = _strict(body, detected)
        if text is not None:
            return Decoded(text, detected, "detected", label, declared is not None)
    best = declared or detected
    if best is None:
        return None
    text = body.decode(best, "replace")
    replaced = text.count("\ufffd")
    if replaced > MAX_REPLACED_FRACTION * max(len(text), 1):
        return None
    source = "declared" if best == declared else "detected"
    return Decoded(text, best, source, label, False, replaced)
