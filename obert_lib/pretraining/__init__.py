"""Pretraining stage: curriculum stage plans trained through DeepSpeed."""
from .plan import PretrainConfig, SpeedConfig, StageConfig, gradient_accumulation, validate
from .trainer import PretrainResult, deepspeed_config, plan_table, plot_losses, run

__all__ = ["PretrainConfig", "PretrainResult", "SpeedConfig", "StageConfig", "deepspeed_config", "gradient_accumulation",
           "plan_table", "plot_losses", "run", "validate"]
