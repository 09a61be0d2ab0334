"""How one stage hands documents to the next: task r of a stage reads exactly what task r of the previous one wrote.

The dedup decisions (dedup_index.py) name documents by (task rank, position in that task's output). A plain
folder reader shards the files it finds, so a task that kept nothing (and so wrote no file) would shift every
later file to the wrong rank, and the wrong documents would be removed. The adapters cleaned_row and
removed_row say what the intermediate and the removed/ JSONL records hold.
"""

from __future__ import annotations

import gzip

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

WRITE_BUFFER = 1 << 20  # bytes gathered before each gzip write: one compress call per MB, not one per document
# gzip level 1: level 9 (fsspec's default) took 4.4 times as long on FewCLUE's intermediate JSONL for a 9% smaller
# file; against no compression it costs 0.2 s per 25 MB written and saves 60% of the disk
GZIP_LEVEL = 1


def rank_file(rank: int) -> str:
    """The file task `rank` of a stage writes: <rank>.jsonl.gz."""
    return f"{rank:05d}.jsonl.gz"


class IntermediateJsonlWriter(PipelineStep):
    """One stage's documents for the next stage: `<folder>/<rank>.jsonl.gz` (gzip level 1), one cleaned_row per
    line; passes the documents on. No file when the task writes no document (RankJsonlReader reads none).

    datatrove's JsonlWriter spends about 7 µs per document on its file-name template, per-document stats and
    adapter calls, more than serialising and compressing the document; this writes orjson lines in 1 MB blocks.
    """

    name = "🐿 intermediate jsonl"
    type = "💽 - WRITER"

    def __init__(self, folder: str):
        super().__init__()
        self.output_folder = get_datafolder(folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        raw = stream = None
        block: list[bytes] = []
        size = written = 0
        try:
            for doc in data:
                line = orjson.dumps(cleaned_row(None, doc)) + b"\n"
                block.append(line)
                size += len(line)
                written += 1
                if size >= WRITE_BUFFER:
                    if stream is None:
                        raw = self.output_folder.open(rank_file(rank), "wb")
                        stream = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL)
                    stream.write(b"".join(block))
                    block, size = [], 0
                yield doc
            if block:
                if stream is None:
                    raw = self.output_folder.open(rank_file(rank), "wb")
                    stream = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL)
                stream.write(b"".join(block))
        finally:
            if stream is not None:
                stream.close()
                raw.close()
        if written:
            self.stat_update("documents_written", value=written)


class RankJsonlReader(PipelineStep):
    """Reads `<rank>.jsonl.gz` of the previous stage, the file the same task rank wrote; nothing when it wrote none.

    Each line becomes a Document: its text and id, the rest as metadata (cleaned_row's keys)."""

    name = "rank jsonl"
    type = "📖 - READER"

    def __init__(self, folder: str):
        super().__init__()
        self.data_folder = get_datafolder(folder)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        name = rank_file(rank)
        if not self.data_folder.exists(name):  # that task kept no document
            return
        read = 0
        with self.data_folder.open(name, "rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as f:
            for line in f:
                row = orjson.loads(line)
                read += 1
                yield Document(text=row.pop("text"), id=row.pop("id"), metadata=row)
        if read:
            self.stat_update("documents", value=read)


class RemovedJsonlWriter(DiskWriter):
    """removed/<folder>/<rank>.jsonl, plain JSONL to read by eye: one removed_row per dropped document.

    datatrove's JsonlWriter writes the same lines, but making one (here, and again in each worker that unpickles
    it) checks that the `orjson` distribution is installed by parsing the metadata of every installed
    distribution: 0.3 to 0.5 s of a run's serial start (docs/performance.md, 2026-12-06). orjson is a dependency
    of this package, installed with it.
    """

    default_output_filename = "${rank}.jsonl"
    name = "🐿 removed jsonl"

    def __init__(self, output_folder: str, output_filename: str):
        super().__init__(
            output_folder, output_filename=output_filename, compression=None, adapter=removed_row, mode="wb"
        )

    def _write(self, document: dict, file_handler, _filename: str) -> None:
        file_handler.write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))


def removed_row(self, doc: Document) -> dict:
    """RemovedJsonlWriter's adapter for removed/<reason>/: id, reason detail, source location and text."""
    m = doc.metadata
    return {
        "id": doc.id,
        "detail": m.get("detail", ""),
        "file": m.get("file"),
        "line": m.get("line"),
        "chars_before": m.get("chars_before", len(doc.text)),
        "text": doc.text,
    }


def cleaned_row(self, doc: Document) -> dict:
    """JsonlWriter adapter for the intermediate cleaned documents (text + the metadata later steps need)."""
    keep = {
        k: doc.metadata.get(k)
        for k in ("source", "file", "line", "chars_before", "doc_id", "paragraph")
        if k in doc.metadata
    }
    return {"id": doc.id, "text": doc.text, **keep}
