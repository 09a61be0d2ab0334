"""Corpus shards: their Parquet schema, one batch held as columns, and ShardWriter, the step that writes them."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import numpy as np
import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.typeshelper import StatHints

from .annotate import SPAN_TYPES
from .step_stats import report_step_time

SPAN_KEYS = tuple(f"{t}_spans" for t in SPAN_TYPES)  # shard columns of the span lists, in annotate.SPAN_TYPES order
SHARD_COLUMNS = (
    "doc_id",
    "source",
    "paragraph",
    "text",
    "input_ids",
    *SPAN_KEYS,
    "knowledge_ids",
)  # shard_schema's order


def shard_schema() -> pa.Schema:
    """Parquet schema of a corpus shard: one paragraph per row, spans as token [start, end) pairs."""
    span = pa.list_(pa.list_(pa.int32()))
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("paragraph", pa.int32()),
            ("text", pa.string()),
            ("input_ids", pa.list_(pa.int32())),
            *[(f"{t}_spans", span) for t in SPAN_TYPES],
            ("knowledge_ids", pa.list_(pa.string())),
        ]
    )


class ShardColumns:
    """One batch of shard rows held as columns, one list per shard field: no dict per row.

    Rows kept as dicts until their batch is written outlive Python's young GC generations, and 1,000 of
    them per batch made the full collections that scan every object 3 to 4% of a worker's time (perf).
    """

    def __init__(self):
        self.columns: dict[str, list] = {name: [] for name in SHARD_COLUMNS}
        self._append = [(self.columns[name].append, name) for name in SHARD_COLUMNS if name != "text"]
        self._text = self.columns["text"].append
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def add(self, doc: Document) -> None:
        """Append one annotated paragraph document (the metadata that Annotate and ParagraphSplit set)."""
        m = doc.metadata
        self._text(doc.text)
        for append, name in self._append:
            append(m[name])
        self.rows += 1


class ShardWriter(PipelineStep):
    """Write annotated paragraph documents to Parquet shards (pyarrow.parquet.ParquetWriter), one batch at a time.

    Documents need the metadata of ParagraphSplit (doc_id, source, paragraph) and of Annotate
    (`input_ids`, `<type>_spans`, `knowledge_ids`); ids and spans are packed native int32 bytes, turned
    into Arrow list columns with one numpy copy per batch instead of one Python list per value. Every
    document of a task goes to the same shard, `<file id>_<output_filename>` with ${rank} filled in as
    datatrove's writers fill it: the file id starts at 000 and grows when a file reaches `max_file_size`.
    """

    name = "📒 Parquet"
    type = "💽 - WRITER"

    def __init__(
        self,
        output_folder,
        output_filename: str = "part-${rank}.parquet",
        batch_size: int = 1000,
        compression: str | None = "snappy",
        max_file_size: int = 5 * 2**30,
        write_page_index: bool = True,
    ):
        from datatrove.io import get_datafolder

        super().__init__()
        if "${" in output_filename.replace("${rank}", ""):
            raise ValueError(f"ShardWriter: output_filename {output_filename!r} may only use ${{rank}}")
        self.output_folder = get_datafolder(output_folder)
        self.output_filename, self.batch_size = output_filename, batch_size
        # datatrove's ParquetWriter defaults: snappy, 5 GiB files, a page index. Not its content-defined chunking:
        # that only helps Xet deduplication when shards are re-uploaded to the Hub, and costs about 16% of the
        # Parquet write.
        self.compression, self.max_file_size, self.write_page_index = compression, max_file_size, write_page_index
        self.schema = shard_schema()
        if self.schema.names != list(SHARD_COLUMNS):
            raise ValueError(f"ShardWriter: schema fields {self.schema.names} are not SHARD_COLUMNS {SHARD_COLUMNS}")

    def shard_name(self, rank: int | str, file_id: int = 0) -> str:
        """The file name of task `rank`'s shard number `file_id` (000_part-00000.parquet)."""
        return f"{file_id:03d}_" + self.output_filename.replace("${rank}", str(rank).zfill(5))

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import pyarrow.parquet as pq

        file_id, handle, writer, batch = 0, None, None, ShardColumns()
        written, spent = 0, 0.0
        try:
            for doc in data:
                start = perf_counter()
                if writer is None or (not batch and handle.tell() >= self.max_file_size):
                    if writer is not None:  # the file is full: close it, the next batch starts the next file
                        writer.close()
                        handle.close()
                        file_id += 1
                    handle = self.output_folder.open(self.shard_name(rank, file_id), mode="wb")
                    writer = pq.ParquetWriter(
                        handle,
                        schema=self.schema,
                        compression=self.compression,
                        use_content_defined_chunking=False,
                        write_page_index=self.write_page_index,
                    )
                batch.add(doc)
                if batch.rows >= self.batch_size:
                    writer.write_batch(shard_batch(batch.columns, self.schema))
                    batch = ShardColumns()
                written += 1
                spent += perf_counter() - start
                yield doc
        finally:  # the last batch, also when the task stops early
            start = perf_counter()
            if batch:
                writer.write_batch(shard_batch(batch.columns, self.schema))
            if writer is not None:
                writer.close()
                handle.close()
        report_step_time(self, spent + perf_counter() - start)
        if written:
            self.stat_update(self.output_filename.replace("${rank}", "XXXXX"), value=written)
            self.stat_update(StatHints.total, value=written)


def int32_array(values) -> pa.Array:
    """An int32 Arrow array over `values` (a sequence of ints or a numpy array), made from its buffer."""
    data = np.ascontiguousarray(values, dtype=np.int32)
    return pa.Array.from_buffers(pa.int32(), len(data), [None, pa.py_buffer(data)])


def string_array(values: list) -> pa.Array:
    """A string Arrow array of `values` (str or None), made from its buffers: UTF-8 bytes, int32 offsets, and a
    validity bitmap when a value is None."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"a shard batch holds {offsets[-1]} bytes of one string column; Arrow strings hold < 2 GiB")
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    buffers = [bitmap, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers, null_count=int((~valid).sum()))


def shard_batch(columns: dict[str, list], schema) -> "Any":
    """An Arrow RecordBatch from shard columns (ShardColumns.columns) whose ids and spans are packed int32 bytes.

    Every array is made from its buffers: pa.array on a Python list or a numpy array first asks whether it is a
    pandas object, which imports pandas (0.3 s in each process that writes shards; docs/performance.md, 2026-12-06).
    """

    def int32_lists(chunks: list[bytes], width: int) -> pa.Array:
        values = np.frombuffer(b"".join(chunks), dtype=np.int32)
        lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks)) // (4 * width)
        offsets = np.zeros(len(chunks) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        if width == 1:
            return pa.ListArray.from_arrays(int32_array(offsets), int32_array(values))
        inner = pa.ListArray.from_arrays(int32_array(np.arange(0, len(values) + 1, width)), int32_array(values))
        return pa.ListArray.from_arrays(int32_array(offsets), inner)

    def string_lists(lists: list[list[str]]) -> pa.Array:
        offsets = np.zeros(len(lists) + 1, dtype=np.int32)
        np.cumsum(np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)), out=offsets[1:])
        return pa.ListArray.from_arrays(int32_array(offsets), string_array([s for row in lists for s in row]))

    arrays = []
    for field in schema:
        col = columns[field.name]
        if field.name == "input_ids":
            arrays.append(int32_lists(col, 1))
        elif field.name.endswith("_spans"):
            arrays.append(int32_lists(col, 2))
        elif field.type == pa.string():
            arrays.append(string_array(col))
        elif field.type == pa.int32():
            arrays.append(int32_array(col))
        elif field.type == pa.list_(pa.string()):
            arrays.append(string_lists(col))
        else:
            raise TypeError(f"shard_batch: no builder for column {field.name} of type {field.type}")
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
