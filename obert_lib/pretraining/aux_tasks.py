"""The trainer's side of multi-task pretraining (PretrainConfig.aux_tasks; docs/multitask.md).

Without aux tasks none of this runs: the trainer builds, feeds and logs the plain masked LM as before, with
the same random draws. With them, the stage model is multitask.MultitaskPretrainModel (the masked LM, a head
per task and the learned log-variances s_i of Kendall, Gal and Cipolla 2018), each micro-batch goes in as
`engine(mlm=batch, aux={task: batch})`, and each step's row gains loss/<task>, weight/<task> (exp(−s_i),
halved for regression and Liebel), log_var/<task> and loss/total. The heads and s_i carry over to the next
stage when it warm-starts (from multitask.safetensors beside the stage checkpoint); a stage with
warm_start false starts them afresh, like its weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..multitask.data import aux_batches, build_sources, check_sizes
from ..multitask.pretrain_model import MultitaskPretrainModel
from .plan import PretrainConfig, StageConfig


def load_sources(cfg: PretrainConfig, rows: Sequence[dict[str, Any]], tokenizer, world: int) -> list:
    """Each aux task's examples, read and checked against every stage's micro-batch ([] without aux tasks)."""
    if not cfg.aux_tasks:
        return []
    sources = build_sources(cfg.aux_tasks, rows, tokenizer)
    check_sizes(cfg.aux_tasks, sources, [st.micro_batch for st in cfg.stages], world)
    return sources


def wrap(cfg: PretrainConfig, lm, warm_from: Path | None = None):
    """The stage model: `lm` itself without aux tasks, else the multi-task module (heads and s_i from the
    previous stage's checkpoint `warm_from`, or fresh, drawn from torch's generator after the LM's weights)."""
    if not cfg.aux_tasks:
        return lm
    model = MultitaskPretrainModel(lm, cfg.aux_tasks, cfg.uncertainty)
    if warm_from is not None:
        model.load_aux_state(warm_from)
    return model


def stage_stream(
    cfg: PretrainConfig, sources: list, tokenizer, si: int, rank: int, world: int, start: int
) -> Iterator[dict] | None:
    """Stage si's aux batches from micro-batch `start` (None without aux tasks); seeded (seed, si, task)."""
    if not cfg.aux_tasks:
        return None
    stage: StageConfig = cfg.stages[si]
    return aux_batches(
        cfg.aux_tasks, sources, tokenizer, stage.micro_batch, stage.seq_len, [cfg.seed, si], rank, world, start
    )


def step_values(outputs) -> list[float]:
    """One micro-batch's per-task losses, weights and s_i, then the total, as floats (to sum over ranks)."""
    return [
        *outputs.task_losses.tolist(),
        *outputs.weights.tolist(),
        *outputs.log_vars.tolist(),
        float(outputs.loss.detach()),
    ]


def step_metrics(cfg: PretrainConfig, means: Sequence[float]) -> dict[str, float]:
    """The step's columns from step_values averaged over its micro-batches (the order WeightedLoss.metrics has)."""
    names = ["mlm"] + [t.name for t in cfg.aux_tasks]
    n = len(names)
    means = np.asarray(means, dtype=np.float64)
    row = {"loss/total": float(means[3 * n])}
    for i, name in enumerate(names):
        row[f"loss/{name}"] = float(means[i])
        row[f"weight/{name}"] = float(means[n + i])
        row[f"log_var/{name}"] = float(means[2 * n + i])
    return row
