"""Multi-task pretraining: auxiliary tasks beside MLM whose losses are weighted by learned uncertainty (Kendall,
Gal and Cipolla 2018; Liebel and Körner 2018). PretrainConfig.aux_tasks turns it on; see docs/multitask.md."""

from .config import AuxTaskConfig
from .corpus_tasks import SameDocumentPairs, SentenceOrderPairs
from .pairs import read_pairs
from .plots import plot_task_weights
from .uncertainty import UncertaintyWeighting, WeightedLoss, param_groups

__all__ = [
    "AuxTaskConfig",
    "SameDocumentPairs",
    "SentenceOrderPairs",
    "UncertaintyWeighting",
    "WeightedLoss",
    "param_groups",
    "plot_task_weights",
    "read_pairs",
]
