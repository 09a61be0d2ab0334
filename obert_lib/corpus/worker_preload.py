"""What every corpus worker needs, loaded once before workers start: the pipeline modules and their tables.

workers.prepare_workers makes the forkserver import this module, so that each worker forks from a
process that already holds them (copy-on-write) and starts at once. A worker started from a fresh
interpreter would import the pipeline, build the segmenter and keyword table and load OpenCC's t2s tables
before its first shard: together a large share of a small task (measured in
docs/performance.md, 2026-11-22). The steps of the default pipeline are this package's own, which declare no
datatrove dependency check (a parse of every installed distribution's metadata per process); the WARC reader,
datatrove's, does, in each worker of a WARC run. Workers import no pandas: shards.shard_batch makes its Arrow
arrays from their buffers.
"""

from __future__ import annotations

import logging

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
