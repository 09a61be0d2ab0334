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


def compact_table(df: pd.DataFrame, decimals: int = 3):
    """`df` for reading: numbers to `decimals` places, columns that are the same in every row (at that precision)
    dropped and named in the caption instead. A pandas Styler; its `.data` is the table shown."""
    shown = df.round(decimals)
    constant = [c for c in shown.columns if len(shown) > 1 and shown[c].astype(str).nunique() == 1]
    note = ", ".join(f"{c} {shown[c].iloc[0]}" for c in constant)
    styler = shown.drop(columns=constant).style.format(precision=decimals).hide(axis="index")
    return styler.set_caption(f"same in every row: {note}") if note else styler


# how the targets are shown: the 80/10/10 policy's three parts, then synonyms (outside the policy)
SHOWN_AS = {"[MASK]": "#e03131", "random": "#f08c00", "kept": "#1c7ed6", "synonym": "#9c36b5"}


def shown_as_shares(df: pd.DataFrame) -> pd.DataFrame:
    """Per strategy_statistics row, the share of all targets shown as [MASK] / random / kept / synonym (sums to 1):
    the policy shares are of the targets that went through 80/10/10, i.e. of (1 - share_synonym) of them."""
    policy = 1.0 - df["share_synonym"]
    return pd.DataFrame(
        {
            "[MASK]": df["share_mask"] * policy,
            "random": df["share_random"] * policy,
            "kept": df["share_kept"] * policy,
            "synonym": df["share_synonym"],
        }
    ).set_index(df["strategy"])


def plot_strategy_statistics(df: pd.DataFrame, policy: tuple[float, float] = (0.8, 0.1)):
    """Per strategy_statistics row: how the targets are shown (stacked [MASK] / random / kept / synonym, dashed:
    the `policy` [MASK] and [MASK]+random shares) and the mean masked-unit length."""
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()  # the titles are Chinese
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    labels = df["strategy"].tolist()
    shares = shown_as_shares(df)
    bottom = np.zeros(len(df))
    for kind, colour in SHOWN_AS.items():
        axes[0].bar(labels, shares[kind], bottom=bottom, color=colour, label=kind)
        bottom += shares[kind].to_numpy()
    for y in (policy[0], policy[0] + policy[1]):
        axes[0].axhline(y, ls="--", c="k", lw=0.8)
    axes[0].set_ylim(0, 1)
    axes[0].set_title("目标的显示方式 targets shown as (80/10/10 + synonym)")
    axes[0].legend(loc="lower left", fontsize=8, framealpha=0.9)
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


class ExportedFigures(list):
    """The paths export_figures wrote, shown as one line (how many files, where, which figures), not a list."""

    def __init__(self, paths, reports_dir: str | Path):
        super().__init__(paths)
        self.reports_dir = Path(reports_dir)

    def summary(self) -> str:
        names = ", ".join(dict.fromkeys(p.stem for p in self))
        formats = ", ".join(dict.fromkeys(p.suffix.lstrip(".") for p in self))
        return f"wrote {len(self)} files into {self.reports_dir}: {names} ({formats})"

    def __repr__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's display of a cell's value
        printer.text(self.summary())


def export_figures(figures: Mapping[str, Any], reports_dir: str | Path) -> ExportedFigures:
    """Save every figure as reports_dir/<name>.png and .svg (reports.save_figure); returns the paths written
    (a list that displays as one summary line)."""
    from ..reports import save_figure

    return ExportedFigures(
        [p for name, fig in figures.items() for p in save_figure(fig, name, reports_dir)], reports_dir
    )


def export_button(figures: Mapping[str, Any], reports_dir: str | Path):
    """An 'export figures' button (ipywidgets): while it writes, it is disabled and says so; then the status
    line says what it wrote (or why it could not)."""
    import ipywidgets as w

    idle = {"description": "export figures", "icon": "download", "disabled": False}
    button = w.Button(
        tooltip=f"PNG + SVG of {len(figures)} figures into {reports_dir}", layout=w.Layout(width="auto"), **idle
    )
    status = w.HTML()

    def on_click(_):
        button.description, button.icon, button.disabled = "exporting…", "spinner", True
        status.value = f"writing {len(figures)} figures into {html.escape(str(reports_dir))} …"
        try:
            status.value = html.escape(export_figures(figures, reports_dir).summary())
        except Exception as e:  # noqa: BLE001 - a full disk or a closed figure: say it in the widget
            status.value = (
                f'<span style="color:var(--jp-error-color1, #c92a2a)">export failed: {html.escape(str(e))}</span>'
            )
        finally:
            for key, value in idle.items():
                setattr(button, key, value)

    button.on_click(on_click)
    box = w.HBox([button, status], layout=w.Layout(flex_flow="row wrap", align_items="center"))
    box.add_class("obert-export")
    box.button, box.status = button, status
    return box
