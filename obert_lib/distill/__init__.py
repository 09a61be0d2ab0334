"""Distillation stage: a teacher's knowledge into a smaller student (Hinton et al. 2015; TinyBERT, Jiao et al.
2020; TextBrewer, Yang et al. 2020). losses.py: logit KD, hidden-state and attention-score MSE;
layer_map.py: which student layer learns from which teacher layer; `run(cfg)` (dispatch.py) picks the stage:
task.py, a fine-tuned teacher's logits into a truncated or smaller student, or pretrain.py, a masked-LM teacher's
MLM logits and hidden states into a student on a corpus through DeepSpeed (checks in pretrain_checks.py,
attention scores from hooks in attention.py); resume.py: what a rerun finds in its folder (an unfinished run of
the same config resumes exactly, a finished one is returned); retention.py: the retention table of finished task
runs (student against teacher: dev metric, size, speed) and its figure; curves.py: a pretraining-stage run's loss
curves."""

from .config import DistillConfig
from .curves import plot_pretrain_losses
from .dispatch import run
from .layer_map import LayerMap, check_layer_map, uniform_layer_map
from .losses import HiddenStateMSE, attention_score_mse, kd_loss, pretrain_distillation_loss, task_distillation_loss
from .pretrain import PretrainDistillResult
from .retention import plot_retention, retention_table
from .task import DistillResult

__all__ = [
    "DistillConfig",
    "DistillResult",
    "PretrainDistillResult",
    "run",
    "plot_pretrain_losses",
    "plot_retention",
    "retention_table",
    "LayerMap",
    "HiddenStateMSE",
    "attention_score_mse",
    "check_layer_map",
    "kd_loss",
    "pretrain_distillation_loss",
    "task_distillation_loss",
    "uniform_layer_map",
]
