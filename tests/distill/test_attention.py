"""Attention scores from hooks on the query/key projections: softmax(scores + padding) @ V reproduces what
scaled_dot_product_attention computed inside the encoder."""

from __future__ import annotations

import torch

from obert_lib.distill import attention_score_mse
from obert_lib.distill.attention import AttentionScores
from obert_lib.model import ModelConfig, build_masked_lm


def test_hooked_scores_reproduce_the_encoders_attention():
    model = build_masked_lm(ModelConfig(preset="tiny", max_positions=16), vocab_size=50, seed=0).eval()
    layer = model.bert.encoder.layer[1].attention.self  # transformer layer 2
    kept = {}
    layer.value.register_forward_hook(lambda m, i, o: kept.__setitem__("v", o))
    layer.register_forward_hook(lambda m, i, o: kept.__setitem__("out", o))
    probe = AttentionScores(model, [2])
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 8, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    scores = probe.scores()
    assert scores[0] is None and scores[1].shape == (2, 2, 5, 5)  # [B, heads, T, T] for the hooked layer only
    padding = torch.zeros(2, 1, 1, 5).masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    v = kept["v"].view(2, 5, 2, 32).transpose(1, 2)  # [B, heads, T, d]
    out = (torch.softmax(scores[1] + padding, -1) @ v).transpose(1, 2).reshape(2, 5, 64)
    assert torch.allclose(out, kept["out"], atol=1e-6)
    assert attention_score_mse(scores, scores, [(2, 2)], mask).item() == 0.0
    probe.remove()
    with torch.no_grad():
        model(input_ids=ids)
    assert probe.scores()[1] is None and not probe.outputs  # hooks removed: nothing kept
