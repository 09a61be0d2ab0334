"""Mask rules on hand-written spans with exact expected outcomes, and the collator's layout and determinism."""

import numpy as np
import pytest

from obert_lib.config import ConfigError
from obert_lib.config import load as load_config
from obert_lib.masking import (
    FALLBACK,
    STRATEGIES,
    MaskConfig,
    MaskingCollator,
    apply_replacement,
    choose_masked_positions,
    pack_rows,
)
from obert_lib.masking.strategies import replaceable_ids, stochastic_budget


def positions(mask) -> list[int]:
    return np.flatnonzero(mask).tolist()


# Each case leaves exactly one candidate that fits at every level, so the outcome is forced by the rules
# (strategy first, then FALLBACK order, then single tokens) whatever the random order.
FORCED = {
    # n=20, rate 0.1 -> budget 2: words of 3 do not fit, the only 2-token word does
    "word": (20, 0.1, {"word": [(0, 3), (3, 6), (6, 8), (8, 11)]}, [6, 7]),
    # budget 6: the entity (4), then the only word of <= 2 tokens that does not touch it
    "entity": (
        20,
        0.3,
        {"entity": [(10, 14)], "word": [(0, 3), (3, 5), (5, 8), (10, 12), (16, 19)]},
        [3, 4, 10, 11, 12, 13],
    ),
    # budget 4: the 3-token keyword, then one single token (no word of 1 fits? (8, 9) does)
    "keyword": (20, 0.2, {"keyword": [(2, 5), (12, 18)], "word": [(0, 2), (8, 9), (12, 14)]}, [2, 3, 4, 8]),
    # budget 5: phrase of 5 exactly; the 6-token phrase never fits
    "phrase": (20, 0.25, {"phrase": [(0, 6), (10, 15)], "word": [(10, 12)]}, [10, 11, 12, 13, 14]),
    # budget 8: clause (4), phrase (3), then the only 1-token word
    "clause": (
        20,
        0.4,
        {"clause": [(0, 4), (10, 20)], "phrase": [(5, 8), (12, 17)], "word": [(5, 6), (9, 10), (12, 14)]},
        [0, 1, 2, 3, 5, 6, 7, 9],
    ),
}


@pytest.mark.parametrize("strategy", sorted(FORCED))
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_each_strategy_forced_outcome(strategy, seed):
    n, rate, spans, expected = FORCED[strategy]
    assert positions(choose_masked_positions(n, spans, strategy, rate, np.random.default_rng(seed))) == expected


def test_char_masks_exactly_the_budget_of_free_tokens():
    for seed in range(10):
        m = choose_masked_positions(40, {}, "char", 0.25, np.random.default_rng(seed))  # budget 10
        assert m.sum() == 10
    a = choose_masked_positions(40, {}, "char", 0.25, np.random.default_rng(3))
    b = choose_masked_positions(40, {}, "char", 0.25, np.random.default_rng(3))
    assert positions(a) == positions(b)


def test_budget_never_exceeded_and_spans_whole():
    spans = {"word": [(0, 2), (2, 4), (4, 5), (5, 8), (8, 10), (10, 14), (14, 20)]}
    for seed in range(50):
        m = choose_masked_positions(20, spans, "word", 0.15, np.random.default_rng(seed))
        assert m.sum() == 3  # 0.15 * 20 = 3.0: no rounding
        assert sum(m[s:e].all() for s, e in spans["word"]) >= 1  # at least one whole word, not only single tokens


def test_stochastic_budget_is_unbiased():
    rng = np.random.default_rng(0)
    b = stochastic_budget(np.full(100_000, 7), 0.15, rng)  # 1.05 tokens per row
    assert set(np.unique(b)) == {1, 2}
    assert abs(b.mean() - 1.05) < 0.005


def test_fallback_order_is_documented_finer_first():
    assert FALLBACK["clause"] == ("phrase", "word", "char")
    assert all(chain[-1] == "char" for s, chain in FALLBACK.items() if s != "char")


def test_replacement_split_labels_and_exempt_positions():
    rng = np.random.default_rng(0)
    ids = np.arange(10, 100010) % 1000 + 10  # [100000]
    masked = np.ones_like(ids, dtype=bool)
    new, labels = apply_replacement(ids, masked, MaskConfig(), mask_id=4, random_ids=np.array([7, 8]), rng=rng)
    assert (labels == ids).all()
    assert abs((new == 4).mean() - 0.8) < 0.01
    assert abs(np.isin(new, [7, 8]).mean() - 0.1) < 0.01
    exempt = np.zeros_like(masked)
    exempt[:100] = True
    new2, labels2 = apply_replacement(
        ids, masked, MaskConfig(), 4, np.array([7]), np.random.default_rng(0), exempt=exempt
    )
    assert (new2[:100] == ids[:100]).all() and (labels2[:100] == ids[:100]).all()
    only_mask = MaskConfig(replace_mask=1.0, replace_random=0.0)
    new3, _ = apply_replacement(ids[:50], masked[:50], only_mask, 4, np.array([7]), rng)
    assert (new3 == 4).all()


def test_config_errors_name_key_and_fix():
    with pytest.raises(ConfigError, match="strategy: 'sentence' is unknown"):
        MaskConfig(strategy="sentence")
    with pytest.raises(ConfigError, match="mask_rate"):
        MaskConfig(mask_rate=1.5)
    with pytest.raises(ConfigError, match="mixture.sentence: unknown strategy"):
        MaskConfig(mixture={"word": 1.0, "sentence": 1.0})
    with pytest.raises(ConfigError, match="mixture.word: weight -1"):
        MaskConfig(mixture={"word": -1.0, "char": 1.0})
    with pytest.raises(ConfigError, match=r"schedule\[1\].from_step: entries must be in increasing"):
        MaskConfig(schedule=[{"from_step": 5, "mixture": {"word": 1}}, {"from_step": 5, "mixture": {"clause": 1}}])
    with pytest.raises(ConfigError) as err:
        load_config(MaskConfig, {"synonym": {"rate": 2.0}})
    assert str(err.value) == "synonym.rate: 2.0 must be within [0, 1], e.g. 0.5"
    with pytest.raises(ConfigError) as err:
        MaskConfig(knowledge={"max_entries": 0})
    assert str(err.value) == "knowledge.max_entries: must be >= 1"
    with pytest.raises(ConfigError, match=r"schedule\[0\].from: unknown key in ScheduleEntry"):
        MaskConfig(schedule=[{"from": 0, "mixture": {"word": 1}}])
    with pytest.raises(ConfigError, match="knowledge.summary_budgt: unknown key"):
        load_config(MaskConfig, {"knowledge": {"summary_budgt": 10}})


def test_mixture_and_schedule_weights():
    cfg = load_config(
        MaskConfig,
        {"mixture": {"word": 3, "clause": 1}, "schedule": [{"from_step": 100, "mixture": {"phrase": 1, "clause": 1}}]},
    )
    assert cfg.mixture_at(0) == {"word": 0.75, "clause": 0.25}
    assert cfg.mixture_at(99) == {"word": 0.75, "clause": 0.25}
    assert cfg.mixture_at(100) == {"phrase": 0.5, "clause": 0.5}
    assert MaskConfig(strategy="entity").mixture_at(10**6) == {"entity": 1.0}


class FakeTokenizer:
    """Ids 0-4 special ([PAD] [UNK] [CLS] [SEP] [MASK]), 5-9 '##' pieces, 10-99 whole tokens."""

    pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3, 4
    all_special_ids = [0, 1, 2, 3, 4]

    def get_vocab(self):
        names = (
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            + [f"##p{i}" for i in range(5)]
            + [f"t{i}" for i in range(90)]
        )
        return {t: i for i, t in enumerate(names)}


def fake_row(n: int, **spans) -> dict:
    return {"input_ids": list(range(10, 10 + n)), **{f"{k}_spans": v for k, v in spans.items()}}


def test_collator_layout_specials_and_truncation():
    rows = [fake_row(12, clause=[[0, 4], [4, 12]], word=[[0, 2], [2, 4], [4, 6]]), fake_row(3, word=[[0, 3]])]
    col = MaskingCollator(FakeTokenizer(), MaskConfig(strategy="clause", mask_rate=0.5), max_length=10, seed=0)
    b = col.mask_batch(rows)
    assert b.input_ids.shape == (2, 10)
    assert b.context_length.tolist() == [8, 3]  # 12 tokens truncated to 10 - [CLS] - [SEP]
    assert b.original_ids[0].tolist() == [2, *range(10, 18), 3]
    assert b.original_ids[1].tolist() == [2, 10, 11, 12, 3, 0, 0, 0, 0, 0]
    assert b.attention_mask[1].tolist() == [1] * 5 + [0] * 5
    target = b.labels != -100
    assert not target[:, 0].any() and not target[0, 9] and not target[1, 4:].any()
    # budget 4 of 8: the clause (4, 12) was cut by truncation and is gone; (0, 4) is exactly the budget
    assert positions(target[0]) == [1, 2, 3, 4]
    assert (b.labels[target] == b.original_ids[target]).all()
    assert "clause" in {t for r, t, s, e in b.spans if r == 0}


def test_collator_is_deterministic_per_seed_and_step_schedule():
    rows = [fake_row(30, word=[[i, i + 2] for i in range(0, 30, 2)], clause=[[0, 10], [10, 20], [20, 30]])] * 8
    cfg = MaskConfig(schedule=[{"from_step": 0, "mixture": {"word": 1}}, {"from_step": 10, "mixture": {"clause": 1}}])
    a = MaskingCollator(FakeTokenizer(), cfg, 64, seed=5)
    b = MaskingCollator(FakeTokenizer(), cfg, 64, seed=5)
    c = MaskingCollator(FakeTokenizer(), cfg, 64, seed=6)
    x, y, z = a.mask_batch(rows), b.mask_batch(rows), c.mask_batch(rows)
    assert (x.input_ids == y.input_ids).all() and (x.labels == y.labels).all()
    assert not (x.labels == z.labels).all()
    assert set(x.strategy) == {"word"}
    a.set_step(10)
    later = a.mask_batch(rows)
    assert set(later.strategy) == {"clause"}
    assert {t for _, t, _, _ in later.spans} <= {"clause", "phrase", "word"}


def test_mixture_draws_strategies_by_weight():
    rows = [fake_row(20, word=[[i, i + 1] for i in range(20)])] * 4000
    b = MaskingCollator(FakeTokenizer(), MaskConfig(mixture={"word": 0.7, "char": 0.3}), 32, seed=0).mask_batch(rows)
    assert abs(b.strategy.count("word") / 4000 - 0.7) < 0.03


def test_random_replacements_are_whole_tokens_only():
    rows = [fake_row(60, word=[[i, i + 3] for i in range(0, 60, 3)])] * 200
    cfg = MaskConfig(strategy="word", mask_rate=0.3, replace_mask=0.0, replace_random=1.0)
    b = MaskingCollator(FakeTokenizer(), cfg, 64, seed=0).mask_batch(rows)
    written = b.input_ids[b.labels != -100]
    assert written.min() >= 10  # never special (0-4) or '##' (5-9)


def test_replaceable_ids_exclude_special_and_continuation(sample_corpus):
    from transformers import AutoTokenizer

    tk = AutoTokenizer.from_pretrained(sample_corpus.output_dir / "tokenizer")
    ids = replaceable_ids(tk)
    tokens = tk.convert_ids_to_tokens(ids.tolist())
    assert not set(ids.tolist()) & set(tk.all_special_ids)
    assert not any(t.startswith("##") or t.startswith("[") for t in tokens)


def test_collator_in_dataloader_workers_is_deterministic(sample_corpus):
    import torch
    from transformers import AutoTokenizer

    from obert_lib.corpus import load_shards

    tk = AutoTokenizer.from_pretrained(sample_corpus.output_dir / "tokenizer")
    rows = load_shards(sample_corpus.output_dir).slice(0, 64).to_pylist()

    def batches():
        col = MaskingCollator(tk, MaskConfig(strategy="phrase"), max_length=32, seed=0)
        loader = torch.utils.data.DataLoader(
            rows, batch_size=16, num_workers=2, collate_fn=col, multiprocessing_context="spawn"
        )
        return [b["labels"] for b in loader]

    torch.manual_seed(0)
    first = batches()
    torch.manual_seed(0)
    second = batches()
    assert len(first) == 4 and all((a == b).all() for a, b in zip(first, second))


def test_workers_get_their_own_streams_even_after_the_main_process_masked(sample_corpus):
    import torch
    from transformers import AutoTokenizer

    from obert_lib.corpus import load_shards

    tk = AutoTokenizer.from_pretrained(sample_corpus.output_dir / "tokenizer")
    row = load_shards(sample_corpus.output_dir).slice(0, 1).to_pylist()[0]
    col = MaskingCollator(tk, MaskConfig(strategy="char", mask_rate=0.3), max_length=64, seed=0)
    col.mask_batch([row])  # the main process draws first: workers must not inherit its generator
    loader = torch.utils.data.DataLoader(
        [row] * 16, batch_size=8, num_workers=2, collate_fn=col, multiprocessing_context="spawn"
    )
    a, b = [batch["labels"] for batch in loader]  # batch 0 from worker 0, batch 1 from worker 1
    assert not (a == b).all()


def test_pack_rows_shifts_spans_and_keeps_boundaries():
    rows = [
        {
            "text": "a",
            "input_ids": [1, 2, 3],
            "word_spans": [[0, 2]],
            "clause_spans": [[0, 3]],
            "knowledge_ids": ["E1"],
        },
        {
            "text": "b",
            "input_ids": [4, 5],
            "word_spans": [[0, 1], [1, 2]],
            "clause_spans": [[0, 2]],
            "knowledge_ids": ["E1", "E2"],
        },
        {"text": "c", "input_ids": [6, 7, 8, 9], "word_spans": [[0, 4]]},
    ]
    packed = list(pack_rows(rows, max_tokens=6))
    assert [p["input_ids"] for p in packed] == [[1, 2, 3, 4, 5], [6, 7, 8, 9]]
    assert packed[0]["word_spans"] == [[0, 2], [3, 4], [4, 5]]
    assert packed[0]["clause_spans"] == [[0, 3], [3, 5]]
    assert packed[0]["knowledge_ids"] == ["E1", "E2"]
    assert packed[1]["word_spans"] == [[0, 4]] and packed[1]["entity_spans"] == []


def test_every_strategy_name_has_a_fallback_chain():
    assert set(FALLBACK) == set(STRATEGIES)


def test_first_fit_packing_fills_rows_tighter_and_keeps_every_token():
    lengths = [7, 5, 4, 3, 3, 2, 6, 1]
    rows = [{"input_ids": [i] * n, "word_spans": [[0, n]], "text": str(i)} for i, n in enumerate(lengths)]
    consecutive = list(pack_rows(rows, 10))
    first_fit = list(pack_rows(rows, 10, method="first_fit"))
    assert [len(p["input_ids"]) for p in consecutive] == [7, 9, 8, 7]
    assert [len(p["input_ids"]) for p in first_fit] == [10, 10, 10, 1]  # 7+3, 6+4, 5+3+2, 1
    assert sorted(t for p in first_fit for t in p["input_ids"]) == sorted(
        t for p in consecutive for t in p["input_ids"]
    )
    assert first_fit[0]["word_spans"] == [[0, 7], [7, 10]] and first_fit[0]["input_ids"] == [0] * 7 + [3] * 3
    with pytest.raises(ValueError, match="method 'best' is unknown"):
        list(pack_rows(rows, 10, method="best"))
