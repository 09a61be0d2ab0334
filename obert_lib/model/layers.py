"""The OBERT encoder's building blocks (embeddings, attention, feed-forward, encoder, heads) with BERT's
parameter names, so that transformers' BERT checkpoints load with no renames (see modeling.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration import OBertConfig
from .positions import apply_rotary, relative_position_bucket, relative_positions, rotary_tables


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
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_bias, dropout_p=self.dropout_p if self.training else 0.0
        )  # [B, heads, T, d]
        return out.transpose(1, 2).reshape(batch, length, -1)  # [B, T, H]


class OBertResidualOutput(nn.Module):
    """Branch output projection + dropout + residual; LayerNorm after the sum (Post-LN) or on the branch
    input (Pre-LN)."""

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
        buckets = relative_position_bucket(
            relative_positions(position_ids), self.config.relative_buckets, self.config.relative_max_distance
        )  # [B, T, T]
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
