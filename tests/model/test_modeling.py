import logging
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
)

from obert_lib.model import (
    CheckpointMismatchError,
    ModelConfig,
    OBertForMaskedLM,
    OBertForSequenceClassification,
    OBertForTokenClassification,
    OBertModel,
    build_masked_lm,
)

VOCAB = 120
SMALL = dict(preset="custom", layers=2, hidden=32, heads=4, ffn=64, max_positions=64)
OPTIONS = [
    ("post", "absolute"),
    ("post", "relative"),
    ("post", "rotary"),
    ("pre", "absolute"),
    ("pre", "relative"),
    ("pre", "rotary"),
]


def _small(layer_norm="post", position="absolute", dropout=0.1, seed=0) -> OBertForMaskedLM:
    cfg = ModelConfig(**SMALL, dropout=dropout, layer_norm=layer_norm, position=position)
    return build_masked_lm(cfg, VOCAB, pad_token_id=0, seed=seed)


def _batch(seed=0, batch=3, length=12):
    """Token ids with right padding (rows shortened by 0, 3, 5), two segments."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row, pad in enumerate([0, 3, 5][:batch]):
        if pad:
            ids[row, -pad:], mask[row, -pad:] = 0, 0
    types = torch.zeros_like(ids)
    types[:, length // 2 :] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A random 2-layer transformers BertForMaskedLM, saved."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    model = BertForMaskedLM(config)
    with torch.no_grad():  # non-zero biases/LayerNorm so a mis-wired parameter would show in the logits
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("bert")
    model.save_pretrained(path)
    return path


def test_bert_checkpoint_gives_the_same_logits(bert_dir):
    bert = BertForMaskedLM.from_pretrained(bert_dir).eval()
    obert, info = OBertForMaskedLM.from_bert_checkpoint(bert_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert obert.config.model_type == "obert" and (obert.config.layer_norm, obert.config.position) == (
        "post",
        "absolute",
    )
    batch = _batch()
    with torch.no_grad():
        diff = (bert(**batch).logits - obert.eval()(**batch).logits).abs().max().item()
    assert diff < 1e-4
    assert set(obert.state_dict()) >= {
        "bert.encoder.layer.0.attention.self.query.weight",
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.decoder.weight",
    }
    via_from_pretrained = OBertForMaskedLM.from_pretrained(bert_dir).eval()  # a BERT directory converts too
    with torch.no_grad():
        assert torch.equal(via_from_pretrained(**batch).logits, obert(**batch).logits)


def test_pretraining_checkpoint_drops_nsp_and_pooler_loudly(tmp_path, caplog):
    torch.manual_seed(0)
    BertForPreTraining(
        BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path)  # bert-base-chinese's layout
    with caplog.at_level(logging.WARNING, logger="obert_lib.model.modeling"):
        OBertForMaskedLM.from_bert_checkpoint(tmp_path)
    assert "cls.seq_relationship.weight" in caplog.text and "bert.pooler.dense.weight" in caplog.text


def test_missing_weight_raises_instead_of_random_init(bert_dir, tmp_path):
    state = load_file(bert_dir / "model.safetensors")
    del state["bert.encoder.layer.1.output.dense.weight"]
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((bert_dir / "config.json").read_text())
    with pytest.raises(CheckpointMismatchError, match="bert.encoder.layer.1.output.dense.weight"):
        OBertForMaskedLM.from_bert_checkpoint(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="would be random"):
        OBertForMaskedLM.from_pretrained(tmp_path)


def test_options_on_a_bert_checkpoint_list_new_and_dropped_weights(bert_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="obert_lib.model.modeling"):
        model = OBertForMaskedLM.from_bert_checkpoint(bert_dir, layer_norm="pre", position="relative")
    assert (model.config.layer_norm, model.config.position) == ("pre", "relative")
    assert "bert.encoder.relative_attention_bias.weight" in caplog.text and "final_layer_norm" in caplog.text
    assert "bert.embeddings.position_embeddings.weight" in caplog.text


@pytest.mark.parametrize("layer_norm,position", [("post", "absolute"), ("pre", "relative"), ("pre", "rotary")])
def test_auto_round_trip_in_safetensors(tmp_path, layer_norm, position):
    model = _small(layer_norm, position).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / "pytorch_model.bin").exists()
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(loaded) is OBertForMaskedLM and loaded.config.position == position
    batch = _batch()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)


def test_auto_heads_load_from_an_mlm_checkpoint(tmp_path):
    _small("pre", "rotary").save_pretrained(tmp_path)
    batch = _batch()
    encoder = AutoModel.from_pretrained(tmp_path)
    assert type(encoder) is OBertModel and encoder(**batch).pooler_output.shape == (3, 32)
    seq = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert (
        type(seq) is OBertForSequenceClassification
        and seq.get_input_embeddings() is seq.bert.embeddings.word_embeddings
    )
    out = seq(**batch, labels=torch.tensor([0, 2, 1]))
    assert out.logits.shape == (3, 3) and torch.isfinite(out.loss)
    tok = AutoModelForTokenClassification.from_pretrained(tmp_path, num_labels=5)
    labels = torch.where(batch["attention_mask"].bool(), 1, -100)
    out = tok(**batch, labels=labels)
    assert type(tok) is OBertForTokenClassification and out.logits.shape == (3, 12, 5) and torch.isfinite(out.loss)


@pytest.mark.parametrize("layer_norm,position", OPTIONS)
def test_each_option_trains_every_parameter(layer_norm, position):
    model = _small(layer_norm, position).train()
    batch = _batch()
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 2] = batch["input_ids"][:, 2]
    out = model(**batch, labels=labels, output_hidden_states=True)
    assert out.logits.shape == (3, 12, VOCAB) and len(out.hidden_states) == 3 and torch.isfinite(out.loss)
    out.loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []
    assert ("bert.encoder.relative_attention_bias.weight" in dict(model.named_parameters())) == (position == "relative")


@pytest.mark.parametrize("position", ["absolute", "relative", "rotary"])
def test_extra_padding_does_not_change_real_token_logits(position):
    model = _small("pre" if position == "rotary" else "post", position).eval()
    batch = _batch()
    padded = {k: torch.cat([v, torch.zeros(3, 7, dtype=v.dtype)], dim=1) for k, v in batch.items()}
    with torch.no_grad():
        short, long = model(**batch).logits, model(**padded).logits[:, :12]
    real = batch["attention_mask"].bool()
    assert (short[real] - long[real]).abs().max().item() < 1e-5


@pytest.mark.parametrize("position,invariant", [("absolute", False), ("relative", True), ("rotary", True)])
def test_relative_and_rotary_see_only_offsets(position, invariant):
    model = _small("post", position).eval()
    batch = _batch()
    shifted = torch.arange(12)[None] + 9
    with torch.no_grad():
        diff = (model(**batch).logits - model(**batch, position_ids=shifted).logits).abs().max().item()
    assert (diff < 1e-4) == invariant


@pytest.mark.parametrize("position", ["relative", "rotary"])
def test_gradient_checkpointing_gives_the_same_gradients(position):
    batch, grads = _batch(), []
    for checkpointing in (False, True):
        model = _small("pre", position, dropout=0.1, seed=1).train()
        if checkpointing:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # transformers 5 renamed it activation_checkpointing
                model.gradient_checkpointing_enable()
            assert all(layer.gradient_checkpointing for layer in model.bert.encoder.layer)
        torch.manual_seed(7)  # same dropout masks; the checkpoint replays the RNG state in recomputation
        model(**batch, labels=batch["input_ids"]).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name
