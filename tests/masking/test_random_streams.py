"""Issue 13, finding 5: each random decision draws from its own stream, so switching one option leaves the rest.

Before, synonyms, the knowledge segment's width, a mixture's strategy draw and the number of random
replacements all took numbers from the one generator of the replacement policy, and any with/without
comparison of an option was confounded. Checked in the previewer (one paragraph) and the collator (a batch).
"""

import json

import numpy as np
import pytest

from obert_lib import corpus
from obert_lib.config import ConfigError
from obert_lib.masking import MaskConfig, MaskingCollator, MaskPreviewer

SEEDS = (0, 1, 2)
POLICY = {"replace_mask": 0.5, "replace_random": 0.3}  # enough random replacements to see their ids shift


@pytest.fixture(scope="module")
def previewer(sample_corpus):
    return MaskPreviewer.from_corpus(sample_corpus.output_dir)


@pytest.fixture(scope="module")
def rows(sample_corpus):
    """64 sample paragraphs, most with linked knowledge-base entries (all shorter than 160 tokens)."""
    return corpus.load_shards(sample_corpus.output_dir).slice(0, 64).to_pylist()


@pytest.fixture(scope="module")
def texts(rows):
    return [r["text"][:60] for r in rows[:12]]


def targets(view) -> list[int]:
    return [i for i, m in enumerate(view.masked) if m]


def outcome(view, skip=()) -> list[tuple[int, str, str]]:
    """(position, kind, token shown) of every target outside `skip`."""
    return [(i, view.kinds[i], view.shown[i]) for i in targets(view) if i not in skip]


def synonym_positions(view) -> set[int]:
    return {i for i, k in enumerate(view.kinds) if k == "synonym"}


def test_previewer_synonyms_leave_positions_and_other_replacements(previewer, texts):
    used = 0
    for text in texts:
        for seed in SEEDS:
            off = previewer.mask(text, MaskConfig(strategy="word", mask_rate=0.17), seed=seed)
            for rate in (0.5, 1.0):
                on = previewer.mask(
                    text,
                    MaskConfig(strategy="word", mask_rate=0.17, synonym={"enabled": True, "rate": rate}),
                    seed=seed,
                )
                assert targets(on) == targets(off) and on.units == off.units
                assert outcome(on, skip=synonym_positions(on)) == outcome(off, skip=synonym_positions(on))
                used += len(synonym_positions(on))
    assert used > 0  # some masked word had a synonym, so the comparison means something


def test_previewer_knowledge_leaves_every_draw(previewer, texts):
    for text in texts:
        for seed in SEEDS:
            off = previewer.mask(text, MaskConfig(strategy="entity", **POLICY), seed=seed)
            on = previewer.mask(text, MaskConfig(strategy="entity", knowledge={"enabled": True}, **POLICY), seed=seed)
            assert outcome(on) == outcome(off) and on.units == off.units
    assert any(previewer.mask(t, MaskConfig(knowledge={"enabled": True})).knowledge_tokens for t in texts)


def test_previewer_replace_random_only_moves_kept_to_random(previewer, texts):
    for text in texts:
        for seed in SEEDS:
            low = previewer.mask(text, MaskConfig(strategy="word", replace_mask=0.5, replace_random=0.1), seed=seed)
            high = previewer.mask(text, MaskConfig(strategy="word", replace_mask=0.5, replace_random=0.4), seed=seed)
            assert targets(low) == targets(high)
            for i in targets(low):
                assert (low.kinds[i] == "mask") == (high.kinds[i] == "mask")
                if low.kinds[i] == "random":  # a random target stays random, with the same token
                    assert high.kinds[i] == "random" and high.shown[i] == low.shown[i]


def test_previewer_mixture_that_drew_word_masks_as_word(previewer, texts):
    drew = 0
    for text in texts[:4]:
        for seed in range(10):  # a paragraph's strategy draw depends on the seed alone: some seeds draw word
            mixed = previewer.mask(text, MaskConfig(mixture={"word": 0.5, "phrase": 0.5}, mask_rate=0.3), seed=seed)
            if mixed.strategy == "word":
                word = previewer.mask(text, MaskConfig(strategy="word", mask_rate=0.3), seed=seed)
                assert outcome(mixed) == outcome(word) and mixed.units == word.units
                drew += 1
    assert drew >= 5


def collate(tk, rows, seed=0, segments=None, **cfg):
    """Masked `rows` with max_length 256 (no truncation, with or without K_w)."""
    return MaskingCollator(tk, MaskConfig(**cfg), max_length=256, seed=seed, knowledge=segments).mask_batch(rows)


def context(b) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row (ids shown, labels) over the context positions 1..n (K_w and padding left out)."""
    return [(b.input_ids[i, 1 : n + 1], b.labels[i, 1 : n + 1]) for i, n in enumerate(b.context_length.tolist())]


def test_collator_synonyms_leave_positions_and_other_replacements(previewer, rows):
    tk = previewer.tokenizer
    for seed in SEEDS:
        off = collate(tk, rows, seed, strategy="word", **POLICY)
        on = collate(tk, rows, seed, strategy="word", synonym={"enabled": True, "rate": 1.0}, **POLICY)
        assert (on.labels == off.labels).all() and on.spans == off.spans and on.synonym.any()
        assert (on.input_ids[~on.synonym] == off.input_ids[~on.synonym]).all()


def test_collator_knowledge_leaves_every_draw(previewer, rows):
    tk = previewer.tokenizer
    for seed in SEEDS:
        off = collate(tk, rows, seed, strategy="entity", **POLICY)
        on = collate(tk, rows, seed, previewer.knowledge, strategy="entity", knowledge={"enabled": True}, **POLICY)
        assert (on.context_length == off.context_length).all() and on.spans == off.spans
        assert (on.token_type_ids == 1).any(axis=1).sum() > 32  # most rows got a K_w, so rows' widths differ
        for (ids_on, labels_on), (ids_off, labels_off) in zip(context(on), context(off)):
            assert (labels_on == labels_off).all() and (ids_on == ids_off).all()


def test_collator_replace_random_only_moves_kept_to_random(previewer, rows):
    tk = previewer.tokenizer
    low = collate(tk, rows, 0, strategy="word", replace_mask=0.5, replace_random=0.1)
    high = collate(tk, rows, 0, strategy="word", replace_mask=0.5, replace_random=0.4)
    target = low.labels != -100
    assert (low.labels == high.labels).all()
    assert ((low.input_ids == tk.mask_token_id) == (high.input_ids == tk.mask_token_id)).all()
    random = target & (low.input_ids != tk.mask_token_id) & (low.input_ids != low.original_ids)
    assert random.sum() > 20 and (high.input_ids[random] == low.input_ids[random]).all()


def test_collator_mixture_that_draws_word_masks_as_word(previewer, rows):
    tk = previewer.tokenizer
    mixed = collate(tk, rows, 0, mixture={"word": 1.0, "clause": 1e-12})  # draws a strategy per row: word
    assert set(mixed.strategy) == {"word"}
    word = collate(tk, rows, 0, strategy="word")
    assert (mixed.input_ids == word.input_ids).all() and (mixed.labels == word.labels).all()


def test_collator_state_is_json_and_resumes_exactly(previewer, rows):
    tk = previewer.tokenizer
    cfg = MaskConfig(mixture={"word": 0.5, "phrase": 0.5}, synonym={"enabled": True})
    a = MaskingCollator(tk, cfg, 128, seed=7)
    a.mask_batch(rows[:8])
    a.set_step(3)
    state = json.loads(json.dumps(a.get_state()))  # plain JSON: no pickle
    expected = [a.mask_batch(rows[k : k + 8]) for k in (8, 16)]
    b = MaskingCollator(tk, cfg, 128, seed=7)
    b.set_state(state)
    assert b.step == 3
    for k, want in zip((8, 16), expected):
        got = b.mask_batch(rows[k : k + 8])
        assert (got.input_ids == want.input_ids).all() and (got.labels == want.labels).all()
    c = MaskingCollator(tk, cfg, 128, seed=7)
    c.rng.bit_generator.state = state["rng"]  # how resume points saved it before: still restores the batches
    assert (c.mask_batch(rows[8:16]).input_ids == expected[0].input_ids).all()
    with pytest.raises(ValueError, match="MT19937"):
        c.set_state(np.random.MT19937(0).state)
    with pytest.raises(ConfigError, match="seed: -1 must be an integer >= 0"):
        MaskingCollator(tk, cfg, 128, seed=-1)
