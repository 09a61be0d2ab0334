"""Model stage: encoder shapes and construction (transformers' BERT layout, so checkpoints load anywhere)."""
from __future__ import annotations

from dataclasses import dataclass

from transformers import BertConfig, BertForMaskedLM

from ..config import require

# name -> (layers, hidden, heads, ffn). 'tiny' trains in minutes on 2 CPU cores; 'base' is BERT-base
# (Devlin et al. 2019), the shape of OBERT's 100M model.
PRESETS = {
    "tiny": (2, 64, 2, 256),
    "small": (4, 256, 4, 1024),
    "base": (12, 768, 12, 3072),
}


@dataclass
class ModelConfig:
    """Encoder shape; `preset` fills layers/hidden/heads/ffn unless preset is 'custom'."""

    preset: str = "tiny"
    layers: int = 2
    hidden: int = 64
    heads: int = 2
    ffn: int = 256
    max_positions: int = 512
    dropout: float = 0.1

    def __post_init__(self):
        require(self.preset in (*PRESETS, "custom"), "preset", f"{self.preset!r} is unknown; use one of {[*PRESETS, 'custom']}")
        if self.preset != "custom":
            self.layers, self.hidden, self.heads, self.ffn = PRESETS[self.preset]
        require(self.hidden % self.heads == 0, "heads", f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        require(self.max_positions >= 8, "max_positions", "must be >= 8")
        require(0.0 <= self.dropout < 1.0, "dropout", "must be within [0, 1)")

    def to_hf(self, vocab_size: int, pad_token_id: int = 0) -> BertConfig:
        """The transformers BertConfig for this shape."""
        return BertConfig(vocab_size=vocab_size, hidden_size=self.hidden, num_hidden_layers=self.layers,
                          num_attention_heads=self.heads, intermediate_size=self.ffn,
                          max_position_embeddings=self.max_positions, hidden_dropout_prob=self.dropout,
                          attention_probs_dropout_prob=self.dropout, pad_token_id=pad_token_id)


def build_masked_lm(cfg: ModelConfig, vocab_size: int, pad_token_id: int = 0, seed: int = 0) -> BertForMaskedLM:
    """A freshly initialised masked-LM encoder (weights drawn under `seed`)."""
    import torch

    torch.manual_seed(seed)
    return BertForMaskedLM(cfg.to_hf(vocab_size, pad_token_id))


def count_parameters(model) -> int:
    """Number of parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["PRESETS", "ModelConfig", "build_masked_lm", "count_parameters"]
