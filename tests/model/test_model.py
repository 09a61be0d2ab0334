import pytest

from obert_lib.config import ConfigError
from obert_lib.model import PRESETS, ModelConfig, build_masked_lm, count_parameters


def test_presets_fill_shape_and_custom_keeps_it():
    assert (ModelConfig(preset="base").layers, ModelConfig(preset="base").hidden) == (12, 768)
    custom = ModelConfig(preset="custom", layers=3, hidden=48, heads=4, ffn=96)
    assert (custom.layers, custom.hidden, custom.heads, custom.ffn) == (3, 48, 4, 96)
    assert set(PRESETS) >= {"tiny", "base"}


def test_invalid_shapes_name_the_key():
    with pytest.raises(ConfigError, match="heads: hidden \\(50\\) must be divisible by heads \\(4\\)"):
        ModelConfig(preset="custom", hidden=50, heads=4)
    with pytest.raises(ConfigError, match="preset: 'huge' is unknown"):
        ModelConfig(preset="huge")


def test_tiny_parameter_count_matches_bert_arithmetic():
    model = build_masked_lm(ModelConfig(preset="tiny", max_positions=128), vocab_size=1000)
    h, f, L, V, P = 64, 256, 2, 1000, 128
    embeddings = V * h + P * h + 2 * h + 2 * h  # word, position, token type, LayerNorm
    layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
    mlm_head = h * h + h + 2 * h + V  # transform dense + LayerNorm + decoder bias (decoder weight tied)
    pooler = 0  # BertForMaskedLM has no pooler
    assert count_parameters(model) == embeddings + L * layer + mlm_head + pooler
