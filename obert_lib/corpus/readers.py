"""datatrove readers that never crash on bad input: every unreadable line or file becomes a counted drop."""
from __future__ import annotations

import io
from typing import Literal

from datatrove.data import Document
from datatrove.pipeline.readers.base import BaseDiskReader

DROP_KEY = "obert_drop"  # metadata key a reader sets on a placeholder document that must be dropped
_MISSING = object()  # a row without an id field (JSON null is an id: "None", as str(None) has always given)


def drop_placeholder(reason: str, detail: str, file: str, line: int | None, raw: str = "") -> Document:
    """A document standing for unreadable input; ReaderDropFilter removes it under `reason`."""
    file = _display(file)
    where = f"{file}:{line}" if line is not None else file
    return Document(text=raw[:2000], id=where, metadata={DROP_KEY: reason, "detail": detail, "file": file, "line": line})


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


def _display(filepath: str) -> str:
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

    def __init__(self, data_folder, text_key: str = "text", id_key: str = "id",
                 compression: Literal["infer", "gzip", "zstd"] | None = "infer", **kwargs):
        super().__init__(data_folder, text_key=text_key, id_key=id_key, **kwargs)
        self.compression = compression

    def read_file(self, filepath: str):
        import orjson

        lineno = 0
        shown = _display(filepath)
        text_key, id_key = self.text_key, self.id_key
        try:
            with _LineSource(self.data_folder, filepath, self.compression) as fh:
                for lineno, raw in enumerate(fh, 1):
                    if raw.isspace():  # blank (a line from the file is never b"")
                        continue
                    try:
                        row = orjson.loads(raw)  # bytes: orjson checks the UTF-8 itself, no str of the line is made
                    except orjson.JSONDecodeError as exc:
                        try:
                            line = raw.decode("utf-8")
                        except UnicodeDecodeError as bad:
                            yield drop_placeholder("invalid_utf8", str(bad), filepath, lineno, raw.decode("utf-8", "replace"))
                            continue
                        yield drop_placeholder("unreadable_line", f"not JSON: {exc}", filepath, lineno, line)
                        continue
                    text = row.get(text_key) if type(row) is dict else None
                    if not isinstance(text, str):
                        yield drop_placeholder("missing_text", f"no string field '{text_key}'", filepath, lineno,
                                               raw.decode("utf-8"))
                        continue
                    doc_id = row.get(id_key, _MISSING)
                    if len(row) == 2 and doc_id is not _MISSING and text_key != id_key:  # only text and id: no metadata
                        meta = {}
                    else:
                        meta = {k: v for k, v in row.items() if k != text_key and k != id_key and isinstance(v, (str, int, float))}
                    meta["file"], meta["line"] = shown, lineno
                    if type(doc_id) is not str:
                        doc_id = f"{filepath}:{lineno}" if doc_id is _MISSING else str(doc_id)
                    yield Document(text=text, id=doc_id, metadata=meta)
        except Exception as exc:  # noqa: BLE001 - unreadable file (permissions, corrupt archive): a drop, not a crash
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, lineno or None)


class ObertTextReader(CountingDiskReader):
    """Plain text (plain, gzip or zstd): one document per line, or per blank-line-separated block."""

    name = "obert text"

    def __init__(self, data_folder, blocks: bool = False, compression: Literal["infer", "gzip", "zstd"] | None = "infer", **kwargs):
        super().__init__(data_folder, **kwargs)
        self.blocks, self.compression = blocks, compression

    def read_file(self, filepath: str):
        buffer: list[str] = []
        start = 0
        lineno = 0
        try:
            with _LineSource(self.data_folder, filepath, self.compression) as fh:
                for lineno, raw in enumerate(fh, 1):
                    try:
                        line = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError as exc:
                        yield drop_placeholder("invalid_utf8", str(exc), filepath, lineno, raw.decode("utf-8", "replace"))
                        continue
                    if not self.blocks:
                        if line.strip():
                            yield Document(text=line, id=f"{filepath}:{lineno}", metadata={"file": _display(filepath), "line": lineno})
                        continue
                    if line.strip():
                        if not buffer:
                            start = lineno
                        buffer.append(line)
                    elif buffer:
                        yield Document(text="\n".join(buffer), id=f"{filepath}:{start}", metadata={"file": _display(filepath), "line": start})
                        buffer = []
                if buffer:
                    yield Document(text="\n".join(buffer), id=f"{filepath}:{start}", metadata={"file": _display(filepath), "line": start})
        except Exception as exc:  # noqa: BLE001
            yield drop_placeholder("unreadable_file", f"{type(exc).__name__}: {exc}", filepath, lineno or None)
