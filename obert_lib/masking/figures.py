"""Masks across strategies, for reports: each strategy on one paragraph, a comparison table, its figures
and their export (PNG + SVG) from a button or a cell."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .knowledge import KnowledgeSegments
from .strategies import STRATEGIES, MaskConfig
from .view import MaskControls, MaskPreviewer, render_controls


def render_strategies(
    previewer: MaskPreviewer, text: str, mask_rate: float = 0.15, seed: int = 0, knowledge: bool = False
) -> str:
    """HTML of `text` masked by every strategy in turn, one titled block each."""
    return "".join(
        f"<h4>{s}</h4>"
        + render_controls(previewer, MaskControls(text, s, mask_rate=mask_rate, seed=seed, knowledge=knowledge))
        for s in STRATEGIES
    )


def strategy_comparison(
    rows: Sequence[dict[str, Any]],
    tokenizer,
    knowledge: KnowledgeSegments | None = None,
    mask_rate: float = 0.15,
    max_length: int = 128,
    seed: int = 0,
    mixture: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """strategy_statistics for every strategy plus a mixture, synonym replacement and (with `knowledge`) K_w masking."""
    from .statistics import strategy_statistics

    mixture = dict(mixture or {"word": 0.4, "entity": 0.2, "phrase": 0.2, "clause": 0.2})
    extra = {
        "mixture": MaskConfig(mixture=mixture, mask_rate=mask_rate),
        "word + synonym": MaskConfig(strategy="word", mask_rate=mask_rate, synonym={"enabled": True}),
    }
    if knowledge is not None:
        extra["entity + knowledge"] = MaskConfig(strategy="entity", mask_rate=mask_rate, knowledge={"enabled": True})
    df = strategy_statistics(
        rows, tokenizer, mask_rate=mask_rate, max_length=max_length, seed=seed, extra=extra, knowledge=knowledge
    )
    labels = {
        **{s: s for s in STRATEGIES},
        "mixture": extra["mixture"].label,
        "word + synonym": f"word, synonym rate {extra['word + synonym'].synonym.rate:g}",
        "entity + knowledge": "entity, K_w segment",
    }
    df.insert(1, "config", df["strategy"].map(labels))
    return df


def plot_strategy_statistics(df: pd.DataFrame, target_rate: float = 0.15):
    """Bars of realised mask rate (dashed: `target_rate`) and mean masked-unit length per strategy_statistics row."""
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()  # the titles are Chinese
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = df["strategy"].tolist()
    axes[0].bar(labels, df["mask_rate"], color="#d9534f")
    axes[0].axhline(target_rate, ls="--", c="k", lw=1)
    axes[0].set_title("实际掩码率 realised mask rate")
    axes[1].bar(labels, df["mean_span_length"], color="#5bc0de")
    axes[1].set_title("平均掩码片段长度 mean masked span length (tokens)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
        plt.setp(ax.get_xticklabels(), ha="right")
    fig.tight_layout()
    return fig


def plot_span_lengths(df: pd.DataFrame, max_length: int = 16):
    """One histogram per strategy of masked-unit lengths (span_length_table); longer units pile up in the last bar."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from ..reports import setup_cjk_font

    setup_cjk_font()  # the titles are Chinese
    strategies = list(dict.fromkeys(df["strategy"]))
    cols = 3
    rows = -(-len(strategies) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.8 * rows), squeeze=False)
    bins = np.arange(1, max_length + 2) - 0.5
    for ax, s in zip(axes.flat, strategies):
        lengths = np.minimum(df.loc[df["strategy"] == s, "length"].to_numpy(), max_length)
        weights = np.full(len(lengths), 1.0 / max(1, len(lengths)))
        ax.hist(lengths, bins=bins, weights=weights, color="#4c6ef5", edgecolor="white")
        mean = float(np.mean(df.loc[df["strategy"] == s, "length"])) if len(lengths) else 0.0
        ax.set_title(f"{s} · 平均 mean {mean:.1f}", fontsize=10)
        ax.set_ylabel("占比 share")
        ax.set_xlim(0, max_length + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(strategies) :]:
        ax.set_visible(False)
    for k in range(min(cols, len(strategies))):  # the lowest plot of each column
        axes[(len(strategies) - 1 - k) // cols, k].set_xlabel(
            f"掩码单元长度 masked unit length (tokens; {max_length} = {max_length}+)"
        )
    fig.suptitle("各策略掩码单元长度分布 masked-unit length per strategy")
    fig.tight_layout()
    return fig


def export_figures(figures: Mapping[str, Any], reports_dir: str | Path) -> list[Path]:
    """Save every figure as reports_dir/<name>.png and .svg (reports.save_figure); returns the paths written."""
    from ..reports import save_figure

    return [p for name, fig in figures.items() for p in save_figure(fig, name, reports_dir)]


def export_button(figures: Mapping[str, Any], reports_dir: str | Path):
    """An 'export figures' button (ipywidgets) whose click runs export_figures and lists the files written."""
    import ipywidgets as w

    button = w.Button(description="export figures", icon="download", tooltip=f"PNG + SVG into {reports_dir}")
    status = w.HTML()

    def on_click(_):
        paths = export_figures(figures, reports_dir)
        status.value = f"wrote {len(paths)} files: " + ", ".join(html.escape(p.name) for p in paths)

    button.on_click(on_click)
    box = w.HBox([button, status])
    box.button, box.status = button, status
    return box
