"""What every corpus worker needs, loaded once before workers start: the pipeline modules and jieba's tables.

pipeline.prepare_workers makes the forkserver import this module, so that each worker forks from a
process that already holds them (copy-on-write) and starts in milliseconds. A worker started from a
fresh interpreter imports the pipeline (about 0.7 s on the 2-core CI machine), builds the segmenter
and keyword table (about 0.4 s) and has pyarrow import pandas (0.3 s) before its first shard.
"""
from __future__ import annotations

import logging

import pyarrow as pa

from . import pipeline, readers, steps  # noqa: F401  (imported for the workers forked after this)
from .paragraph_annotator import load_shared_tables

# pyarrow imports pandas on its first array built from a Python list (0.3 s here), which would otherwise
# happen in each worker's first ShardWriter batch.
pa.array([""], type=pa.string())

try:
    load_shared_tables()
except Exception as exc:  # noqa: BLE001 - the forkserver must not die on import; each worker then builds the tables
    logging.getLogger(__name__).warning("corpus worker preload could not build jieba's tables (%s: %s); "
                                        "each worker will build them and report the error", type(exc).__name__, exc)
