"""Masking stage: span-mask strategies, mixtures and schedules, synonym and knowledge masking, the MLM
collator and views."""

from .collator import MaskedBatch, MaskingCollator
from .figures import (
    ExportedFigures,
    compact_table,
    export_button,
    export_figures,
    plot_span_lengths,
    plot_strategy_statistics,
    render_strategies,
    shown_as_shares,
    strategy_comparison,
)
from .knowledge import KnowledgeSegments
from .packing import pack_rows
from .pos import POS_NAMES, masked_pos_counts, masked_pos_distribution, plot_masked_pos, token_pos
from .statistics import batch_counts, collate_statistics, span_length_table, strategy_statistics
from .strategies import (
    FALLBACK,
    STRATEGIES,
    KnowledgeConfig,
    MaskConfig,
    ScheduleEntry,
    SynonymConfig,
    apply_replacement,
    choose_batch,
    choose_masked_positions,
    replaceable_ids,
)
from .synonyms import SynonymTable, corpus_words
from .view import MaskControls, MaskedView, MaskPreviewer, parse_mixture, render_controls, render_html
from .widget import WidgetState, mask_widget

__all__ = [
    "FALLBACK",
    "STRATEGIES",
    "KnowledgeConfig",
    "KnowledgeSegments",
    "MaskConfig",
    "MaskedBatch",
    "MaskedView",
    "MaskPreviewer",
    "MaskingCollator",
    "ScheduleEntry",
    "SynonymConfig",
    "SynonymTable",
    "apply_replacement",
    "batch_counts",
    "choose_batch",
    "collate_statistics",
    "choose_masked_positions",
    "corpus_words",
    "mask_widget",
    "WidgetState",
    "pack_rows",
    "plot_strategy_statistics",
    "render_html",
    "render_strategies",
    "replaceable_ids",
    "span_length_table",
    "strategy_statistics",
    # views (view.py, pos.py)
    "POS_NAMES",
    "MaskControls",
    "ExportedFigures",
    "compact_table",
    "shown_as_shares",
    "export_button",
    "export_figures",
    "masked_pos_counts",
    "masked_pos_distribution",
    "parse_mixture",
    "plot_masked_pos",
    "plot_span_lengths",
    "render_controls",
    "strategy_comparison",
    "token_pos",
]
