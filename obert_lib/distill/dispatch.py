"""`distill.run(cfg)`: one entry point for both stages, chosen by `cfg.stage` (what `obert distill` calls)."""

from __future__ import annotations

from .. import config as cfgmod
from .config import DistillConfig


def run(cfg: DistillConfig | dict | str | None = None, progress: bool = True):
    """stage task → distill.task.run (a DistillResult); stage pretrain → distill.pretrain.run (a
    PretrainDistillResult). Both results carry `metrics`, `history` and `output_dir`."""
    cfg = cfgmod.load(DistillConfig, cfg)
    if cfg.stage == "pretrain":
        from .pretrain import run as run_pretrain

        return run_pretrain(cfg, progress)
    from .task import run as run_task

    return run_task(cfg, progress)
