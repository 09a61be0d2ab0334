"""Multi-task losses: task losses weighted by learned uncertainty (Kendall et al. 2018; Liebel and Körner
2018). The pretraining integration (auxiliary tasks beside MLM) is not built yet; see docs/distillation.md."""

from .uncertainty import UncertaintyWeighting, WeightedLoss, param_groups

__all__ = ["UncertaintyWeighting", "WeightedLoss", "param_groups"]
