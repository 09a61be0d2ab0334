"""Synonym tables (lexicon, embeddings), entity linking with disambiguation, and knowledge segments."""

import numpy as np
import pytest

from obert_lib.corpus.annotate import EntityMatcher, KnowledgeEntry, annotate_linked
from obert_lib.masking import KnowledgeSegments, MaskConfig, MaskingCollator, SynonymTable, corpus_words


class CharTokenizer:
    """One id per character (ids from 10), specials 0-4 like BERT's [PAD] [UNK] [CLS] [SEP] [MASK]."""

    pad_token_id, unk_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3, 4
    all_special_ids = [0, 1, 2, 3, 4]

    def __init__(self, chars: str):
        self.ids = {c: 10 + i for i, c in enumerate(dict.fromkeys(chars))}

    def __call__(self, texts, add_special_tokens=False, return_offsets_mapping=False):
        out = {"input_ids": [[self.ids[c] for c in t] for t in texts]}
        if return_offsets_mapping:
            out["offset_mapping"] = [[(i, i + 1) for i in range(len(t))] for t in texts]
        return out

    def get_vocab(self):
        return {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, **self.ids}


TK = CharTokenizer("美丽漂亮好看秀的城市北京首都中国是ABCDEFGHXYZ苹果一种水实很甜公司发布手机。")


def ids(text):
    return tuple(TK.ids[c] for c in text)


def test_lexicon_keeps_same_length_synonyms_weighted(tmp_path):
    lex = tmp_path / "syn.tsv"
    lex.write_text(
        "word\tsynonym\tweight\n美丽\t漂亮\t3\n美丽\t好看\t1\n美丽\t美\t5\n城市\t都市\t1\n", encoding="utf-8"
    )
    table = SynonymTable.from_lexicon(lex, CharTokenizer("美丽漂亮好看城市都"))
    tk = CharTokenizer("美丽漂亮好看城市都")
    key = tuple(tk.ids[c] for c in "美丽")
    cands, probs = table.table[key]
    assert [tuple(c) for c in cands] == [tuple(tk.ids[c] for c in "漂亮"), tuple(tk.ids[c] for c in "好看")]
    assert probs.tolist() == [0.75, 0.25]  # weights 3 : 1; 美 (one token) cannot replace a two-token word
    rng = np.random.default_rng(0)
    draws = [tuple(table.sample(key, rng)) for _ in range(4000)]
    assert abs(draws.count(tuple(cands[0])) / 4000 - 0.75) < 0.03
    assert table.sample(tuple(tk.ids[c] for c in "都"), rng) is None
    assert len(table) == 2


def test_lexicon_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("word\tsynonym\tweight\n美丽\t漂亮\tnot-a-number\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:2: expected"):
        SynonymTable.from_lexicon(bad, TK)
    header = tmp_path / "header.tsv"
    header.write_text("美丽\t漂亮\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"header.tsv:1: expected the header"):
        SynonymTable.from_lexicon(header, TK)
    with pytest.raises(FileNotFoundError, match="synonym.lexicon"):
        SynonymTable.from_lexicon(tmp_path / "missing.tsv", TK)


def test_sample_lexicon_loads_with_the_sample_tokenizer(sample_corpus):
    from transformers import AutoTokenizer

    from obert_lib.paths import sample_path

    tk = AutoTokenizer.from_pretrained(sample_corpus.output_dir / "tokenizer")
    table = SynonymTable.from_lexicon(sample_path("synonyms.tsv"), tk)
    assert len(table) >= 100


def test_embedding_neighbours_by_cosine():
    emb = np.zeros((20, 3), dtype=np.float32)
    emb[10], emb[11], emb[12] = [1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]  # 10 ~ 11, 12 far away
    emb[13], emb[14], emb[15], emb[16] = [1, 1, 0], [1, 1, 0.1], [0, 1, 0], [0, 1, 0.05]
    table = SynonymTable.from_embeddings(emb, [(10,), (11,), (12,), (13, 14), (15, 16)], top_k=1, temperature=0.05)
    assert table.table[(10,)][0].tolist() == [[11]]
    assert table.table[(12,)][0].tolist() in ([[10]], [[11]])
    assert table.table[(13, 14)][0].tolist() == [[15, 16]]  # two-token words only pair with two-token words
    two = SynonymTable.from_embeddings(emb, [(10,), (11,), (12,)], top_k=2, temperature=0.05)
    cands, probs = two.table[(10,)]
    assert cands[np.argmax(probs)].tolist() == [11] and probs.max() > 0.99  # softmax(cos / 0.05)


def test_corpus_words_counts_word_spans():
    rows = [
        {"input_ids": [10, 11, 12, 10, 11], "word_spans": [[0, 2], [2, 3], [3, 5]]},
        {"input_ids": [12], "word_spans": [[0, 1]]},
    ]
    assert corpus_words(rows, min_count=2) == [(10, 11), (12,)]


def test_collator_shows_a_synonym_and_keeps_the_label():
    table = SynonymTable({ids("美丽"): (np.array([ids("漂亮")]), np.array([1.0]))})
    row = {"input_ids": list(ids("城市美丽北京中国首都")), "word_spans": [[0, 2], [2, 4], [4, 6], [6, 8], [8, 10]]}
    cfg = MaskConfig(strategy="word", mask_rate=0.2, synonym={"enabled": True, "rate": 1.0})  # budget 2 of 10
    seen = set()
    for seed in range(40):
        b = MaskingCollator(TK, cfg, 16, seed=seed, synonyms=table).mask_batch([row])
        target = np.flatnonzero(b.labels[0] != -100).tolist()
        if target == [3, 4]:  # 美丽 chosen: shown as 漂亮, labels stay 美丽
            assert tuple(b.input_ids[0, 3:5]) == ids("漂亮") and tuple(b.labels[0, 3:5]) == ids("美丽")
            assert b.synonym[0].tolist() == [False] * 3 + [True, True] + [False] * 7
        else:
            assert not b.synonym.any()
        seen.add(tuple(target))
    assert (3, 4) in seen and len(seen) > 1


# summaries by rjieba's words: 苹果|是|一种|水果|。|果实|很甜|。 · 苹果公司|发布|手机 · 北京|是|中国|首都
KB = [
    KnowledgeEntry(
        id="F1",
        name="苹果",
        type="fruit",
        description="一种水果，蔷薇科植物的果实",
        summary="苹果是一种水果。果实很甜。",
    ),
    KnowledgeEntry(
        id="C1",
        name="苹果公司",
        aliases=["苹果"],
        type="company",
        description="美国科技公司，发布手机",
        summary="苹果公司发布手机",
    ),
    KnowledgeEntry(id="B1", name="北京", description="中国首都", summary="北京是中国首都"),
]


def test_ambiguous_names_resolve_by_description_overlap():
    m = EntityMatcher(KB)
    assert m.link("苹果发布了新款手机") == [(0, 2, "C1")]
    assert m.link("苹果是一种常见的水果") == [(0, 2, "F1")]
    assert m.link("苹果公司在北京") == [(0, 4, "C1"), (5, 7, "B1")]  # longest match wins over the ambiguous 苹果
    assert m.link("没有实体") == []
    spans, linked = annotate_linked("北京的苹果很甜，苹果是水果", m)
    assert linked == ["B1", "F1"]  # first mention order, each once
    assert spans["entity"][:2] == [(0, 2), (3, 5)]


def test_knowledge_segment_shares_the_budget():
    ks = KnowledgeSegments(KB, TK)
    sep = [TK.sep_token_id]
    seg, used = ks.segment(["F1", "C1"], max_entries=2, budget=10)  # shares 5 and 10 - 5 - [SEP] = 4, cut at words
    assert seg.tolist() == [*ids("苹果是一种"), *sep, *ids("苹果公司")] and used == ["F1", "C1"]
    seg, _ = ks.segment(["B1", "F1"], max_entries=2, budget=16)  # B1 needs 7 of its 8: F1 gets 8, up to its 。
    assert seg.tolist() == [*ids("北京是中国首都"), *sep, *ids("苹果是一种水果。")]
    seg, used = ks.segment(["F1", "C1", "B1"], max_entries=1, budget=20)
    assert seg.tolist() == list(ids("苹果是一种水果。果实很甜。")) and used == ["F1"]
    assert ks.segment(["unknown"], 2, 10)[0].tolist() == []


def test_collator_knowledge_layout_and_token_types():
    ks = KnowledgeSegments(KB, TK)
    row = {
        "input_ids": list(ids("北京首都中国城市")),
        "word_spans": [[0, 2], [2, 4], [4, 6], [6, 8]],
        "entity_spans": [[0, 2]],
        "knowledge_ids": ["B1"],
    }
    cfg = MaskConfig(strategy="entity", mask_rate=0.25, knowledge={"enabled": True, "summary_budget": 4})
    b = MaskingCollator(TK, cfg, 32, seed=0, knowledge=ks).mask_batch([row, {**row, "knowledge_ids": []}])
    assert b.original_ids[0].tolist() == [2, *ids("北京首都中国城市"), 3, *ids("北京是"), 3]  # cut after the word 是
    assert b.token_type_ids[0].tolist() == [0] * 10 + [1] * 4
    assert b.token_type_ids[1].sum() == 0 and b.attention_mask[1].sum() == 10
    assert np.flatnonzero(b.labels[0] != -100).tolist() == [1, 2]  # the entity 北京, budget 2 of 8
    assert b.knowledge_entries == [["B1"], []]
    short = MaskingCollator(TK, cfg, 9, seed=0, knowledge=ks).mask_batch([row])  # room: 9 - [CLS] [SEP] K_w [SEP]
    assert short.context_length.tolist() == [3] and short.token_type_ids[0].sum() == 4
    with pytest.raises(ValueError, match="knowledge.enabled needs knowledge segments"):
        MaskingCollator(TK, cfg, 32)
