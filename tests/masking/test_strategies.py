import numpy as np
import pytest

from obert_lib.config import ConfigError
from obert_lib.masking import FALLBACK, MaskConfig, MaskingCollator, apply_replacement, choose_masked_positions
from obert_lib.masking.strategies import replaceable_ids


def test_whole_spans_only_and_budget():
    spans = {"word": [(0, 2), (2, 4), (4, 5), (5, 8), (8, 10)]}
    for seed in range(20):
        m = choose_masked_positions(20, spans, "word", 0.15, np.random.default_rng(seed))
        assert m.sum() >= 3  # budget round(0.15 * 20) = 3 ...
        assert m.sum() < 3 + 3  # ... exceeded by less than one span (longest word span is 3)
        for s, e in spans["word"]:
            assert m[s:e].all() or not m[s:e].any()  # a span is masked entirely or not at all


def test_exact_mask_for_seed():
    spans = {"clause": [(0, 6), (6, 12)], "word": [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12)]}
    m = choose_masked_positions(12, spans, "clause", 0.25, np.random.default_rng(0))
    assert m.astype(int).tolist() in ([1] * 6 + [0] * 6, [0] * 6 + [1] * 6)  # one clause covers budget 3


def test_fallback_fills_from_finer_granularity():
    assert FALLBACK["clause"] == ("phrase", "word", "char")
    spans = {"entity": [(0, 2)], "word": [(2, 4), (4, 6), (6, 8)]}
    m = choose_masked_positions(20, spans, "entity", 0.3, np.random.default_rng(1))  # budget 6
    assert m[0:2].all()  # the only entity
    assert m.sum() == 6  # filled with words (2 each) then characters


def test_replacement_split_and_labels():
    rng = np.random.default_rng(0)
    ids = np.arange(10, 100010) % 1000 + 10  # [100000]
    masked = np.ones_like(ids, dtype=bool)
    new, labels = apply_replacement(ids, masked, MaskConfig(), mask_id=4, random_ids=np.array([7, 8]), rng=rng)
    assert (labels == ids).all()
    assert abs((new == 4).mean() - 0.8) < 0.01
    assert abs(np.isin(new, [7, 8]).mean() - 0.1) < 0.01
    not_masked = ~masked.copy()
    not_masked[:10] = True
    new2, labels2 = apply_replacement(ids, ~not_masked, MaskConfig(), 4, np.array([7]), np.random.default_rng(0))
    assert (labels2[:10] == -100).all() and (new2[:10] == ids[:10]).all()


def test_config_errors_name_key():
    with pytest.raises(ConfigError, match="strategy: 'sentence' is unknown"):
        MaskConfig(strategy="sentence")
    with pytest.raises(ConfigError, match="mask_rate"):
        MaskConfig(mask_rate=1.5)


def test_random_ids_exclude_special_and_continuation(sample_corpus):
    from transformers import AutoTokenizer

    tk = AutoTokenizer.from_pretrained(sample_corpus.output_dir / "tokenizer")
    ids = replaceable_ids(tk)
    tokens = tk.convert_ids_to_tokens(ids.tolist())
    assert not set(ids.tolist()) & set(tk.all_special_ids)
    assert not any(t.startswith("##") or t.startswith("[") for t in tokens)


def test_collator_shapes_and_special_tokens_never_masked(sample_corpus):
    from transformers import AutoTokenizer

    from obert_lib.corpus import load_shards

    tk = AutoTokenizer.from_pretrained(sample_corpus.output_dir / "tokenizer")
    rows = load_shards(sample_corpus.output_dir).slice(0, 16).to_pylist()
    batch = MaskingCollator(tk, MaskConfig(strategy="phrase"), max_length=32, seed=0)(rows)
    B, T = batch["input_ids"].shape
    assert B == 16 and T <= 32
    assert (batch["input_ids"][:, 0] == tk.cls_token_id).all()
    labels, att = batch["labels"], batch["attention_mask"]
    assert (labels[:, 0] == -100).all()
    assert (labels[att == 0] == -100).all()  # padding never a target
    sep_positions = batch["input_ids"] == tk.sep_token_id
    assert (labels[sep_positions] == -100).all()
    again = MaskingCollator(tk, MaskConfig(strategy="phrase"), max_length=32, seed=0)(rows)
    assert (again["input_ids"] == batch["input_ids"]).all()  # deterministic for a seed
