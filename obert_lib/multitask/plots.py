"""Notebook view of a multi-task pretraining run: each task's learned weight and loss over the steps."""

from __future__ import annotations

import pandas as pd


def task_names(metrics: pd.DataFrame) -> list[str]:
    """The tasks of a metrics table (its weight/<task> columns), MLM first."""
    return [c.split("/", 1)[1] for c in metrics.columns if c.startswith("weight/")]


def plot_task_weights(metrics: pd.DataFrame):
    """Left: each task's weight (exp(−s_i), halved for regression and Liebel; Kendall et al. 2018) per global step;
    right: each task's unweighted loss (log scale). metrics: metrics.csv of a run with aux tasks.

    Stage boundaries are dotted lines: the heads and s_i carry over, the optimiser starts afresh.
    """
    import matplotlib.pyplot as plt

    names = task_names(metrics)
    if not names:
        raise ValueError("metrics hold no weight/<task> columns: the run had no aux tasks (PretrainConfig.aux_tasks)")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name in names:
        left.plot(metrics["global_step"], metrics[f"weight/{name}"], label=name)
        right.plot(metrics["global_step"], metrics[f"loss/{name}"], label=name)
    if "stage" in metrics:
        for step in metrics.loc[metrics["stage"].diff() > 0, "global_step"]:
            for ax in (left, right):
                ax.axvline(step - 0.5, color="grey", linestyle=":", linewidth=1)
    left.set(xlabel="global step", ylabel="exp(−s)", title="任务权重 task weight")
    right.set(xlabel="global step", ylabel="loss", title="任务损失 task loss", yscale="log")
    left.legend()
    fig.tight_layout()
    return fig
