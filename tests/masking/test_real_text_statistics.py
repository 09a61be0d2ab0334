"""Issue 4 acceptance on real text: >= 10,000 FewCLUE paragraphs through the corpus stage and the collator."""

import numpy as np
import pytest

from obert_lib import corpus, masking
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """tnews titles and eprstmt reviews (unlabeled splits), annotated with the sample knowledge base."""
    inputs = [shared_file("fewclue/tnews/unlabeled.json"), shared_file("fewclue/eprstmt/unlabeled.json")]
    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    out = tmp_path_factory.mktemp("real")
    corpus.run(
        {
            "inputs": [str(p) for p in inputs],
            "text_key": "sentence",
            "output_dir": str(out),
            "tokenizer": {"vocab_file": str(vocab)},
            "quality": {"min_cjk_chars": 8},
        },
        corpus.CorpusRuntime(progress=False, workers=2),
    )
    from transformers import AutoTokenizer

    tk = AutoTokenizer.from_pretrained(out / "tokenizer")
    rows = corpus.load_shards(out).to_pylist()
    return rows, tk, masking.KnowledgeSegments.from_corpus(out, tk)


def test_every_strategy_hits_rate_split_and_span_length_order(real):
    rows, tk, _ = real
    assert len(rows) >= 10_000
    extra = {"mixture": masking.MaskConfig(mixture={"word": 0.4, "phrase": 0.3, "clause": 0.3})}
    stats = masking.strategy_statistics(rows, tk, mask_rate=0.15, max_length=128, extra=extra).set_index("strategy")
    for name, s in stats.iterrows():
        assert abs(s["mask_rate"] - 0.15) < 0.01, name
        assert abs(s["share_mask"] - 0.8) < 0.01, name
        assert abs(s["share_random"] - 0.1) < 0.01, name
        assert abs(s["share_kept"] - 0.1) < 0.01, name
        assert s["special_masked"] == 0, name
    length = stats["mean_span_length"]
    assert length["char"] == 1.0
    assert length["char"] < length["word"] < min(length["phrase"], length["keyword"], length["entity"])
    assert max(length["phrase"], length["keyword"], length["entity"]) < length["clause"]


def test_knowledge_masking_never_masks_the_knowledge_segment(real):
    rows, tk, knowledge = real
    linked = [r for r in rows if r["knowledge_ids"]]
    assert len(linked) >= 200  # the sample KB's cities, provinces and companies occur in real reviews and titles
    rows = linked + [r for r in rows if not r["knowledge_ids"]][: 10_000 - len(linked)]
    cfg = masking.MaskConfig(mixture={"word": 0.5, "entity": 0.5}, knowledge={"enabled": True, "summary_budget": 40})
    collator = masking.MaskingCollator(tk, cfg, max_length=128, seed=3, knowledge=knowledge)
    stats = masking.collate_statistics(rows, collator)
    assert stats["special_masked"] == 0
    assert abs(stats["mask_rate"] - 0.15) < 0.01
    b = collator.mask_batch(linked[:64])
    segment = b.token_type_ids == 1
    assert segment.any(axis=1).all()  # every linked row got its K_w
    assert (b.labels[segment] == -100).all()
    for i in range(64):  # [CLS] ctx [SEP] K_w [SEP]: K_w is exactly the start of the entries' summaries
        n = int(b.context_length[i])
        k = b.original_ids[i, segment[i]][:-1]
        assert b.original_ids[i, n + 1] == tk.sep_token_id and b.original_ids[i, segment[i]][-1] == tk.sep_token_id
        assert len(k) <= 40 and b.knowledge_entries[i]
        first = knowledge.summary_ids[b.knowledge_entries[i][0]]
        assert (k[: min(len(k), len(first), 10)] == first[: min(len(k), len(first), 10)]).all()


def test_output_ids_are_ones_the_tokenizer_produces(real):
    rows, tk, _ = real
    vocab = tk.get_vocab()
    continuation = np.array([i for t, i in vocab.items() if t.startswith("##")])
    for strategy in ("word", "clause"):
        b = masking.MaskingCollator(tk, masking.MaskConfig(strategy=strategy), 128, seed=1).mask_batch(rows[:2000])
        changed = b.input_ids != b.original_ids
        written = b.input_ids[changed]
        # every written id is [MASK] or a replaceable whole token: never '##' pieces, never other specials
        assert not np.isin(written, continuation).any()
        allowed = set(masking.replaceable_ids(tk).tolist()) | {tk.mask_token_id}
        assert set(written.tolist()) <= allowed
