"""Model stage: the OBERT encoder as transformers models, its presets and their memory plans.

Importing this package registers model_type "obert" with AutoConfig and the Auto model classes, so
`AutoModelForMaskedLM.from_pretrained(stage_checkpoint)` returns an OBertForMaskedLM.
"""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration import PRESETS, ModelConfig, OBertConfig
from .memory import activation_bytes, max_micro_batch, measure, memory_plan, model_state_bytes, preset_table
from .modeling import (
    CheckpointMismatchError,
    OBertForMaskedLM,
    OBertForSequenceClassification,
    OBertForTokenClassification,
    OBertModel,
    OBertPreTrainedModel,
    build_masked_lm,
    count_parameters,
    load_masked_lm,
)
from .positions import relative_position_bucket

AutoConfig.register(OBertConfig.model_type, OBertConfig, exist_ok=True)
for _auto, _model in (
    (AutoModel, OBertModel),
    (AutoModelForMaskedLM, OBertForMaskedLM),
    (AutoModelForSequenceClassification, OBertForSequenceClassification),
    (AutoModelForTokenClassification, OBertForTokenClassification),
):
    _auto.register(OBertConfig, _model, exist_ok=True)

__all__ = [
    "PRESETS",
    "ModelConfig",
    "OBertConfig",
    "OBertPreTrainedModel",
    "OBertModel",
    "OBertForMaskedLM",
    "OBertForSequenceClassification",
    "OBertForTokenClassification",
    "CheckpointMismatchError",
    "build_masked_lm",
    "load_masked_lm",
    "count_parameters",
    "relative_position_bucket",
    "measure",
    "preset_table",
    "model_state_bytes",
    "activation_bytes",
    "max_micro_batch",
    "memory_plan",
]
