"""Masking stage: span-mask strategies, the MLM collator and views of what they do."""
from .collator import MaskingCollator
from .strategies import FALLBACK, STRATEGIES, MaskConfig, apply_replacement, choose_masked_positions, replaceable_ids
from .view import (MaskedView, MaskPreviewer, mask_widget, plot_strategy_statistics, render_html, render_strategies,
                   strategy_statistics)

__all__ = ["FALLBACK", "STRATEGIES", "MaskConfig", "MaskedView", "MaskPreviewer", "MaskingCollator", "apply_replacement",
           "choose_masked_positions", "mask_widget", "plot_strategy_statistics", "render_html", "render_strategies", "replaceable_ids",
           "strategy_statistics"]
