"""Issue 13, finding 6: K_w keeps its entries apart ([SEP]) and cuts a summary at a sentence or word end, shown as ….

Before, summaries ran together and were cut mid-word: `…是中国重要的经长江是中国第一长河…`.
"""

import numpy as np
import pytest

from obert_lib.cli import main
from obert_lib.corpus.annotate import KnowledgeEntry
from obert_lib.masking import KnowledgeSegments, MaskConfig, MaskingCollator, MaskPreviewer, render_html
from obert_lib.masking.knowledge import token_cuts


class CharTokenizer:
    """One token per character (ids from 10, with offsets), specials 0-4 like BERT's [PAD] [UNK] [CLS] [SEP] [MASK]."""

    sep_token_id = 3

    def __init__(self):
        self.ids: dict[str, int] = {}

    def __call__(self, texts, add_special_tokens=False, return_offsets_mapping=False):
        out = {"input_ids": [[self.ids.setdefault(c, 10 + len(self.ids)) for c in t] for t in texts]}
        if return_offsets_mapping:
            out["offset_mapping"] = [[(i, i + 1) for i in range(len(t))] for t in texts]
        return out

    def text(self, ids) -> str:
        chars = {i: c for c, i in self.ids.items()}
        return "".join("|" if i == self.sep_token_id else chars[i] for i in ids)  # '|' stands for [SEP]


# rjieba's words: 李白|字|太白|，|号|青莲居士|。|是|唐代|最|著名|的|浪漫主义|诗人|。
#                 杜甫|字子|美|，|是|唐代|伟大|的|现实主义|诗人|。 · 长江|是|中国|第一|长河|，|全长|六千|三百公里|。
KB = [
    KnowledgeEntry(id="P1", name="李白", summary="李白字太白，号青莲居士。是唐代最著名的浪漫主义诗人。"),
    KnowledgeEntry(id="P2", name="杜甫", summary="杜甫字子美，是唐代伟大的现实主义诗人。"),
    KnowledgeEntry(id="R1", name="长江", summary="长江是中国第一长河，全长六千三百公里。"),
    KnowledgeEntry(id="X1", name="浪漫主义", summary="浪漫主义诗人"),
    KnowledgeEntry(id="Q1", name="他", summary="他说：“我来了。”然后走了。"),
]


@pytest.fixture(scope="module")
def kb():
    tk = CharTokenizer()
    return KnowledgeSegments(KB, tk), tk


def segment(kb, ids, budget, max_entries=2):
    ks, tk = kb
    seg, used = ks.segment(ids, max_entries, budget)
    parts = ks.parts(ids, max_entries, budget)
    assert [p.entry for p in parts] == used and len(seg) <= budget
    return tk.text(seg.tolist()), [p.cut for p in parts]


def test_entries_apart_and_cut_at_a_sentence_end_else_a_word_end(kb):
    # shares: 李白 15 of 30 - [SEP] -> its first sentence (12); 杜甫 the 17 left -> the word end before 诗人
    assert segment(kb, ["P1", "P2"], 30) == ("李白字太白，号青莲居士。|杜甫字子美，是唐代伟大的现实主义", [True, True])
    assert segment(kb, ["P2"], 14) == (
        "杜甫字子美，是唐代伟大的",
        [True],
    )  # not 杜甫字子美，是唐代伟大的现实 (mid-word)
    assert segment(kb, ["P2", "R1"], 80) == (
        "杜甫字子美，是唐代伟大的现实主义诗人。|长江是中国第一长河，全长六千三百公里。",
        [False, False],
    )  # both fit whole: no cut
    assert segment(kb, ["Q1"], 12) == ("他说：“我来了。”", [True])  # a sentence end takes its closing quote along


def test_an_entry_whose_first_word_does_not_fit_is_left_out(kb):
    assert segment(kb, ["X1"], 3) == ("", [])  # 浪漫主义 is 4 tokens: no part of it
    assert segment(kb, ["X1", "R1"], 6) == ("长江是中国", [True])  # X1's share of 3 holds nothing; R1 takes all 6


def test_token_cuts_never_split_a_token():
    offsets = [(0, 3), (3, 6), (6, 7), (8, 10)]  # e.g. 'iph' '##one' '手' ' ' '机器'-like pieces with a space
    assert token_cuts(offsets, [2, 6, 7, 8, 9, 10]).tolist() == [2, 3, 4]  # 2 and 9 fall inside a token
    assert token_cuts([], [1]).tolist() == []


@pytest.fixture(scope="module")
def previewer(sample_corpus):
    return MaskPreviewer.from_corpus(sample_corpus.output_dir)


SHANGHAI = "上海位于长江入海口。"
EXPECTED = "上海是位于长江入海口南岸的直辖市，是中国重要的… [SEP] 长江是中国第一长河，全长约六千三百千米，发源于…"


def test_view_shows_entries_apart_and_the_cut(previewer):
    view = previewer.mask(SHANGHAI, MaskConfig(knowledge={"enabled": True}), seed=0)
    assert view.knowledge_entries == [("E002", "上海"), ("E011", "长江")] and view.knowledge_cut == [True, True]
    assert (
        view.knowledge_text() == EXPECTED
    )  # the sample KB's summaries within 48 tokens: 23 + [SEP] + 23 (发源于|青藏)
    assert view.knowledge_tokens.count("[SEP]") == 1 and len(view.knowledge_tokens) == 47
    html = render_html(view)
    assert html.count('class="obert-cut"') == 2 and html.count('class="obert-knowledge-sep"') == 1
    assert "重要的经" not in html and "2 summaries cut" in html
    whole = previewer.mask(SHANGHAI, MaskConfig(knowledge={"enabled": True, "max_entries": 1, "summary_budget": 200}))
    assert whole.knowledge_cut == [False] and "…" not in whole.knowledge_text()
    assert 'class="obert-cut"' not in render_html(whole)


def test_obert_mask_prints_entries_apart_and_the_cut(sample_corpus, capsys):
    assert main(["mask", "--corpus", str(sample_corpus.output_dir), "--text", SHANGHAI, "--knowledge"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("K_w"))
    assert line.startswith(f"K_w [上海 (E002), 长江 (E011)]: {EXPECTED}") and "summary cut" in line


def test_collator_k_w_ids_are_the_joined_parts(previewer):
    ks, tk = previewer.knowledge, previewer.tokenizer
    row = previewer.row(SHANGHAI)
    b = MaskingCollator(tk, MaskConfig(knowledge={"enabled": True}), 128, knowledge=ks).mask_batch([row])
    k_w = b.original_ids[0, b.token_type_ids[0] == 1][:-1]
    parts = ks.parts(row["knowledge_ids"], 2, 48)
    assert np.array_equal(k_w, np.concatenate([parts[0].ids, [tk.sep_token_id], parts[1].ids]))
    assert b.knowledge_entries == [["E002", "E011"]] and b.knowledge_cut == [[True, True]]
