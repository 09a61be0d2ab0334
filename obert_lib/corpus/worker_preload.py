"""What every corpus worker needs, loaded once before workers start: the pipeline modules and their tables.

workers.prepare_workers makes the forkserver import this module, so that each worker forks from a
process that already holds them (copy-on-write) and starts at once. A worker started from a fresh
interpreter would import the pipeline, build the segmenter and keyword table, have pyarrow import pandas,
run datatrove's dependency checks of the steps it unpickles and load OpenCC's t2s tables before its first
shard: together a large share of a small task (measured in docs/performance.md, 2026-11-22).
"""

from __future__ import annotations

import logging

import pyarrow as pa

# imported for the workers forked after this
from . import (  # noqa: F401
    _minhash,
    cleaning,
    dedup,
    dedup_index,
    kept_paragraphs,
    normalize,
    paragraphs,
    pipeline,
    readers,
    shards,
    stage_io,
    workers,
)
from .paragraph_annotator import load_shared_tables

workers.cache_loguru_lib_dirs()  # before any worker forks from this process


def check_step_dependencies() -> None:
    """Run datatrove's dependency checks of the steps corpus workers receive, here, once.

    Making a datatrove step (and unpickling one in a worker) checks the distributions it requires (pyarrow
    for the Parquet steps, orjson for the JSONL ones) by reading the metadata of every installed
    distribution, cached per process (see docs/performance.md, 2026-11-22). Unchecked here, every
    worker forked from this process would pay it before its first document. Making one of each does the check.
    """
    import tempfile

    from datatrove.pipeline.readers import JsonlReader, ParquetReader
    from datatrove.pipeline.writers import JsonlWriter

    for step in (JsonlReader, ParquetReader, JsonlWriter):
        try:
            step(tempfile.gettempdir())  # nothing is read or written until the step runs
        except ImportError:
            pass  # the worker will raise it with the step that needs the package


check_step_dependencies()

# pyarrow imports pandas on its first array built from a Python list, which would otherwise
# happen in each worker's first ShardWriter batch.
pa.array([""], type=pa.string())

try:
    load_shared_tables()
    normalize._t2s_converter()  # OpenCC's t2s tables and the T2S class, used by every Normalize step
except Exception as exc:  # noqa: BLE001 - the forkserver must not die on import; each worker then builds the tables
    logging.getLogger(__name__).warning(
        "corpus worker preload could not build jieba's or OpenCC's tables (%s: %s); "
        "each worker will build them and report the error",
        type(exc).__name__,
        exc,
    )
