"""What every corpus worker needs, loaded once before workers start: the pipeline modules and their tables.

workers.prepare_workers makes the forkserver import this module, so that each worker forks from a
process that already holds them (copy-on-write) and starts in milliseconds. A worker started from a
fresh interpreter imports the pipeline (about 0.7 s on the 2-core CI machine), builds the segmenter
and keyword table (about 0.4 s), has pyarrow import pandas (0.3 s), runs datatrove's dependency checks
of the steps it unpickles (0.1 s) and loads OpenCC's t2s tables (40 ms) before its first shard.
"""
from __future__ import annotations

import logging

import pyarrow as pa

# imported for the workers forked after this
from . import cleaning, dedup, normalize, paragraphs, pipeline, readers, shards, stage_io, workers  # noqa: F401
from .paragraph_annotator import load_shared_tables

workers.cache_loguru_lib_dirs()  # before any worker forks from this process


def check_step_dependencies() -> None:
    """Run datatrove's dependency checks of the steps corpus workers receive, here, once.

    Making a datatrove step (and unpickling one in a worker) checks the distributions it requires (pyarrow
    for the Parquet steps, orjson for the JSONL ones) by reading the metadata of every installed
    distribution: about 0.1 s per name on the 2-core CI machine, cached per process. Unchecked here, every
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

# pyarrow imports pandas on its first array built from a Python list (0.3 s here), which would otherwise
# happen in each worker's first ShardWriter batch.
pa.array([""], type=pa.string())

try:
    load_shared_tables()
    normalize._t2s_converter()  # OpenCC's t2s tables and the T2S class (40 ms), used by every Normalize step
except Exception as exc:  # noqa: BLE001 - the forkserver must not die on import; each worker then builds the tables
    logging.getLogger(__name__).warning("corpus worker preload could not build jieba's or OpenCC's tables (%s: %s); "
                                        "each worker will build them and report the error", type(exc).__name__, exc)
