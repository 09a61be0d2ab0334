"""The C segmenter (obert_lib.corpus.segmenter) against rjieba.tag (jieba-rs): same words, same POS tags."""

from __future__ import annotations

import json
import random
import re
from array import array
from importlib import resources

import pytest
import rjieba

from obert_lib.corpus.segmenter import Segmenter, default_segmenter
from tests.conftest import shared_file

CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef\U0002f800-\U0002fa1f]")

EDGE_CASES = [
    "",
    " ",
    "   \t\t  ",
    "\r\n",
    "x\r\n\ty",
    "\n\n\r\r\n\r",
    "iPhone13售价5999元",
    "增长3.5%，下降0.25%和100%",
    "WES-5.4.5版本、a.b_c、abc-、1.2.3.4、C++、c#语言、AT&T、--、..",
    "我们中出了一个叛徒👪",
    "😀𠀀𠀁中文😀😀",
    "𠮷野家和𩸽都是扩展B区的字",
    "讥䶯䶰䶱䶲䶳䶴䶵𦡦",
    "ａｂｃ１２３，。！",
    "中\u3000文\u00a0空格",
    "。。。！！？？……——",
    "「引号」『书名号』《红楼梦》【注】",
    "他来到了网易杭研大厦",
    "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "龘齉龘齉",
    "鿖鿗",
    "赞赞赞赞赞赞赞",
    "不扯淡新闻｜常在雨中跑，如何淋得少？",
    "我是拖拉机学院手扶拖拉机专业的。不用多久，我就会升职加薪，当上CEO，走上人生巅峰。",
    "今天纽约的天气真好啊，京华大酒店的张尧经理吃了一只北京烤鸭。",
    "B超、T恤、A股和卡拉OK",
]

# Literal rjieba 0.2.2 output, so that a change on either side is seen.
EXPECTED = {
    "": [],
    "\r\n": [("\r\n", "x")],
    "   \t\t  ": [(" ", "x")] * 3 + [("\t", "x")] * 2 + [(" ", "x")] * 2,
    "iPhone13售价5999元": [("iPhone13", "eng"), ("售价", "n"), ("5999", "m"), ("元", "m")],
    "增长3.5%": [("增长", "v"), ("3.5%", "m")],
    "😀𠀀𠀁中文": [("😀", "x"), ("𠀀𠀁", "x"), ("中文", "nz")],
    "ａｂｃ１２３，。！": [(ch, "x") for ch in "ａｂｃ１２３，。！"],
    "。。。！！": [("。", "x")] * 3 + [("！", "x")] * 2,
    "他来到了网易杭研大厦": [("他", "r"), ("来到", "v"), ("了", "ul"), ("网易", "n"), ("杭研", "nr"), ("大厦", "n")],
    "龘齉": [("龘", "x"), ("齉", "zg")],
    # Viterbi near-ties, decided by jieba-rs's 6-decimal emission probabilities and its tie rule.
    "赞赞赞赞赞赞赞": [("赞赞赞", "v"), ("赞赞", "v"), ("赞赞", "v")],
    "常在雨中跑": [("常在", "p"), ("雨", "n"), ("中", "f"), ("跑", "v")],
}


@pytest.fixture(scope="module")
def seg() -> Segmenter:
    """A segmenter of this module's own: load_user_dict elsewhere in the suite adds words to default_segmenter()."""
    return Segmenter()


@pytest.fixture(scope="module")
def reference():
    """A private rjieba.Jieba: load_user_dict elsewhere in the suite adds words to the module-level rjieba."""
    return rjieba.Jieba()


def long_text(n_chars: int) -> str:
    """Deterministic mixed text: common hanzi, rare and astral ones, Latin, digits, punctuation, spaces."""
    rng = random.Random(0)
    pieces = list(
        "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
        "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    )
    pieces += [
        "𠀀",
        "𩸽",
        "䶵",
        "龘",
        "iPhone",
        "GPT-4",
        "3.14%",
        "2024",
        "，",
        "。",
        "！",
        "？",
        " ",
        "\n",
        "、",
        "（",
        "）",
    ]
    return "".join(rng.choice(pieces) for _ in range(n_chars))[:n_chars]


def fewclue_texts() -> list[str]:
    """Every string value (nested ones included) holding a CJK character, of every JSON row of FewCLUE."""
    root = shared_file("fewclue")
    texts: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, str):
            if CJK.search(value):
                texts.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in sorted(root.glob("*/*.json")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:  # label_distribution.json: plain "true:22 false:23" lines
                    continue
                walk(row)
    return sorted(texts)


def quads(offsets: bytes) -> list[tuple[int, int, int, int]]:
    flat = array("i", offsets)
    return [tuple(flat[i : i + 4]) for i in range(0, len(flat), 4)]


@pytest.mark.parametrize("text", EDGE_CASES + [long_text(10_000)], ids=lambda t: repr(t[:20]))
def test_edge_cases_match_rjieba(seg, reference, text):
    assert seg.tag(text) == reference.tag(text)


@pytest.mark.parametrize("text", sorted(EXPECTED), ids=repr)
def test_literal_expected_output(seg, reference, text):
    assert seg.tag(text) == EXPECTED[text]
    assert reference.tag(text) == EXPECTED[text]


def test_fewclue_texts_match_rjieba(seg, reference):
    texts = fewclue_texts()
    assert len(texts) > 100_000
    mismatched = [t for t in texts if seg.tag(t) != reference.tag(t)]
    assert not mismatched, f"{len(mismatched)} texts differ, e.g. {mismatched[:3]}"


@pytest.mark.parametrize("text", EDGE_CASES + [long_text(10_000)], ids=lambda t: repr(t[:20]))
def test_tag_offsets_consistent_with_tag(seg, text):
    tags = seg.tag(text)
    words = quads(seg.tag_offsets(text))
    assert len(words) == len(tags)
    names = seg.tag_names
    position = 0
    for (start, end, tag_id, record), (word, tag) in zip(words, tags):
        assert start == position < end
        assert text[start:end] == word
        assert names[tag_id] == tag
        if record >= 0:
            assert seg.record_word(record) == word
        else:
            assert not rjieba.has_word(word)
        position = end
    assert position == len(text)


def test_dictionary_records_are_jieba_lines(seg):
    lines = [line.split() for line in resources.files("jieba").joinpath("dict.txt").read_text("utf-8").splitlines()]
    assert seg.n_records == len(lines)
    assert [seg.record_word(i) for i in (0, len(lines) // 2, len(lines) - 1)] == [
        lines[i][0] for i in (0, len(lines) // 2, len(lines) - 1)
    ]
    ((_, _, tag_id, record),) = quads(seg.tag_offsets("北京烤鸭"))
    assert (seg.record_word(record), seg.tag_names[tag_id]) == ("北京烤鸭", "n")
    # B超 is on lines 1 and 16: like jieba-rs, the word keeps its first record (the second is an alias).
    assert [i for i, line in enumerate(lines) if line[0] == "B超"] == [1, 16] and seg.record_word(16) == "B超"
    assert quads(seg.tag_offsets("B超"))[0][3] == 1
    with pytest.raises(IndexError):
        seg.record_word(seg.n_records)
    with pytest.raises(TypeError):
        seg.tag(b"bytes")


def test_add_word_matches_rjieba():
    # A private rjieba.Jieba instance: the module-level rjieba.add_word would change rjieba.tag for other tests.
    ours, theirs = Segmenter(), rjieba.Jieba()
    n_records = ours.n_records
    texts = [
        "他来到了网易杭研大厦",
        "ZZ顶呱呱的深度学习框架TensorFlow2和𠀀𠀁字",
        "今天纽约的天气真好啊，京华大酒店",
        "量子纠缠态在常温下的超导材料中",
        long_text(2_000),
    ]
    additions = [
        ("杭研大厦", None, None),
        ("网易", 7, "nt"),
        ("ZZ顶", None, "nz"),
        ("深度学习框架", 300, "n"),
        ("TensorFlow2", None, "eng"),
        ("𠀀𠀁", 10, "x"),
        ("量子纠缠态", None, "n"),
        ("京华大酒店", 0, "ns"),
        ("为了上着杵", 10**9, None),
        ("B超", 5, "nz"),
    ]
    # suggest_freq rounds exp(ln f - ln total + ln total): these flip with the last bit of ln(total).
    probes = ["夜莺", "悬崖勒马", "欣欣向荣", "表格", "杭研大厦", "中国人民"]
    for word, freq, tag in additions:
        assert ours.suggest_freq(word) == theirs.suggest_freq(word)
        ours.add_word(word, freq, tag)
        theirs.add_word(word, freq, tag)
        assert [ours.suggest_freq(p) for p in probes] == [theirs.suggest_freq(p) for p in probes], word
        for text in texts:
            assert ours.tag(text) == theirs.tag(text), (word, text)
    assert ours.n_records == n_records + len(additions) - 2  # 网易 and B超 were in the dictionary already
    assert ours.record_word(ours.n_records - 1) == "为了上着杵"
    n_tags = ours.n_tags
    assert n_tags == len(ours.tag_names) and "newtag" not in ours.tag_names
    ours.add_word("某某新词", 5, "newtag")  # a tag jieba's dictionary lacks gets the next id
    assert ours.n_tags == n_tags + 1 == len(ours.tag_names) and ours.tag_names[-1] == "newtag"
    assert default_segmenter().tag("他来到了网易杭研大厦") == rjieba.tag("他来到了网易杭研大厦")
