"""Figures of an ablation summary (ablation_stats.summarise_ablation): bars of mean ± std per task and variant,
and a heat map of Δ against the baseline (tasks × variants) with significant cells (paired t p < alpha) starred."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

BASELINE_COLOUR, VARIANT_COLOUR = "#9e9e9e", "#5cb85c"


def plot_ablation_bars(summary: pd.DataFrame, metric: str = "eval_metric"):
    """One panel per task: a bar per variant at its mean `metric`, error bars one standard deviation over seeds
    (none for a single seed); the baseline in grey. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()  # the titles are Chinese
    tasks = list(dict.fromkeys(summary["task"]))
    n_variants = summary.groupby("task").size().max()
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(0.8 + len(tasks) * (1.2 + 0.55 * n_variants), 3.6), sharey=True, squeeze=False
    )
    for ax, task in zip(axes[0], tasks):
        rows = summary[summary["task"] == task]
        x = np.arange(len(rows))
        colours = [BASELINE_COLOUR if b else VARIANT_COLOUR for b in rows["baseline"]]
        ax.bar(x, rows["mean"], yerr=rows["std"].fillna(0.0), capsize=4, color=colours)
        for xi, mean in zip(x, rows["mean"]):
            if not math.isnan(mean):
                ax.text(xi, mean / 2, f"{mean:.3f}", ha="center", va="center", fontsize=7, rotation=90)
        ax.set_xticks(x, rows["variant"], rotation=30, ha="right")
        ax.set(title=task, xlabel="变体 variant", ylim=(0, 1))
    axes[0][0].set_ylabel(f"{metric} 验证集指标 dev metric")
    fig.suptitle("微调技巧消融 fine-tuning ablation (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_ablation_delta(summary: pd.DataFrame, alpha: float = 0.05):
    """Heat map of Δ mean against the baseline, tasks down and variants (baseline excluded) across; a cell whose
    paired t-test gives p < `alpha` carries an asterisk, a cell without a value reads n/a. Returns the Figure."""
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()
    rows = summary[~summary["baseline"].astype(bool)]
    tasks = list(dict.fromkeys(summary["task"]))
    variants = list(dict.fromkeys(rows["variant"]))
    delta = rows.pivot(index="task", columns="variant", values="delta").reindex(index=tasks, columns=variants)
    p_t = rows.pivot(index="task", columns="variant", values="p_t").reindex(index=tasks, columns=variants)
    data = delta.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * max(1, len(variants)), 1.2 + 0.5 * len(tasks)))
    finite = data[np.isfinite(data)]
    limit = max(1e-6, float(np.abs(finite).max())) if finite.size else 1.0
    image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (r, c), value in np.ndenumerate(data):
        p = p_t.iat[r, c]
        star = "*" if not math.isnan(p) and p < alpha else ""
        text = "n/a" if math.isnan(value) else f"{value:+.3f}{star}"
        colour = "white" if not math.isnan(value) and abs(value) > 0.6 * limit else "black"
        ax.text(c, r, text, ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right")
    ax.set_yticks(range(len(tasks)), tasks)
    ax.set(xlabel="变体 variant", ylabel="任务 task")
    ax.set_title(f"相对基线的变化 Δ vs baseline (* paired t p < {alpha:g})", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="Δ")
    fig.tight_layout()
    return fig


def export_figures(summary: pd.DataFrame, reports_dir: str | Path, metric: str = "eval_metric") -> list[Path]:
    """Write ablation_bars and ablation_delta as PNG and SVG into `reports_dir`; returns the paths."""
    import matplotlib.pyplot as plt

    from ..reports import save_figure

    paths = []
    for name, fig in (
        ("ablation_bars", plot_ablation_bars(summary, metric)),
        ("ablation_delta", plot_ablation_delta(summary)),
    ):
        paths += save_figure(fig, name, reports_dir)
        plt.close(fig)
    return paths
