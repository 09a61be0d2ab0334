"""Distillation stage: a teacher's knowledge into a smaller student (Hinton et al. 2015; TinyBERT, Jiao et al.
2020; TextBrewer, Yang et al. 2020). losses.py: logit KD, hidden-state and attention-score MSE;
layer_map.py: which student layer learns from which teacher layer."""

from .layer_map import LayerMap, check_layer_map, uniform_layer_map
from .losses import HiddenStateMSE, attention_score_mse, kd_loss, task_distillation_loss

__all__ = [
    "LayerMap",
    "HiddenStateMSE",
    "attention_score_mse",
    "check_layer_map",
    "kd_loss",
    "task_distillation_loss",
    "uniform_layer_map",
]
