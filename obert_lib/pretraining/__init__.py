"""Pretraining stage: curriculum stage plans trained through DeepSpeed.

Start reading at trainer.run (the training loop); run_dir.py says what a run writes into its output
folder; launcher.launch starts a run in a subprocess and returns a handle.RunHandle that reads that folder.
"""

from .engine import deepspeed_config
from .guards import TrainingDiverged, TrainingGuard, loss_scale
from .handle import RunFailedError, RunHandle, RunningError, RunState
from .launcher import attach, launch
from .live import RunSummary, checkpoint_table, run_summary
from .optim import Lamb, build_optimizer, param_groups
from .plan import (
    PretrainConfig,
    SpeedConfig,
    StageConfig,
    gradient_accumulation,
    load_plan,
    scheduler_config,
    steps_for_tokens,
    validate,
    zero_stage,
)
from .plots import plan_table, plot_losses, plot_plan, stage_summary
from .resume import resume_point
from .run_dir import latest_checkpoint
from .run_lock import LiveRunError, RunLock
from .stop import EXIT_DIVERGED, EXIT_INTERRUPTED, StopRun
from .throughput import mfu, model_flops_per_token, peak_flops
from .trainer import PretrainResult, run

__all__ = [
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "LiveRunError",
    "RunLock",
    "StopRun",
    "PretrainConfig",
    "PretrainResult",
    "RunFailedError",
    "RunHandle",
    "RunState",
    "RunningError",
    "SpeedConfig",
    "StageConfig",
    "deepspeed_config",
    "gradient_accumulation",
    "latest_checkpoint",
    "load_plan",
    "attach",
    "launch",
    "plan_table",
    "plot_losses",
    "plot_plan",
    "checkpoint_table",
    "run_summary",
    "RunSummary",
    "stage_summary",
    "resume_point",
    "run",
    "validate",
    "scheduler_config",
    "steps_for_tokens",
    "zero_stage",
    "Lamb",
    "build_optimizer",
    "param_groups",
    "TrainingDiverged",
    "TrainingGuard",
    "loss_scale",
    "mfu",
    "model_flops_per_token",
    "peak_flops",
]
