"""The loss curves of a pretraining-stage distillation run (distill.pretrain's metrics.csv)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PART_LABELS = {
    "loss": "total",
    "kd": "KD (masked positions)",
    "hidden": "hidden-state MSE",
    "attention": "attention-score MSE",
}  # the hard MLM term is on the right panel, beside the teacher's


def plot_pretrain_losses(history: pd.DataFrame | str | Path):
    """Left: the total loss and each distillation part that was computed, per step (log scale: the parts differ by
    orders of magnitude). Right: the student's MLM cross-entropy on the true tokens against the teacher's on the same
    masked batches, what the student keeps of the teacher's language model.

    history: a PretrainDistillResult.history, or the metrics.csv / run folder it was written to."""
    import matplotlib.pyplot as plt

    if not isinstance(history, pd.DataFrame):
        path = Path(history)
        history = pd.read_csv(path / "metrics.csv" if path.is_dir() else path)
    fig, (ax_parts, ax_mlm) = plt.subplots(1, 2, figsize=(10, 3.5))
    for column, label in PART_LABELS.items():
        values = pd.to_numeric(history[column], errors="coerce")
        if values.notna().any():
            ax_parts.plot(history["step"], values, label=label, linewidth=2.0 if column == "loss" else 1.0)
    ax_parts.set(title="蒸馏损失 distillation loss", xlabel="step", yscale="log")
    ax_parts.legend(loc="upper right", fontsize=8)
    ax_mlm.plot(history["step"], history["mlm"], label="student")
    ax_mlm.plot(history["step"], history["teacher_mlm"], label="teacher", linestyle="--")
    ax_mlm.set(title="MLM 交叉熵 cross-entropy", xlabel="step")
    ax_mlm.legend(loc="upper right")
    fig.tight_layout()
    return fig
