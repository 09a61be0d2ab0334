"""Readers of crawled pages: WARC / WET files (datatrove's WarcReader) and folders of HTML files.

Each page becomes a document holding its decoded HTML (metadata markup='html'; charset.py decodes it) or,
from a WET file, its plain text (markup='text'); html_extract.ExtractMainText then keeps the main text.
Whatever cannot become a page is a drop placeholder with a named reason (readers.drop_placeholder), so that
documents in = kept + dropped holds:

- `truncated_record`: a record shorter than its Content-Length, one marked `WARC-Truncated` by the crawler,
  or bytes after the last complete record that form no record (a file cut mid-record);
- `not_html`: a response whose content type is not HTML (application/pdf, image/jpeg, ...);
- `http_status`: a response whose HTTP status is not 2xx (redirects, error pages);
- `empty_page`: no bytes, or only whitespace;
- `page_too_large`: more than html.max_page_bytes bytes (read no further than that);
- `undecodable_page`: no charset decodes it (charset.decode_page);
- `unreadable_file`: a file warcio cannot parse at all (not WARC, corrupt gzip header).

Which WARC records are documents: `response` records (and WET `conversion` records), as datatrove's
WarcReader (process_record) reads them. `warcinfo`, `request`, `metadata`, `revisit` and `resource` records
are crawl bookkeeping, not fetched pages: they are not documents and are counted per type under the
reader's `records_skipped_<type>` stat (stats.json `input_records`). The reader overrides WarcReader.read_file
because process_record skips non-HTML and undecodable records uncounted and decodes only UTF-8 or detected
charsets, never the declared one.
"""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.readers.warc import WarcReader

from .charset import charset_in_content_type, decode_page
from .readers import CountingDiskReader, display_path, drop_placeholder

HTML_TYPES = ("text/html", "application/xhtml+xml")
HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml")
DOCUMENT_RECORDS = ("response", "conversion")  # conversion: a WET file's extracted text
_CHUNK = 1 << 20  # read the rest of a record in 1 MiB pieces to check its length


def _read_capped(stream, max_bytes: int) -> bytes:
    """At most max_bytes + 1 bytes of `stream` (one more than the cap tells a page is over it)."""
    parts, size = [], 0
    while size <= max_bytes:
        part = stream.read(min(_CHUNK, max_bytes + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def page_document(
    body: bytes,
    header_charset: str | None,
    doc_id: str,
    metadata: dict,
    max_bytes: int,
    stat=None,
) -> Document:
    """The document of one page's bytes (HTML decoded by charset.decode_page), or a drop placeholder.

    `body` holds at most max_bytes + 1 bytes; `stat(label)` counts how the charset was found.
    """
    file, line = metadata["file"], metadata.get("line")
    if len(body) > max_bytes:
        return drop_placeholder("page_too_large", f"more than {max_bytes} bytes (html.max_page_bytes)", file, line)
    if not body.strip():
        return drop_placeholder("empty_page", f"{len(body)} bytes, no text", file, line)
    decoded = decode_page(body, header_charset)
    if decoded is None:
        detail = f"no charset decodes it (declared: {header_charset or 'none in the header'})"
        return drop_placeholder("undecodable_page", detail, file, line, body[:2000].decode("utf-8", "replace"))
    if stat:
        stat(f"charset_{decoded.source}")
        if decoded.declaration_wrong:
            stat("charset_declaration_wrong")
    metadata.update(markup="html", charset=decoded.encoding)
    if decoded.declaration_wrong:
        metadata["declared_charset"] = decoded.declared
    return Document(text=decoded.text, id=doc_id, metadata=metadata)


class ObertWarcReader(CountingDiskReader, WarcReader):
    """WARC and WET files (plain, or gzip per record as crawlers write them): a document per response or conversion
    record.

    The file is opened uncompressed and warcio decompresses it, so that its record offsets are the file's
    and a cut tail is found (module doc). `max_page_bytes` is html.max_page_bytes.
    """

    name = "obert warc"

    def __init__(self, data_folder, max_page_bytes: int, **kwargs):
        super().__init__(data_folder, compression=None, **kwargs)
        self.max_page_bytes = max_page_bytes

    def read_file(self, filepath: str):
        from warcio.archiveiterator import ArchiveIterator

        shown = display_path(filepath)
        number = 0
        try:
            size = self.data_folder.size(filepath)
            with self.data_folder.open(filepath, "rb", compression=None) as fh:
                records = ArchiveIterator(fh)
                for number, record in enumerate(records, 1):
                    if record.rec_type not in DOCUMENT_RECORDS:
                        self.stat_update(f"records_skipped_{record.rec_type}")
                        continue
                    yield self._record_document(record, shown, number)
                end = records.offset
            if end < size:
                detail = f"{size - end} bytes after the last complete record (offset {end}) form no record"
                yield drop_placeholder("truncated_record", detail, filepath, number + 1)
        except Exception as exc:  # noqa: BLE001 - not WARC, corrupt gzip: a drop, not a crash
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, number or None)

    def _record_document(self, record, shown: str, number: int) -> Document:
        """The document of one response / conversion record, or a drop placeholder."""
        headers = record.rec_headers
        meta = {"file": shown, "line": number, "source": headers.get_header("WARC-Target-URI") or ""}
        date = headers.get_header("WARC-Date")
        if date:
            meta["date"] = date
        doc_id = headers.get_header("WARC-Record-ID") or f"{shown}:{number}"
        if headers.get_header("WARC-Truncated"):
            reason = headers.get_header("WARC-Truncated")
            return drop_placeholder("truncated_record", f"WARC-Truncated: {reason} (cut by the crawler)", shown, number)
        http = record.http_headers
        status = http.get_statuscode() if http and record.rec_type == "response" else None
        if record.rec_type == "conversion":
            content_type = headers.get_header("Content-Type") or "text/plain"
        else:
            content_type = (http.get_header("Content-Type") if http else None) or headers.get_header(
                "WARC-Identified-Payload-Type"
            )
        mime = (content_type or "").split(";")[0].strip().lower()
        failed = bool(status) and not status.startswith("2")  # redirects and error pages are not documents' text
        page = record.rec_type == "conversion" or (mime in HTML_TYPES and not failed)
        try:  # a page's bytes up to the cap; then (any record) to its end: is it as long as it says?
            body = _read_capped(record.content_stream(), self.max_page_bytes) if page else b""
            while record.raw_stream.read(_CHUNK):
                pass
        except Exception as exc:  # noqa: BLE001 - a cut gzip or chunked body
            return drop_placeholder("truncated_record", f"{type(exc).__name__}: {exc}", shown, number)
        missing = getattr(record.raw_stream, "limit", 0)  # warcio's LimitReader: bytes of Content-Length not read
        if missing:
            detail = f"{missing} of its {record.length} bytes (Content-Length) missing"
            return drop_placeholder("truncated_record", detail, shown, number)
        if failed:
            return drop_placeholder("http_status", f"HTTP {http.statusline}", shown, number)
        if not page:
            return drop_placeholder("not_html", f"content type {content_type or 'missing'}", shown, number)
        if record.rec_type == "conversion":  # WET: text already extracted, UTF-8 by the format
            if not body.strip():
                return drop_placeholder("empty_page", f"{len(body)} bytes, no text", shown, number)
            if len(body) > self.max_page_bytes:
                detail = f"more than {self.max_page_bytes} bytes (html.max_page_bytes)"
                return drop_placeholder("page_too_large", detail, shown, number)
            meta.update(markup="text", charset="utf-8")
            return Document(text=body.decode("utf-8", "replace"), id=doc_id, metadata=meta)
        return page_document(
            body, charset_in_content_type(content_type), doc_id, meta, self.max_page_bytes, self.stat_update
        )


class ObertHtmlReader(CountingDiskReader):
    """HTML files (a folder of saved pages): one document per file, decoded by its meta charset or detection.

    A file whose name does not end in an HTML suffix and whose start holds no `<html` or `<!doctype html` is
    dropped as `not_html` (the images and scripts saved beside a page).
    """

    name = "obert html"

    def __init__(self, data_folder, max_page_bytes: int, **kwargs):
        super().__init__(data_folder, **kwargs)
        self.max_page_bytes = max_page_bytes

    def read_file(self, filepath: str):
        shown = display_path(filepath)
        try:
            with self.data_folder.open(filepath, "rb", compression="infer") as fh:
                body = _read_capped(fh, self.max_page_bytes)
        except Exception as exc:  # noqa: BLE001 - unreadable file: a drop, not a crash
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, None)
            return
        head = body[:1024].lower()
        named = filepath.lower().removesuffix(".gz").removesuffix(".zst").endswith(HTML_SUFFIXES)
        if body.strip() and not named and b"<html" not in head and b"<!doctype html" not in head:
            yield drop_placeholder("not_html", "no HTML suffix and no <html> at its start", filepath, None)
            return
        yield page_document(body, None, shown, {"file": shown}, self.max_page_bytes, self.stat_update)
