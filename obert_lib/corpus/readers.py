"""datatrove readers that never crash on bad input: every unreadable line or file becomes a counted drop."""

from __future__ import annotations

import io
import json
from typing import Literal

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader

DROP_KEY = "obert_drop"  # metadata key a reader sets on a placeholder document that must be dropped
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, which some Windows editors put at the start of a file
_JSON_KIND = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    type(None): "null",
}
_MISSING = object()  # a row without an id field (JSON null is an id: "None", as str(None) has always given)


def drop_placeholder(reason: str, detail: str, file: str, line: int | None, raw: str = "") -> Document:
    """A document standing for unreadable input; ReaderDropFilter removes it under `reason`."""
    file = display_path(file)
    where = f"{file}:{line}" if line is not None else file
    return Document(
        text=raw[:2000], id=where, metadata={DROP_KEY: reason, "detail": detail, "file": file, "line": line}
    )


def json_kind(value) -> str:
    """The JSON name of a parsed value's type: 'array', 'null', ..."""
    return _JSON_KIND.get(type(value), type(value).__name__)


def missing_text_detail(row, text_key: str) -> str:
    """Why a row has no usable text, naming the keys it does have (so that a wrong text_key shows)."""
    if type(row) is not dict:
        return f"a JSON {json_kind(row)}, not an object with a string field '{text_key}'"
    keys = ", ".join(f"'{k}'" for k in list(row)[:20]) or "none"
    if text_key in row:
        return f"field '{text_key}' is {json_kind(row[text_key])}, not a string (keys: {keys})"
    return f"no string field '{text_key}' (keys: {keys})"


class _LineSource:
    """Binary line iterator over a file in a datatrove folder; zstd handled here (fsspec's zstd cannot iterate)."""

    def __init__(self, data_folder, filepath: str, compression):
        self.data_folder, self.filepath, self.compression = data_folder, filepath, compression

    def __enter__(self):
        zstd = self.compression == "zstd" or (self.compression == "infer" and self.filepath.endswith((".zst", ".zstd")))
        if zstd:
            import zstandard

            self._raw = self.data_folder.open(self.filepath, "rb", compression=None)
            self._fh = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(self._raw))
        else:
            self._raw = None
            self._fh = self.data_folder.open(self.filepath, "rb", compression=self.compression)
        return self._fh

    def __exit__(self, *exc):
        self._fh.close()
        if self._raw is not None:
            self._raw.close()


def display_path(filepath: str) -> str:
    """Absolute form of a path read through the root data folder."""
    return filepath if filepath.startswith("/") else "/" + filepath


class CountingDiskReader(BaseDiskReader):
    """A datatrove disk reader that sums its documents' characters locally and reports them once per task.

    BaseDiskReader.run updates a shared `doc_len` stat for every document (a few µs, as much as reading a
    short line); the total is the same.
    """

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        self._chars = 0
        yield from super().run(data, rank, world_size)
        self.stat_update("chars_read", value=self._chars, unit="task")

    def update_doc_stats(self, document: Document) -> None:
        self._chars += len(document.text)


class ObertJsonlReader(CountingDiskReader):
    """JSON lines (plain, gzip or zstd): one document per line, text in `text_key`.

    Invalid UTF-8, non-JSON or truncated lines, non-object lines, a missing or non-string text field,
    and files that cannot be opened or decompressed each yield a drop placeholder naming file and line.
    """

    name = "obert jsonl"

    def __init__(
        self,
        data_folder,
        text_key: str = "text",
        id_key: str = "id",
        compression: Literal["infer", "gzip", "zstd"] | None = "infer",
        **kwargs,
    ):
        super().__init__(data_folder, text_key=text_key, id_key=id_key, **kwargs)
        self.compression = compression

    def read_file(self, filepath: str):
        import orjson

        lineno = 0
        shown = display_path(filepath)
        text_key, id_key = self.text_key, self.id_key
        try:
            with _LineSource(self.data_folder, filepath, self.compression) as fh:
                for lineno, raw in enumerate(fh, 1):
                    if lineno == 1 and raw.startswith(BOM):
                        raw = raw[len(BOM) :]
                    if raw.isspace() or not raw:  # blank (b"" only for a file that is just a BOM)
                        continue
                    try:
                        row = orjson.loads(raw)  # bytes: orjson checks the UTF-8 itself, no str of the line is made
                    except orjson.JSONDecodeError as exc:
                        try:
                            line = raw.decode("utf-8")
                        except UnicodeDecodeError as bad:
                            yield drop_placeholder(
                                "invalid_utf8", str(bad), filepath, lineno, raw.decode("utf-8", "replace")
                            )
                            continue
                        yield drop_placeholder("unreadable_line", f"not JSON: {exc}", filepath, lineno, line)
                        continue
                    text = row.get(text_key) if type(row) is dict else None
                    if not isinstance(text, str):
                        yield drop_placeholder(
                            "missing_text", missing_text_detail(row, text_key), filepath, lineno, raw.decode("utf-8")
                        )
                        continue
                    doc_id = row.get(id_key, _MISSING)
                    if len(row) == 2 and doc_id is not _MISSING and text_key != id_key:  # only text and id: no metadata
                        meta = {}
                    else:
                        meta = {
                            k: v
                            for k, v in row.items()
                            if k != text_key and k != id_key and isinstance(v, (str, int, float))
                        }
                    meta["file"], meta["line"] = shown, lineno
                    if type(doc_id) is not str:
                        doc_id = f"{filepath}:{lineno}" if doc_id is _MISSING else str(doc_id)
                    yield Document(text=text, id=doc_id, metadata=meta)
        except Exception as exc:  # noqa: BLE001 - unreadable file (permissions, corrupt archive): a drop, not a crash
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, lineno or None)


class ObertTextReader(CountingDiskReader):
    """Plain text (plain, gzip or zstd): one document per line, or per blank-line-separated block."""

    name = "obert text"

    def __init__(
        self,
        data_folder,
        blocks: bool = False,
        compression: Literal["infer", "gzip", "zstd"] | None = "infer",
        **kwargs,
    ):
        super().__init__(data_folder, **kwargs)
        self.blocks, self.compression = blocks, compression

    def read_file(self, filepath: str):
        buffer: list[str] = []
        start = 0
        lineno = 0
        try:
            with _LineSource(self.data_folder, filepath, self.compression) as fh:
                for lineno, raw in enumerate(fh, 1):
                    if lineno == 1 and raw.startswith(BOM):
                        raw = raw[len(BOM) :]
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError as exc:
                        yield drop_placeholder(
                            "invalid_utf8", str(exc), filepath, lineno, raw.decode("utf-8", "replace")
                        )
                        continue
                    if not self.blocks:
                        if line.strip():
                            yield Document(
                                text=line,
                                id=f"{filepath}:{lineno}",
                                metadata={"file": display_path(filepath), "line": lineno},
                            )
                        continue
                    if line.strip():
                        if not buffer:
                            start = lineno
                        buffer.append(line)
                    elif buffer:
                        yield Document(
                            text="\n".join(buffer),
                            id=f"{filepath}:{start}",
                            metadata={"file": display_path(filepath), "line": start},
                        )
                        buffer = []
                if buffer:
                    yield Document(
                        text="\n".join(buffer),
                        id=f"{filepath}:{start}",
                        metadata={"file": display_path(filepath), "line": start},
                    )
        except Exception as exc:  # noqa: BLE001
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, lineno or None)


class ObertParquetReader(CountingDiskReader):
    """Parquet: one document per row, text in column `text_key`.

    A row without a string text (no such column, a null, a number) and a file that cannot be read as Parquet
    each yield a drop placeholder naming file and row (datatrove's ParquetReader skips such rows uncounted).
    Scalar columns other than text and id become metadata, as in the JSONL reader.
    """

    name = "obert parquet"

    def __init__(self, data_folder, text_key: str = "text", id_key: str = "id", batch_size: int = 1000, **kwargs):
        super().__init__(data_folder, text_key=text_key, id_key=id_key, **kwargs)
        self.batch_size = batch_size

    def read_file(self, filepath: str):
        import pyarrow.parquet as pq

        shown = display_path(filepath)
        text_key, id_key = self.text_key, self.id_key
        row_no = 0
        try:
            with self.data_folder.open(filepath, "rb") as fh, pq.ParquetFile(fh) as table:
                for batch in table.iter_batches(batch_size=self.batch_size):
                    for row in batch.to_pylist():
                        row_no += 1
                        text = row.get(text_key)
                        if not isinstance(text, str):
                            raw = json.dumps(row, ensure_ascii=False, default=str)
                            detail = missing_text_detail(row, text_key)
                            yield drop_placeholder("missing_text", detail, filepath, row_no, raw)
                            continue
                        doc_id = row.get(id_key)
                        meta = {
                            k: v
                            for k, v in row.items()
                            if k != text_key and k != id_key and isinstance(v, (str, int, float))
                        }
                        meta["file"], meta["line"] = shown, row_no
                        doc_id = f"{filepath}:{row_no}" if doc_id is None else str(doc_id)
                        yield Document(text=text, id=doc_id, metadata=meta)
        except Exception as exc:  # noqa: BLE001 - not Parquet, truncated, unreadable: a drop, not a crash
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, row_no or None)
