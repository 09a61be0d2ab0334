"""The OBERT encoder as transformers PreTrainedModels.

Parameter names are those of transformers' BERT (`bert.embeddings.word_embeddings.weight`,
`bert.encoder.layer.0.attention.self.query.weight`, `cls.predictions.transform.dense.weight`, ...), so a
bert-base-chinese / chinese-roberta-wwm-ext checkpoint loads with no renames. Options add parameters only
where they need them: `bert.encoder.relative_attention_bias` (relative), `bert.encoder.final_layer_norm`
(Pre-LN); absolute position embeddings exist only for position "absolute".
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from ..config import UserError
from .configuration import ModelConfig, OBertConfig
from .layers import (
    OBertEmbeddings,
    OBertEncoder,
    OBertLMPredictionHead,
    OBertMLMHead,
    OBertPooler,
)

logger = logging.getLogger(__name__)


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint lacks weights the model needs (they would be random) or holds weights it cannot place."""


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(re.search(p, key) for p in patterns)


class OBertPreTrainedModel(PreTrainedModel):
    """Shared HF plumbing: config class, weight init, checkpointing support and strict checkpoint loading."""

    config_class = OBertConfig
    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _no_split_modules = ["OBertEmbeddings", "OBertLayer"]
    # Weights this class adds on top of an encoder checkpoint: missing from it is expected (they are new).
    _new_weight_patterns: tuple[str, ...] = ()
    # Weights of other heads a checkpoint may carry: dropped with a warning.
    _foreign_weight_patterns = (r"^cls\.", r"(^|\.)pooler\.", r"^classifier\.")

    @torch.no_grad()
    def _init_weights(self, module):
        """BERT's init: N(0, 0.02) weights, zero biases, unit LayerNorms (transformers' default) + zero MLM bias."""
        super()._init_weights(module)
        if isinstance(module, OBertLMPredictionHead):
            init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, strict: bool = True, **kwargs):
        """transformers' from_pretrained, then a key check that raises CheckpointMismatchError rather than
        random-initialise.

        Missing weights are allowed only where this class adds a head (`_new_weight_patterns`, listed in a
        warning); unexpected ones only where they belong to another head (pooler, MLM/NSP head, classifier).
        `strict=False` downgrades the error to a warning. A local BERT directory (config.json with model_type
        "bert") goes through `from_bert_checkpoint`, with the keyword arguments as OBertConfig options.
        """
        config_file = Path(str(pretrained_model_name_or_path)) / "config.json"
        if "config" not in kwargs and not args and config_file.is_file():
            if json.loads(config_file.read_text(encoding="utf-8")).get("model_type") == "bert":
                return cls.from_bert_checkpoint(pretrained_model_name_or_path, strict=strict, **kwargs)
        return cls._load_checked(pretrained_model_name_or_path, args, kwargs, strict, (), ())

    @classmethod
    def from_bert_checkpoint(cls, path: str | Path, strict: bool = True, output_loading_info: bool = False, **options):
        """Load a transformers BERT checkpoint directory (config.json with model_type "bert") into this class.

        `options` are OBertConfig fields on top of the BERT config (e.g. layer_norm="pre"). Weights those
        options add (relative bias, final LayerNorm) start fresh and are listed in a warning; BERT weights they
        make unused (absolute positions under relative/rotary) are listed and dropped. Any other missing or
        unexpected key raises CheckpointMismatchError.
        """
        config_file = Path(path) / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{path} holds no config.json; give a saved BERT checkpoint directory")
        config = OBertConfig.from_bert(json.loads(config_file.read_text(encoding="utf-8")), **options)
        new, dropped = [], []
        if config.position == "relative":
            new.append(r"(^|\.)encoder\.relative_attention_bias\.")
        if config.layer_norm == "pre":
            new.append(r"(^|\.)encoder\.final_layer_norm\.")
        if config.position != "absolute":
            dropped.append(r"(^|\.)embeddings\.position_embeddings\.")
        kwargs = {"config": config, "output_loading_info": output_loading_info}
        return cls._load_checked(path, (), kwargs, strict, tuple(new), tuple(dropped))

    @classmethod
    def _load_checked(cls, source, args, kwargs, strict, new_ok, dropped_ok):
        with_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(source, *args, output_loading_info=True, **kwargs)
        missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
        new = [k for k in missing if _matches(k, cls._new_weight_patterns + new_ok)]
        dropped = [k for k in unexpected if _matches(k, cls._foreign_weight_patterns + dropped_ok)]
        if new:
            logger.warning("%s from %s: newly initialised (not in the checkpoint): %s", cls.__name__, source, new)
        if dropped:
            logger.warning("%s from %s: checkpoint weights this model does not use: %s", cls.__name__, source, dropped)
        bad_missing = [k for k in missing if k not in new]
        bad_unexpected = [k for k in unexpected if k not in dropped]
        if bad_missing or bad_unexpected:
            message = (
                f"{cls.__name__} from {source}: missing weights {bad_missing} (would be random), "
                f"unexpected weights {bad_unexpected} (would be ignored); make the config options match "
                "the checkpoint, or pass strict=False"
            )
            if strict:
                raise CheckpointMismatchError(message)
            logger.warning(message)
        return (model, info) if with_info else model


class OBertModel(OBertPreTrainedModel):
    """The bare encoder: last hidden states [B, T, H] and (with the pooler) the [CLS] sentence vector [B, H]."""

    _new_weight_patterns = (r"^pooler\.",)  # an MLM checkpoint has no pooler
    _foreign_weight_patterns = (r"^cls\.", r"^classifier\.")

    def __init__(self, config: OBertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = OBertEmbeddings(config)
        self.encoder = OBertEncoder(config)
        self.pooler = OBertPooler(config) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value):
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """input_ids [B, T]; attention_mask [B, T] (1 = token, 0 = padding); token_type_ids [B, T];
        position_ids [B or 1, T]."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        if output_attentions:
            raise ValueError(
                "scaled_dot_product_attention does not return attention weights; output_attentions is unsupported"
            )
        batch, length = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if position_ids is None:
            position_ids = torch.arange(length, device=device)[None]  # [1, T]
        if self.config.position == "absolute" and length > self.config.max_position_embeddings:
            raise ValueError(
                f"{length} tokens exceed max_position_embeddings ({self.config.max_position_embeddings}); "
                "shorten the input"
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=device)
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # [B, T, H]
        padding_bias = None
        if attention_mask is not None:  # 0 where the key is padding, the dtype's minimum where it is (softmax -> 0)
            keep = attention_mask[:, None, None, :].to(torch.bool)  # [B, 1, 1, T]
            padding_bias = torch.zeros(keep.shape, dtype=x.dtype, device=device).masked_fill(
                ~keep, torch.finfo(x.dtype).min
            )
        want_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        hidden, states = self.encoder(x, padding_bias, position_ids, want_states)
        out = BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=self.pooler(hidden) if self.pooler is not None else None,
            hidden_states=states,
        )
        return out if return_dict is not False else out.to_tuple()


class OBertForMaskedLM(OBertPreTrainedModel):
    """Encoder + BERT's MLM head; loss = cross-entropy over positions whose label is not -100."""

    _foreign_weight_patterns = (r"^cls\.seq_relationship\.", r"(^|\.)pooler\.", r"^classifier\.")  # NSP head, pooler
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: OBertConfig):
        super().__init__(config)
        self.bert = OBertModel(config, add_pooling_layer=False)
        self.cls = OBertMLMHead(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """labels [B, T]: target ids at masked positions, -100 elsewhere."""
        enc = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states,
            output_attentions,
        )
        logits = self.cls(enc.last_hidden_state)  # [B, T, V]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
        out = MaskedLMOutput(loss=loss, logits=logits, hidden_states=enc.hidden_states)
        return out if return_dict is not False else out.to_tuple()


def _classifier_head(config: OBertConfig) -> tuple[nn.Dropout, nn.Linear]:
    """Dropout (classifier_dropout, else hidden_dropout_prob) and the linear layer to num_labels logits."""
    p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
    return nn.Dropout(p), nn.Linear(config.hidden_size, config.num_labels)


class OBertForSequenceClassification(OBertPreTrainedModel):
    """Pooled [CLS] -> dropout -> linear: num_labels logits; regression when num_labels == 1."""

    _new_weight_patterns = (r"^classifier\.", r"^bert\.pooler\.")
    _foreign_weight_patterns = (r"^cls\.",)

    def __init__(self, config: OBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = OBertModel(config)
        self.dropout, self.classifier = _classifier_head(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """labels [B]: class ids (float targets when num_labels == 1 or problem_type is multi-label)."""
        enc = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states,
            output_attentions,
        )
        logits = self.classifier(self.dropout(enc.pooler_output))  # [B, num_labels]
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.float())
            elif self.config.problem_type == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits, labels.float())
            else:
                loss = F.cross_entropy(logits, labels)
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=enc.hidden_states)
        return out if return_dict is not False else out.to_tuple()


class OBertForTokenClassification(OBertPreTrainedModel):
    """Per-token dropout -> linear: num_labels logits per position; labels -100 are ignored."""

    _new_weight_patterns = (r"^classifier\.",)
    _foreign_weight_patterns = (r"^cls\.", r"(^|\.)pooler\.")

    def __init__(self, config: OBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = OBertModel(config, add_pooling_layer=False)
        self.dropout, self.classifier = _classifier_head(config)
        self.post_init()

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
    ):
        """labels [B, T]: class id per token, -100 where not scored."""
        enc = self.bert(
            input_ids,
            attention_mask,
            token_type_ids,
            position_ids,
            inputs_embeds,
            output_hidden_states,
            output_attentions,
        )
        logits = self.classifier(self.dropout(enc.last_hidden_state))  # [B, T, num_labels]
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1), ignore_index=-100)
        out = TokenClassifierOutput(loss=loss, logits=logits, hidden_states=enc.hidden_states)
        return out if return_dict is not False else out.to_tuple()


def build_masked_lm(cfg: ModelConfig, vocab_size: int, pad_token_id: int = 0, seed: int = 0) -> OBertForMaskedLM:
    """A freshly initialised OBERT masked-LM encoder (weights drawn under `seed`)."""
    torch.manual_seed(seed)
    model = OBertForMaskedLM(cfg.to_hf(vocab_size, pad_token_id))
    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model


def load_masked_lm(path: str | Path, cfg: ModelConfig | None = None) -> OBertForMaskedLM:
    """A saved OBERT MLM checkpoint (strict keys), with gradient checkpointing re-enabled if `cfg` asks for it."""
    model = OBertForMaskedLM.from_pretrained(path, local_files_only=True)
    if cfg is not None and cfg.gradient_checkpointing:
        model.activation_checkpointing_enable()
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
