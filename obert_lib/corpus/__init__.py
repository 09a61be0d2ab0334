"""Corpus stage: raw JSONL documents -> cleaned, deduplicated, annotated, tokenised Parquet shards."""
from .pipeline import CorpusConfig, CorpusResult, CorpusRuntime, load_shards, run, stats_table

__all__ = ["CorpusConfig", "CorpusResult", "CorpusRuntime", "load_shards", "run", "stats_table"]
