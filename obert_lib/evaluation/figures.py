"""Figures of zero-shot runs: accuracy per task with intervals beside the anchors, and a confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .anchors import ANCHORS, TASK_ORDER


def plot_zero_shot(runs: dict[str, dict], anchors: tuple[str, ...] = ("RoBERTa-wwm-ext zero-shot", "majority class")):
    """Grouped bars: accuracy (%) per task and the score for each run (name -> metrics.json), with 95% bootstrap
    intervals, and the named published anchors as markers."""
    import matplotlib.pyplot as plt

    columns = [t for t in TASK_ORDER if any(t in m["tasks"] for m in runs.values())] + ["score"]
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(columns)), 3.6))
    for k, (name, metrics) in enumerate(runs.items()):
        values, errors = [], [[], []]
        for col in columns:
            m = {"accuracy": metrics.get("score"), "ci95": metrics.get("score_ci95")} if col == "score" else None
            m = m or metrics["tasks"].get(col, {})
            acc, ci = m.get("accuracy"), m.get("ci95")
            values.append(np.nan if acc is None else acc)
            errors[0].append(0 if acc is None or not ci else acc - ci[0])
            errors[1].append(0 if acc is None or not ci else ci[1] - acc)
        ax.bar(x + (k - (len(runs) - 1) / 2) * width, values, width, yerr=errors, capsize=3, label=name)
    markers = ("_", "x", "o", "^")
    for name, marker in zip(anchors, markers):
        score, accs = ANCHORS[name]
        published = dict(zip(TASK_ORDER, accs), score=score)
        ax.scatter(x, [published[c] for c in columns], marker=marker, s=120, color="black", zorder=3, label=name)
    ax.set_xticks(x, columns)
    ax.set(ylim=(0, 100), ylabel="accuracy %", title="ZeroCLUE 零样本准确率 zero-shot accuracy (95% bootstrap)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def confusion(scores: pd.DataFrame) -> pd.DataFrame:
    """Counts of gold (rows) against predicted (columns) labels from a task's scores.csv frame."""
    labels = sorted(set(scores["gold"].astype(str)) | set(scores["pred"].astype(str)))
    table = pd.crosstab(scores["gold"].astype(str), scores["pred"].astype(str))
    return table.reindex(index=labels, columns=labels, fill_value=0)


def plot_confusion(scores: pd.DataFrame, title: str = "", names: dict[str, str] | None = None):
    """Heat map of `confusion(scores)`; `names` relabels classes (e.g. tnews ids to their words)."""
    import matplotlib.pyplot as plt

    table = confusion(scores)
    labels = [(names or {}).get(label, label) for label in table.index]
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * len(labels), 1.0 + 0.4 * len(labels)))
    ax.imshow(table.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 4 else 0)
    ax.set_yticks(range(len(labels)), labels)
    values = table.to_numpy()
    for (i, j), count in np.ndenumerate(values):
        if count:  # white on the dark half of the colour map, black on the light half
            colour = "white" if count > values.max() / 2 else "black"
            ax.text(j, i, int(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set(xlabel="预测 predicted", ylabel="真实 gold", title=title or "混淆矩阵 confusion matrix")
    fig.tight_layout()
    return fig
