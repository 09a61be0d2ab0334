"""Fine-tuning stage: one YAML per experiment (data, model, tricks, train), a task head on a pretrained encoder,
FGM/PGD/R-Drop/NoisyTune/Multi-Sample Dropout/lexical auxiliary task/layer freezing, on PyTorch or DeepSpeed."""

from .config import FinetuneConfig
from .trainer import FinetuneResult, run

__all__ = ["FinetuneConfig", "FinetuneResult", "run"]
