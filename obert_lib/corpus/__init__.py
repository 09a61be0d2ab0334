"""Corpus stage (on datatrove): raw documents -> cleaned, deduplicated, annotated, tokenised Parquet shards."""
from .pipeline import (CorpusConfig, CorpusResult, CorpusRuntime, load_config, load_shards, plot_lengths, removed_examples,
                       run, sample_paragraphs, stats_table)
from .view import annotated_paragraphs_html, plot_span_statistics, render_spans_html, span_statistics

__all__ = ["CorpusConfig", "CorpusResult", "CorpusRuntime", "annotated_paragraphs_html", "load_config", "load_shards",
           "plot_lengths", "plot_span_statistics", "removed_examples", "render_spans_html", "run", "sample_paragraphs",
           "span_statistics", "stats_table"]
