"""Model configuration: the size presets, the typed `ModelConfig` used in plans, and the HF `OBertConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..config import require

# name -> (layers, hidden, heads, ffn). 'tiny' trains in minutes on 2 CPU cores. 'base' is BERT-base
# (Devlin et al. 2019). OBERT (OPPO XiaoBu, 2022) trained 100M, 300M and 1B models: 100M is the BERT-base
# shape, 300M the BERT-large shape (24/1024/16/4096); for 1B we keep BERT-large's depth and 64-wide heads
# and double the width (24/2048/32/8192). Measured counts (21,128-token Chinese vocab, MLM head):
# 100M = 102,290,312, 300M = 325,545,608, 1B = 1,257,147,016 (memory.preset_table; tiny = 1,510,600).
PRESETS = {
    "tiny": (2, 64, 2, 256),
    "small": (4, 256, 4, 1024),
    "base": (12, 768, 12, 3072),
    "100M": (12, 768, 12, 3072),
    "300M": (24, 1024, 16, 4096),
    "1B": (24, 2048, 32, 8192),
}

LAYER_NORMS = ("post", "pre")
POSITIONS = ("absolute", "relative", "rotary")

# Fields a BERT config.json shares with OBertConfig (same names, same meaning).
_BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
    "classifier_dropout",
    "tie_word_embeddings",
)


@strict
class OBertConfig(PreTrainedConfig):
    """Configuration of the OBERT encoder: BERT's fields (same names, so BERT configs convert 1:1) plus options.

    `layer_norm`: "post" is the original BERT block, LN(x + F(x)); "pre" is x + F(LN(x)) with a final
    LayerNorm (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"), as in Motian.
    `position`: "absolute" learned embeddings (BERT); "relative" a T5 bucketed bias per head, shared across
    layers (Raffel et al. 2020, §2.1: 32 buckets, log-spaced up to distance 128 -- the values of
    `relative_buckets`/`relative_max_distance` below, also T5Config's defaults); "rotary" RoPE on q/k
    (Su et al. 2021, RoFormer, base 10000 as in the paper).
    """

    model_type = "obert"

    vocab_size: int = 21128  # the bert-base-chinese / chinese-roberta-wwm-ext vocabulary
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.1
    attention_probs_dropout_prob: float | int = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # segment A/B; the knowledge segment uses type 1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12  # BERT's value; checkpoints were trained with it
    pad_token_id: int | None = 0
    classifier_dropout: float | int | None = None
    tie_word_embeddings: bool = True
    layer_norm: str = "post"
    position: str = "absolute"
    relative_buckets: int = 32
    relative_max_distance: int = 128
    rotary_base: float = 10000.0

    def validate_architecture(self):
        """Part of `@strict` validation: reject impossible shapes and unknown options by name."""
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.layer_norm not in LAYER_NORMS:
            raise ValueError(f"layer_norm: {self.layer_norm!r} is unknown; use one of {list(LAYER_NORMS)}")
        if self.position not in POSITIONS:
            raise ValueError(f"position: {self.position!r} is unknown; use one of {list(POSITIONS)}")
        if self.position == "rotary" and (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("position 'rotary' rotates pairs of dimensions: the head size must be even")
        if self.position == "relative" and (
            self.relative_buckets < 4
            or self.relative_buckets % 2
            or self.relative_max_distance <= self.relative_buckets // 4
        ):
            raise ValueError("relative_buckets must be even and >= 4, relative_max_distance > relative_buckets / 4")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_bert(cls, bert: Any, **options) -> "OBertConfig":
        """The OBertConfig of a BERT config (BertConfig, dict or config.json dict), with `options` on top."""
        data = bert.to_dict() if hasattr(bert, "to_dict") else dict(bert)
        if data.get("model_type", "bert") != "bert":
            raise ValueError(f"expected a BERT config (model_type 'bert'), got model_type {data.get('model_type')!r}")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"BERT position_embedding_type {data['position_embedding_type']!r} has no OBERT "
                "equivalent; only 'absolute' checkpoints convert"
            )
        if data.get("is_decoder") or data.get("add_cross_attention"):
            raise ValueError("a BERT decoder / cross-attention checkpoint cannot load into the OBERT encoder")
        return cls(**{k: data[k] for k in _BERT_FIELDS if k in data}, **options)


@dataclass
class ModelConfig:
    """Encoder shape and options; `preset` sets layers/hidden/heads/ffn unless preset is 'custom'.

    Under a named preset a shape key may only repeat the preset's value (a resolved plan.json holds both);
    another value is a ConfigError that says to set preset 'custom'. Under 'custom' a key left out takes
    the 'tiny' shape's value.
    """

    preset: str = "tiny"
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    ffn: int | None = None
    max_positions: int = 512
    dropout: float = 0.1
    layer_norm: Literal["post", "pre"] = "post"
    position: Literal["absolute", "relative", "rotary"] = "absolute"
    gradient_checkpointing: bool = False  # recompute each layer in backward: less memory, ~1/3 more compute

    def __post_init__(self):
        require(
            self.preset in (*PRESETS, "custom"),
            "preset",
            f"{self.preset!r} is unknown; use one of {[*PRESETS, 'custom']}",
        )
        shape = dict(layers=self.layers, hidden=self.hidden, heads=self.heads, ffn=self.ffn)
        base = dict(zip(shape, PRESETS["tiny" if self.preset == "custom" else self.preset]))
        if self.preset != "custom":
            for key, value in shape.items():
                preset_shape = ", ".join(f"{k} {v}" for k, v in base.items())
                require(
                    value is None or value == base[key],
                    key,
                    f"{value} differs from preset {self.preset!r} ({preset_shape}), which sets the shape; set "
                    f"preset: custom (model.preset=custom) to give layers/hidden/heads/ffn yourself, "
                    f"or leave {key} out",
                )
        self.layers, self.hidden, self.heads, self.ffn = (base[k] if v is None else v for k, v in shape.items())
        require(
            self.hidden % self.heads == 0, "heads", f"hidden ({self.hidden}) must be divisible by heads ({self.heads})"
        )
        require(self.max_positions >= 8, "max_positions", "must be >= 8")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be within [0, 1)")
        require(
            self.layer_norm in LAYER_NORMS,
            "layer_norm",
            f"{self.layer_norm!r} is unknown; use one of {list(LAYER_NORMS)}",
        )
        require(self.position in POSITIONS, "position", f"{self.position!r} is unknown; use one of {list(POSITIONS)}")
        require(
            self.position != "rotary" or (self.hidden // self.heads) % 2 == 0,
            "position",
            f"'rotary' needs an even head size, got hidden/heads = {self.hidden // self.heads}",
        )

    def to_hf(self, vocab_size: int, pad_token_id: int = 0) -> OBertConfig:
        """The transformers config (OBertConfig) for this shape and these options."""
        return OBertConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            intermediate_size=self.ffn,
            max_position_embeddings=self.max_positions,
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.dropout,
            pad_token_id=pad_token_id,
            layer_norm=self.layer_norm,
            position=self.position,
        )
