"""The experiment's own figure: every variant's MLM loss and accuracy against the tokens it has trained on."""

from __future__ import annotations

import pandas as pd


def plot_loss_curves(curves: pd.DataFrame):
    """MLM loss (left) and MLM accuracy (right) against tokens trained on, one line per run, stage starts dotted.

    curves: report's `curves` table (run, variant, seed, global_step, stage, tokens_seen, loss, mlm_accuracy).
    The x axis counts real tokens (padding excluded), so variants of the same budget end at about the same x.
    """
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()  # the titles are Chinese
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (run, part) in enumerate(curves.groupby("run", sort=False)):
        colour = f"C{k % 10}"
        ax_loss.plot(part["tokens_seen"], part["loss"], color=colour, label=run)
        ax_acc.plot(part["tokens_seen"], part["mlm_accuracy"], color=colour, label=run)
        starts = part[part["stage"].diff().fillna(0) != 0]["tokens_seen"]  # where a later stage begins
        for x in starts:
            for ax in (ax_loss, ax_acc):
                ax.axvline(x, color=colour, ls=":", lw=1)
    ax_loss.set(title="MLM 损失 loss", xlabel="tokens trained on (padding excluded)", ylabel="loss")
    ax_acc.set(title="MLM 准确率 accuracy", xlabel="tokens trained on (padding excluded)", ylabel="accuracy")
    ax_loss.legend(loc="upper right", fontsize=8)
    fig.suptitle("预训练变体 pretraining variants, same corpus and budget", fontsize=10)
    fig.tight_layout()
    return fig
