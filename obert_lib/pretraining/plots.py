"""Notebook views of pretraining: the stage plan as a table and a figure, the loss curves (also the live view's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .. import config as cfgmod
from .plan import PretrainConfig, SpeedConfig, load_plan, validate

RIGHT_PANEL_TITLES = {"mlm_accuracy": "MLM 准确率 accuracy", "tokens_per_s": "吞吐 tokens/s"}


def resolve_plan(plan: PretrainConfig | Mapping[str, Any] | str | Path) -> PretrainConfig:
    """A PretrainConfig from a config, a dict, a preset name or a YAML path."""
    if isinstance(plan, PretrainConfig):
        return plan
    if isinstance(plan, Mapping):
        return cfgmod.load(PretrainConfig, plan)
    return load_plan(str(plan))


def plan_table(cfg: PretrainConfig | dict | str, speed: SpeedConfig | dict | None = None) -> pd.DataFrame:
    """The stage plan as a table, with the accumulation each stage needs (validated)."""
    import torch

    cfg = cfgmod.load(PretrainConfig, cfg)
    speed = cfgmod.load(SpeedConfig, speed)
    accum = validate(cfg, speed, torch.cuda.is_available())
    return pd.DataFrame(
        [
            {
                "stage": s.name,
                "seq_len": s.seq_len,
                "global_batch": s.global_batch,
                "micro_batch": s.micro_batch,
                "accumulation": a,
                "steps": s.steps,
                "lr": s.lr,
                "strategy": s.mask.label,
                "tokens": s.steps * s.global_batch * s.seq_len,
            }
            for s, a in zip(cfg.stages, accum)
        ]
    )


def plot_losses(metrics: pd.DataFrame, right: str = "mlm_accuracy", pyplot: bool = True):
    """MLM loss (left) and `right` (MLM accuracy, or tokens/s in the live view) over global steps, a colour per stage.

    metrics: metrics.csv's rows (global_step, loss, `right`; stage and stage_name when present).
    pyplot=False draws a bare matplotlib Figure that no backend displays by itself (the live view saves it as PNG).
    """
    if pyplot:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(10, 3.5))
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.5))
    ax_loss, ax_right = fig.subplots(1, 2)
    by_stage = {"stage", "stage_name"} <= set(metrics)
    for (stage, name), part in metrics.groupby(["stage", "stage_name"]) if by_stage else [((1, "run"), metrics)]:
        ax_loss.plot(part["global_step"], part["loss"], label=f"{stage}: {name}")
        if right in part:
            ax_right.plot(part["global_step"], part[right], label=f"{stage}: {name}")
    ax_loss.set(title="MLM 损失 loss", xlabel="step")
    ax_right.set(title=RIGHT_PANEL_TITLES.get(right, right), xlabel="step")
    ax_loss.legend(loc="upper right")  # a fixed place: "best" searches the data on every redraw of the live view
    fig.tight_layout()
    return fig


def plot_plan(plan: PretrainConfig | Mapping[str, Any] | str | Path):
    """Sequence length, global batch and mask-strategy shares against the global step, stages shaded."""
    import matplotlib.pyplot as plt

    from ..masking.strategies import STRATEGIES
    from ..reports import setup_cjk_font

    cfg = resolve_plan(plan)
    setup_cjk_font()
    fig, (ax_len, ax_batch, ax_mix) = plt.subplots(
        3, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [1, 1, 1.4]}
    )
    xs, seq, batch, shares = [], [], [], []  # segment edges: (start, end) global steps with constant settings
    start, total = 0, sum(stage.steps for stage in cfg.stages)
    for i, stage in enumerate(cfg.stages):
        changes = sorted({0, *(e.from_step for e in stage.mask.schedule if 0 < e.from_step < stage.steps)})
        for a, b in zip(changes, [*changes[1:], stage.steps]):
            xs += [start + a, start + b]
            seq += [stage.seq_len] * 2
            batch += [stage.global_batch] * 2
            shares += [stage.mask.mixture_at(a)] * 2
        for ax in (ax_len, ax_batch, ax_mix):
            ax.axvspan(start, start + stage.steps, color="0.92" if i % 2 == 0 else "0.84", zorder=0)
        label = f"{i + 1}: {stage.name}" if stage.steps >= 0.15 * total else f"{i + 1}"  # narrow stage: its number
        ax_len.text(
            start + stage.steps / 2,
            1.02,
            label,
            transform=ax_len.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
        )
        start += stage.steps
    ax_len.plot(xs, seq, color="C0")
    ax_len.set(ylabel="序列长度 seq len", ylim=(0, max(seq) * 1.15))
    ax_batch.plot(xs, batch, color="C1")
    ax_batch.set(ylabel="全局批量 batch", ylim=(0, max(batch) * 1.15))
    names = [s for s in STRATEGIES if any(s in m for m in shares)]
    ax_mix.stackplot(xs, [[m.get(s, 0.0) for m in shares] for s in names], labels=names, alpha=0.85)
    ax_mix.set(ylabel="掩码策略占比 mask mix", xlabel="global step", ylim=(0, 1), xlim=(0, start))
    ax_mix.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    stages = "   ".join(f"{i + 1}: {stage.name} ({stage.steps:,} steps)" for i, stage in enumerate(cfg.stages))
    fig.suptitle(f"分阶段预训练计划 staged pretraining plan\n{stages}", y=1.0, fontsize=10)
    fig.tight_layout()
    return fig


def stage_summary(metrics: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Per stage (in run order): steps, and loss, MLM accuracy and tokens/s at its first and last step, rounded."""
    columns = [c for c in ("loss", "mlm_accuracy", "tokens_per_s") if c in metrics]
    by = "stage_name" if "stage_name" in metrics else None
    groups = metrics.groupby(by, sort=False) if by else [("run", metrics)]
    rows = []
    for name, part in groups:
        row = {"stage": name, "steps": len(part)}
        for c in columns:
            row[f"{c} first"], row[f"{c} last"] = part[c].iloc[0], part[c].iloc[-1]
        rows.append(row)
    return pd.DataFrame(rows).round(decimals)
