"""Corpus stage: raw JSONL documents -> cleaned, deduplicated, annotated, tokenised Parquet shards."""
from .pipeline import (CorpusConfig, CorpusResult, CorpusRuntime, load_shards, plot_lengths, removed_examples, run,
                       sample_paragraphs, stats_table)

__all__ = ["CorpusConfig", "CorpusResult", "CorpusRuntime", "load_shards", "plot_lengths", "removed_examples", "run",
           "sample_paragraphs", "stats_table"]
