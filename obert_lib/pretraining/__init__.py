"""Pretraining stage: curriculum stage plans trained through DeepSpeed."""
from .plan import PretrainConfig, SpeedConfig, StageConfig, gradient_accumulation, load_plan, validate
from .trainer import PretrainResult, deepspeed_config, latest_checkpoint, plan_table, plot_losses, resume_point, run

__all__ = ["PretrainConfig", "PretrainResult", "SpeedConfig", "StageConfig", "deepspeed_config", "gradient_accumulation", "latest_checkpoint", "load_plan",
           "plan_table", "plot_losses", "resume_point", "run", "validate"]
