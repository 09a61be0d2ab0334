"""Pre-softmax attention scores of an OBERT encoder, for TinyBERT's attention-score MSE (Jiao et al. 2020, eq. 7).

The encoder attends through F.scaled_dot_product_attention, which returns no scores. Forward hooks on each
chosen layer's query and key projections keep their outputs, and `scores()` forms QKᵀ/√d, the scores the
softmax would see before the padding mask (the loss masks padding itself). Only absolute-position encoders
qualify: rotary positions rotate q and k after these projections and relative ones add a bias to the scores,
so hooks on the projections would miss part of the score (the distillation config refuses them).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class AttentionScores:
    """Hooks on `model`'s layers `layers` (1-based transformer layers); `scores()` after a forward pass.

    model: an OBertForMaskedLM / OBertModel (anything with `.bert.encoder.layer` or `.encoder.layer`).
    scores() -> list of length L: [B, heads, T, T] for a hooked layer (index i holds layer i + 1), None otherwise.
    """

    def __init__(self, model: nn.Module, layers: Sequence[int]):
        encoder = model.bert.encoder if hasattr(model, "bert") else model.encoder
        self.count = len(encoder.layer)
        self.layers = sorted({int(i) for i in layers if i >= 1})
        self.outputs: dict[tuple[int, str], torch.Tensor] = {}
        self.handles = []
        self.shape: dict[int, tuple[int, int]] = {}
        for i in self.layers:
            attention = encoder.layer[i - 1].attention.self
            self.shape[i] = (attention.heads, attention.head_dim)
            for name in ("query", "key"):
                self.handles.append(getattr(attention, name).register_forward_hook(self._keeper(i, name)))

    def _keeper(self, layer: int, name: str):
        def keep(module, inputs, output):
            self.outputs[(layer, name)] = output

        return keep

    def scores(self) -> list[torch.Tensor | None]:
        out: list[torch.Tensor | None] = [None] * self.count
        for i in self.layers:
            heads, dim = self.shape[i]
            q, k = self.outputs[(i, "query")], self.outputs[(i, "key")]  # [B, T, H]
            batch, length, _ = q.shape

            def split(t):  # [B, T, H] -> [B, heads, T, d]
                return t.view(batch, length, heads, dim).transpose(1, 2)

            out[i - 1] = split(q) @ split(k).transpose(-1, -2) / math.sqrt(dim)  # [B, heads, T, T]
        self.outputs.clear()
        return out

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles, self.layers = [], []
        self.outputs.clear()
