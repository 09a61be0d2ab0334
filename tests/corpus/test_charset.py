"""charset.decode_page: GBK / GB18030 pages decoded by their declaration, or by detection when it lies or is missing."""

import pytest

from obert_lib.corpus.charset import charset_in_content_type, decode_page, encoding_of_label, meta_charset
from tests.corpus.sentences import DISTINCT_SENTENCES

# 朱镕基 and 陶喆: 镕 and 喆 are in GBK but not GB2312, as on many pages labelled gb2312
TEXT = "朱镕基与陶喆。" + "".join(DISTINCT_SENTENCES[:3])


def page(text: str = TEXT, meta: str = "") -> str:
    return f"<html><head>{meta}<title>测试页</title></head><body><p>{text}</p></body></html>"


@pytest.mark.parametrize(
    "label,codec",
    [("GB2312", "gb18030"), ("gbk", "gb18030"), ("x-gbk", "gb18030"), ("cp936", "gb18030"), ("GB18030", "gb18030")]
    + [("utf8", "utf-8"), ("Big5", "big5hkscs"), ("iso-8859-1", "cp1252"), ("no-such-charset", None), (None, None)],
)
def test_labels(label, codec):
    assert encoding_of_label(label) == codec


def test_declarations_found():
    assert charset_in_content_type("text/html; charset=GBK") == "GBK"
    assert charset_in_content_type('text/html;charset="gb2312"') == "gb2312"
    assert charset_in_content_type("text/html") is None
    assert meta_charset(b'<html><head><meta charset="gbk">') == "gbk"
    http_equiv = b'<meta http-equiv="Content-Type" content="text/html; charset=gb2312" />'
    assert meta_charset(b"<html><head>" + http_equiv) == "gb2312"
    assert meta_charset(b"<html><head><title>x</title>") is None


def test_gbk_with_a_true_declaration():
    body = page().encode("gbk")
    for header, meta in (("GBK", ""), ("gb2312", ""), (None, '<meta charset="gb2312">')):
        if meta:
            body = page(meta=meta).encode("gbk")
        got = decode_page(body, header)
        assert got.text == (page(meta=meta) if meta else page())
        assert (got.encoding, got.source, got.declaration_wrong) == ("gb18030", "declared", False)


def test_gbk_with_a_lying_declaration_is_detected():
    body = page().encode("gbk")
    got = decode_page(body, "utf-8")  # a header that lies: the bytes are GBK
    assert got.text == page()
    assert (got.encoding, got.source, got.declared, got.declaration_wrong) == ("gb18030", "detected", "utf-8", True)
    meta = '<meta charset="utf-8">'
    got = decode_page(page(meta=meta).encode("gbk"))  # a meta tag that lies
    assert got.text == page(meta=meta) and got.declaration_wrong


def test_utf8_page_with_an_old_gbk_meta_is_utf8():
    """A page re-encoded to UTF-8 that kept its `charset=gb2312` meta (qq's source.html in ../shared/data/web)."""
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312" />'
    got = decode_page(page(meta=meta).encode("utf-8"))
    assert got.text == page(meta=meta)
    assert (got.encoding, got.source, got.declared, got.declaration_wrong) == ("utf-8", "utf-8", "gb2312", True)


def test_undeclared_pages():
    got = decode_page(page().encode("gb18030"))
    assert (got.text, got.encoding, got.source, got.declared) == (page(), "gb18030", "detected", None)
    got = decode_page(page().encode("utf-8"))
    assert (got.text, got.source) == (page(), "utf-8")
    got = decode_page(b"\xef\xbb\xbf" + page().encode("utf-8"), "gbk")  # a byte order mark outranks the header
    assert (got.text, got.source) == (page(), "bom")


def test_a_few_broken_bytes_are_replaced():
    body = page(TEXT * 20).encode("gbk")
    at = body.index(b"<p>") + 3
    body = body[:at] + b"\xff" + body[at:]  # one stray byte in a long GBK page, between two characters
    got = decode_page(body, "gbk")
    assert got.encoding == "gb18030" and got.replaced == 1 and got.text.replace("\ufffd", "") == page(TEXT * 20)
