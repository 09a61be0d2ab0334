"""Corpus stage (on datatrove): raw documents -> cleaned, deduplicated, annotated, tokenised Parquet shards.

Start reading at pipeline.py: its STAGES table names each stage and the function that returns its steps.
"""

from .config import CorpusConfig, CorpusRuntime, load_config
from .pipeline import cleaning_steps, run
from .report import (
    CorpusResult,
    dataset_card,
    load_shards,
    plot_lengths,
    removed_examples,
    sample_paragraphs,
    stats_table,
)
from .view import annotated_paragraphs_html, plot_span_statistics, render_spans_html, span_statistics
from .workers import forked_children_die_with_parent, prepare_workers

__all__ = [
    "CorpusConfig",
    "CorpusResult",
    "CorpusRuntime",
    "annotated_paragraphs_html",
    "cleaning_steps",
    "dataset_card",
    "forked_children_die_with_parent",
    "load_config",
    "load_shards",
    "plot_lengths",
    "plot_span_statistics",
    "prepare_workers",
    "removed_examples",
    "render_spans_html",
    "run",
    "sample_paragraphs",
    "span_statistics",
    "stats_table",
]
