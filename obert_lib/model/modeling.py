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
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (BaseModelOutputWithPooling, MaskedLMOutput, SequenceClassifierOutput,
                                           TokenClassifierOutput)

from ..config import UserError
from .configuration import ModelConfig, OBertConfig
from .positions import apply_rotary, relative_position_bucket, relative_positions, rotary_tables

logger = logging.getLogger(__name__)


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint lacks weights the model needs (they would be random) or holds weights it cannot place."""


class OBertEmbeddings(nn.Module):
    """Word + token-type (+ learned absolute position) embeddings, then LayerNorm and dropout (Devlin et al. 2019)."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        if config.position == "absolute":
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        else:
            self.position_embeddings = None  # relative/rotary positions act inside attention
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids, position_ids, inputs_embeds=None) -> torch.Tensor:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds  # [B, T, H]
        x = x + self.token_type_embeddings(token_type_ids)
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(position_ids)  # position_ids [B or 1, T] broadcasts
        return self.dropout(self.LayerNorm(x))


class OBertSelfAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017) through F.scaled_dot_product_attention, optional RoPE on q/k."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.heads, self.head_dim = config.num_attention_heads, config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x, attn_bias=None, cos=None, sin=None) -> torch.Tensor:
        batch, length, _ = x.shape  # x [B, T, H]

        def split(t):  # [B, T, H] -> [B, heads, T, d]
            return t.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        if cos is not None:
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # attn_bias: additive float mask [B, 1 or heads, 1 or T, T] (padding, plus the relative bias), or None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias,
                                             dropout_p=self.dropout_p if self.training else 0.0)  # [B, heads, T, d]
        return out.transpose(1, 2).reshape(batch, length, -1)  # [B, T, H]


class OBertResidualOutput(nn.Module):
    """Branch output projection + dropout + residual; LayerNorm after the sum (Post-LN) or on the branch input (Pre-LN)."""

    def __init__(self, config: OBertConfig, in_features: int):
        super().__init__()
        self.pre_norm = config.layer_norm == "pre"
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def branch_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the branch reads: LN(x) in Pre-LN, x in Post-LN."""
        return self.LayerNorm(x) if self.pre_norm else x

    def forward(self, branch: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        out = residual + self.dropout(self.dense(branch))  # [B, T, H]
        return out if self.pre_norm else self.LayerNorm(out)


class OBertAttention(nn.Module):
    """Self-attention sub-block with its residual connection."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.self = OBertSelfAttention(config)
        self.output = OBertResidualOutput(config, config.hidden_size)

    def forward(self, x, attn_bias=None, cos=None, sin=None) -> torch.Tensor:
        return self.output(self.self(self.output.branch_input(x), attn_bias, cos, sin), x)


class OBertIntermediate(nn.Module):
    """First feed-forward projection and its activation (GELU for BERT checkpoints)."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))  # [B, T, F]


class OBertLayer(GradientCheckpointingLayer):
    """One transformer block; under gradient checkpointing its forward is recomputed in backward."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.attention = OBertAttention(config)
        self.intermediate = OBertIntermediate(config)
        self.output = OBertResidualOutput(config, config.intermediate_size)

    def forward(self, x, attn_bias=None, cos=None, sin=None) -> torch.Tensor:
        # Tensors are positional: the checkpoint wrapper only passes positional arguments through recomputation.
        x = self.attention(x, attn_bias, cos, sin)
        return self.output(self.intermediate(self.output.branch_input(x)), x)


class OBertEncoder(nn.Module):
    """The layer stack, the shared relative position bias (T5 computes it once and reuses it in every layer)."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList(OBertLayer(config) for _ in range(config.num_hidden_layers))
        if config.position == "relative":
            self.relative_attention_bias = nn.Embedding(config.relative_buckets, config.num_attention_heads)
        if config.layer_norm == "pre":
            self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def position_bias(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Learned scalar per (bucket, head). [B or 1, T] -> [B or 1, heads, T, T]"""
        buckets = relative_position_bucket(relative_positions(position_ids), self.config.relative_buckets,
                                           self.config.relative_max_distance)  # [B, T, T]
        return self.relative_attention_bias(buckets).permute(0, 3, 1, 2)

    def forward(self, x, padding_bias, position_ids, output_hidden_states=False):
        attn_bias, cos, sin = padding_bias, None, None
        if self.config.position == "relative":
            bias = self.position_bias(position_ids).to(x.dtype)
            attn_bias = bias if padding_bias is None else (bias + padding_bias).clamp(min=torch.finfo(x.dtype).min)
        elif self.config.position == "rotary":
            cos, sin = rotary_tables(position_ids, self.config.head_dim, self.config.rotary_base, x.dtype)
        states = [x] if output_hidden_states else None
        for layer in self.layer:
            x = layer(x, attn_bias, cos, sin)
            if states is not None:
                states.append(x)
        if self.config.layer_norm == "pre":
            x = self.final_layer_norm(x)  # Pre-LN leaves the residual stream unnormalised
            if states is not None:
                states[-1] = x
        return x, (tuple(states) if states is not None else None)


class OBertPooler(nn.Module):
    """tanh(W h_[CLS] + b), BERT's sentence vector for classification."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(hidden[:, 0]))  # [B, H]


class OBertPredictionHeadTransform(nn.Module):
    """Dense + activation + LayerNorm before the vocabulary projection (BERT's MLM head)."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform_act_fn = ACT2FN[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(x)))


class OBertLMPredictionHead(nn.Module):
    """Vocabulary logits; `decoder.weight` is tied to the word embeddings and `decoder.bias` to `bias`."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.transform = OBertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x))  # [B, T, V]


class OBertMLMHead(nn.Module):
    """Container that gives the head BERT's key names (`cls.predictions.*`)."""

    def __init__(self, config: OBertConfig):
        super().__init__()
        self.predictions = OBertLMPredictionHead(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictions(x)


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
        """transformers' from_pretrained, then a key check that raises CheckpointMismatchError rather than random-initialise.

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
            message = (f"{cls.__name__} from {source}: missing weights {bad_missing} (would be random), "
                       f"unexpected weights {bad_unexpected} (would be ignored); make the config options match "
                       "the checkpoint, or pass strict=False")
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

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                output_hidden_states=None, output_attentions=None, return_dict=None):
        """input_ids [B, T]; attention_mask [B, T] (1 = token, 0 = padding); token_type_ids [B, T]; position_ids [B or 1, T]."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        if output_attentions:
            raise ValueError("scaled_dot_product_attention does not return attention weights; output_attentions is unsupported")
        batch, length = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if position_ids is None:
            position_ids = torch.arange(length, device=device)[None]  # [1, T]
        if self.config.position == "absolute" and length > self.config.max_position_embeddings:
            raise ValueError(f"{length} tokens exceed max_position_embeddings ({self.config.max_position_embeddings}); "
                             "shorten the input")
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=device)
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # [B, T, H]
        padding_bias = None
        if attention_mask is not None:  # 0 where the key is padding, the dtype's minimum where it is (softmax -> 0)
            keep = attention_mask[:, None, None, :].to(torch.bool)  # [B, 1, 1, T]
            padding_bias = torch.zeros(keep.shape, dtype=x.dtype, device=device).masked_fill(~keep, torch.finfo(x.dtype).min)
        want_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        hidden, states = self.encoder(x, padding_bias, position_ids, want_states)
        out = BaseModelOutputWithPooling(last_hidden_state=hidden,
                                         pooler_output=self.pooler(hidden) if self.pooler is not None else None,
                                         hidden_states=states)
        return out if return_dict is not False else out.to_tuple()


class OBertForMaskedLM(OBertPreTrainedModel):
    """Encoder + BERT's MLM head; loss = cross-entropy over positions whose label is not -100."""

    _foreign_weight_patterns = (r"^cls\.seq_relationship\.", r"(^|\.)pooler\.", r"^classifier\.")  # NSP head, pooler
    _tied_weights_keys = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                          "cls.predictions.decoder.bias": "cls.predictions.bias"}

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

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None, return_dict=None):
        """labels [B, T]: target ids at masked positions, -100 elsewhere."""
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                        output_hidden_states, output_attentions)
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

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None, return_dict=None):
        """labels [B]: class ids (float targets when num_labels == 1 or problem_type is multi-label)."""
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                        output_hidden_states, output_attentions)
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

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                labels=None, output_hidden_states=None, output_attentions=None, return_dict=None):
        """labels [B, T]: class id per token, -100 where not scored."""
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                        output_hidden_states, output_attentions)
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
