"""WARC files and HTML folders through `obert preprocess --config web`: every record counted, kept or dropped by name.

The WARC files are written with warcio here: pages in UTF-8 and GBK (a true header, a lying header, a meta tag
only), bookkeeping records, a PDF, an empty page, a page without text, a 404, a 10 MB page, and truncated
records of three kinds.
"""

import io
import json

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from obert_lib.config import ConfigError
from obert_lib.corpus.config import load_config
from obert_lib.corpus.kept_paragraphs import kept_documents
from tests.corpus.sentences import DISTINCT_SENTENCES
from tests.corpus.small_runs import preprocess_cli

pytestmark = pytest.mark.bad_input


def article(i: int, meta: str = "") -> str:
    """Page i: a menu, an article of two distinct sentences, a footer."""
    paras = "".join(f"<p>{s}</p>" for s in DISTINCT_SENTENCES[2 * i : 2 * i + 2])
    return (
        f"<html><head>{meta}<title>第{i}篇</title></head><body><div class='nav'><a href='/'>首页</a>"
        f"<a href='/news'>新闻</a></div><article><h1>第{i}篇文章</h1>{paras}</article>"
        "<div class='footer'>版权所有 2026 示例网</div></body></html>"
    )


def response(writer, url: str, body: bytes, content_type: str = "text/html", status: str = "200 OK", **warc):
    http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
    record = writer.create_warc_record(
        url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc or None
    )
    writer.write_record(record)


def crawl_file(path, gz: bool = True) -> WARCWriter:
    return WARCWriter(open(path, "wb"), gzip=gz)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    """Three WARC files: (folder, expected kept, expected drops by reason)."""
    folder = tmp_path_factory.mktemp("crawl")
    w = crawl_file(folder / "a.warc.gz")
    w.write_record(w.create_warcinfo_record("a.warc.gz", {"software": "test"}))  # not a document
    w.write_record(w.create_warc_record("http://x.cn/0", "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n")))
    response(w, "http://x.cn/0", article(0).encode(), "text/html; charset=utf-8")
    response(w, "http://x.cn/1", article(1).encode("gbk"), "text/html; charset=GBK")
    response(w, "http://x.cn/2", article(2).encode("gbk"), "text/html; charset=utf-8")  # the header lies
    response(w, "http://x.cn/3", article(3, '<meta charset="gb2312">').encode("gbk"))  # meta only
    response(w, "http://x.cn/a.pdf", b"%PDF-1.4 not a page", "application/pdf")
    response(w, "http://x.cn/empty", b"")
    response(w, "http://x.cn/blank", b"<html><body><div> </div></body></html>", "text/html; charset=utf-8")
    response(w, "http://x.cn/gone", article(4).encode(), status="404 Not Found")
    response(w, "http://x.cn/huge", b"<html><body><p>" + "大".encode() * 3_500_000 + b"</p></body></html>")
    response(w, "http://x.cn/cut", article(4).encode()[:300], **{"WARC-Truncated": "length"})
    w.out.close()

    plain = folder / "b.warc"  # uncompressed: the second record ends 100 bytes short of its Content-Length
    w = crawl_file(plain, gz=False)
    response(w, "http://y.cn/4", article(4).encode())
    response(w, "http://y.cn/cut", article(5).encode())
    w.out.close()
    data = plain.read_bytes()
    plain.write_bytes(data[: len(data) - 104])  # 4: the record's closing CRLF CRLF

    cut = folder / "c.warc.gz"  # a gzip member cut in half after a complete one
    w = crawl_file(cut)
    response(w, "http://z.cn/5", article(5).encode())
    w.out.close()
    whole = cut.read_bytes()
    w = crawl_file(folder / "tail.warc.gz")
    response(w, "http://z.cn/cut", article(0).encode() * 3)
    w.out.close()
    member = (folder / "tail.warc.gz").read_bytes()
    (folder / "tail.warc.gz").unlink()
    cut.write_bytes(whole + member[: len(member) // 2])
    drops = {"not_html": 1, "empty_page": 1, "no_main_text": 1, "http_status": 1, "page_too_large": 1}
    drops["truncated_record"] = 3
    return folder, 6, drops


def test_warc_through_obert_preprocess(crawl, tmp_path):
    folder, kept, drops = crawl
    out = tmp_path / "out"
    assert preprocess_cli([folder], out, "--config", "web") == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents_dropped"] == dict(sorted(drops.items()))
    assert stats["documents_kept"] == kept and stats["documents_in"] == kept + sum(drops.values())
    assert stats["input_records"] == {
        "charset_declared": 4,  # pages 0, 1, 3 and the blank one
        "charset_detected": 1,  # page 2, whose header says utf-8
        "charset_declaration_wrong": 1,
        "charset_utf-8": 2,  # pages 4 and 5: no declaration, valid UTF-8
        "records_skipped_request": 1,
        "records_skipped_warcinfo": 1,
    }
    texts = [doc["text"] for doc in kept_documents(out / "_work")]
    for i in range(6):  # every page's article with its heading, GBK pages decoded right; menu, title and footer gone
        assert "\n".join([f"第{i}篇文章", *DISTINCT_SENTENCES[2 * i : 2 * i + 2]]) in texts
    details = {
        json.loads(line)["detail"] for f in (out / "removed/truncated_record").glob("*.jsonl") for line in f.open()
    }
    assert "WARC-Truncated: length (cut by the crawler)" in details
    assert any(d.startswith("100 of its") for d in details), details
    assert any(
        "form no record" in d or "missing" in d for d in details - {"WARC-Truncated: length (cut by the crawler)"}
    )
    (pdf,) = [json.loads(line) for line in (out / "removed/not_html").glob("*.jsonl").__next__().open()]
    assert pdf["detail"] == "content type application/pdf" and pdf["file"].endswith("a.warc.gz") and pdf["line"] == 7


def test_html_folder(tmp_path):
    """A folder of saved pages: HTML files by suffix (GBK by its meta, UTF-8), the image beside them not_html."""
    pages = tmp_path / "pages"
    (pages / "sub").mkdir(parents=True)
    (pages / "a.html").write_bytes(
        article(0, '<meta http-equiv="Content-Type" content="text/html; charset=gbk">').encode("gbk")
    )
    (pages / "sub" / "b.htm").write_bytes(article(1).encode())
    (pages / "c.html").write_bytes(b"")
    (pages / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    out = tmp_path / "out"
    assert preprocess_cli([pages], out, "--config", "web", "--set", "input_format=html") == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents_in"] == 4 and stats["documents_kept"] == 2
    assert stats["documents_dropped"] == {"empty_page": 1, "not_html": 1}
    texts = [doc["text"] for doc in kept_documents(out / "_work")]
    assert sorted(texts) == sorted(
        "\n".join([f"第{i}篇文章", *DISTINCT_SENTENCES[2 * i : 2 * i + 2]]) for i in range(2)
    )


def test_html_files_are_html_by_suffix(tmp_path):
    from obert_lib.corpus.inputs import input_format

    names = ["a.html", "b.htm", "crawl.warc.gz", "CC-MAIN-1.warc.wet.gz"]
    assert [input_format([tmp_path / n], "auto") for n in names] == ["html", "html", "warc", "warc"]


def test_max_page_bytes_is_checked():
    assert load_config("web", **{"html.max_page_bytes": 2048}).html.max_page_bytes == 2048
    with pytest.raises(ConfigError, match=r"^html\.max_page_bytes: must be >= 1024 bytes \(got 0\)"):
        load_config("web", **{"html.max_page_bytes": 0})
    with pytest.raises(ConfigError, match=r"html\.max_page_bytes"):
        load_config("web", **{"html.max_page_bytes": "big"})


def test_wet_conversion_records_are_text(tmp_path):
    """A WET file's conversion records hold extracted text: read as text, passed through ExtractMainText."""
    from obert_lib.corpus.html_extract import ExtractMainText
    from obert_lib.corpus.html_input import ObertWarcReader

    w = crawl_file(tmp_path / "x.warc.wet.gz")
    w.write_record(w.create_warcinfo_record("x.warc.wet.gz", {"software": "test"}))
    text = "\n".join(DISTINCT_SENTENCES[:2])
    w.write_record(w.create_warc_record("http://w.cn/", "conversion", payload=io.BytesIO(text.encode())))
    w.write_record(w.create_warc_record("http://w.cn/e", "conversion", payload=io.BytesIO(b"  \n")))
    w.out.close()
    docs = list(ObertWarcReader(str(tmp_path), max_page_bytes=4096).read_file("x.warc.wet.gz"))
    assert [d.metadata.get("obert_drop") for d in docs] == [None, "empty_page"]
    assert (
        docs[0].text == text and docs[0].metadata["markup"] == "text" and docs[0].metadata["source"] == "http://w.cn/"
    )
    assert [d.text for d in ExtractMainText().run(docs[:1])] == [text]


def test_a_warc_without_pages_says_so(tmp_path):
    """Only bookkeeping records: exit 2 with one line naming them, not a hint about lines of JSON."""
    w = crawl_file(tmp_path / "info.warc.gz")
    w.write_record(w.create_warcinfo_record("info.warc.gz", {"software": "test"}))
    w.out.close()
    out = tmp_path / "out"
    assert preprocess_cli([tmp_path / "info.warc.gz"], out, "--config", "web") == 2
    error = json.loads((out / "stats.json").read_text())["error"]
    assert "hold no response or conversion record" in error and "'records_skipped_warcinfo': 1" in error
