import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from obert_lib import config as cfgmod
from obert_lib.config import ConfigError
from obert_lib.model import (
    PRESETS,
    ModelConfig,
    OBertConfig,
    OBertForMaskedLM,
    OBertModel,
    build_masked_lm,
    count_parameters,
    preset_table,
)


def test_presets_fill_shape_and_custom_keeps_it():
    assert (ModelConfig(preset="base").layers, ModelConfig(preset="base").hidden) == (12, 768)
    custom = ModelConfig(preset="custom", layers=3, hidden=48, heads=4, ffn=96)
    assert (custom.layers, custom.hidden, custom.heads, custom.ffn) == (3, 48, 4, 96)
    assert set(PRESETS) >= {"tiny", "small", "base", "100M", "300M", "1B"}
    assert PRESETS["100M"] == PRESETS["base"] and PRESETS["300M"] == (24, 1024, 16, 4096)


def test_invalid_shapes_and_options_name_the_key():
    with pytest.raises(ConfigError, match="heads: hidden \\(50\\) must be divisible by heads \\(4\\)"):
        ModelConfig(preset="custom", hidden=50, heads=4)
    with pytest.raises(ConfigError, match="preset: 'huge' is unknown"):
        ModelConfig(preset="huge")
    with pytest.raises(ConfigError, match="layer_norm: 'sandwich' is unknown"):
        ModelConfig(layer_norm="sandwich")
    with pytest.raises(ConfigError, match="position: 'alibi' is not allowed"):
        cfgmod.from_dict(ModelConfig, {"position": "alibi"})
    with pytest.raises(ConfigError, match="gradient_checkpointing: expected true/false"):
        cfgmod.from_dict(ModelConfig, {"gradient_checkpointing": "yes"})
    with pytest.raises(ConfigError, match="layernorm: unknown key in ModelConfig; did you mean 'layer_norm'"):
        cfgmod.from_dict(ModelConfig, {"layernorm": "pre"})
    with pytest.raises(StrictDataclassClassValidationError, match="position: 'alibi' is unknown"):
        OBertConfig(position="alibi")


def test_options_reach_the_hf_config():
    hf = ModelConfig(layer_norm="pre", position="rotary").to_hf(vocab_size=100, pad_token_id=3)
    assert (hf.model_type, hf.layer_norm, hf.position, hf.pad_token_id, hf.type_vocab_size) == (
        "obert",
        "pre",
        "rotary",
        3,
        2,
    )
    model = build_masked_lm(ModelConfig(gradient_checkpointing=True), vocab_size=100)
    assert isinstance(model, OBertForMaskedLM) and model.is_activation_checkpointing


def _bert_counts(h: int, f: int, layers: int, vocab: int, positions: int = 512) -> tuple[int, int]:
    """(encoder + pooler, encoder + MLM head) parameters of BERT by hand."""
    embeddings = vocab * h + positions * h + 2 * h + 2 * h  # word, position, token type, LayerNorm
    layer = 4 * (h * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h  # q k v o, LN, FFN in/out, LN
    pooler = h * h + h
    mlm_head = h * h + h + 2 * h + vocab  # transform dense + LayerNorm + decoder bias (decoder weight tied)
    return embeddings + layers * layer + pooler, embeddings + layers * layer + mlm_head


def test_tiny_parameter_count_matches_bert_arithmetic():
    model = build_masked_lm(ModelConfig(preset="tiny", max_positions=128), vocab_size=1000)
    assert count_parameters(model) == _bert_counts(64, 256, 2, 1000, 128)[1]


def test_bert_base_chinese_counts_measured_on_meta():
    with torch.device("meta"):
        encoder = OBertModel(ModelConfig(preset="base").to_hf(21128))
    assert count_parameters(encoder) == 102_267_648 == _bert_counts(768, 3072, 12, 21128)[0]  # bert-base-chinese
    table = preset_table(["base", "100M", "300M", "1B"]).set_index("preset")
    assert table.loc["100M", "parameters"] == 102_290_312 == _bert_counts(768, 3072, 12, 21128)[1]
    for name in ("300M", "1B"):
        layers, hidden, _, ffn = PRESETS[name]
        assert table.loc[name, "parameters"] == _bert_counts(hidden, ffn, layers, 21128)[1]
    assert table.loc["1B", "parameters"] == 1_257_147_016


def test_options_add_only_their_parameters():
    base = dict(preset="custom", layers=2, hidden=32, heads=4, ffn=64, max_positions=64)
    count = {}
    for name, extra in {
        "post": {},
        "pre": {"layer_norm": "pre"},
        "relative": {"position": "relative"},
        "rotary": {"position": "rotary"},
    }.items():
        with torch.device("meta"):
            count[name] = count_parameters(OBertForMaskedLM(ModelConfig(**base, **extra).to_hf(100)))
    assert count["pre"] - count["post"] == 2 * 32  # the final LayerNorm
    assert count["rotary"] - count["post"] == -64 * 32  # no learned position table
    assert count["relative"] - count["post"] == -64 * 32 + 32 * 4  # 32 buckets x 4 heads, shared by all layers
