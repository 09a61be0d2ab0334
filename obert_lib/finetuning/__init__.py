"""Fine-tuning stage: task heads on a pretrained encoder, robustness tricks, ablation tables."""

from .trainer import TRICKS, FinetuneConfig, FinetuneResult, evaluate, plot_ablation, run, run_ablation
from .tricks import FGM, rdrop_loss

__all__ = [
    "FGM",
    "TRICKS",
    "FinetuneConfig",
    "FinetuneResult",
    "evaluate",
    "plot_ablation",
    "rdrop_loss",
    "run",
    "run_ablation",
]
