"""native/spans.c against the Python reference rules (annotate.spans_from_words + spans_by_type_to_tokens)."""

import array
import json

import pytest
from tokenizers import Tokenizer

from obert_lib.corpus import _spans
from obert_lib.corpus.annotate import SPAN_TYPES, EntityMatcher, KnowledgeEntry, spans_from_words, tag_words
from obert_lib.corpus.paragraph_annotator import _keyword_table_loaded, pack_pairs, tag_class, unpack_pairs
from obert_lib.corpus.tokenizer import load_vocab_tokenizer, spans_by_type_to_tokens
from tests.conftest import shared_file

TAGS: list[str] = []


def _tag_id(tag: str) -> int:
    if tag not in TAGS:
        TAGS.append(tag)
        _spans.set_tag_classes(bytes(tag_class(t) for t in TAGS))
    return TAGS.index(tag)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    d = tmp_path_factory.mktemp("tok")
    load_vocab_tokenizer(vocab).save_pretrained(d)
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    _keyword_table_loaded()
    return tok


def _both(text, backend, links=(), top_k=3, words=None):
    words = words if words is not None else tag_words(text)
    enc = backend.encode(text, add_special_tokens=False)
    ref = spans_by_type_to_tokens(enc.offsets, spans_from_words(text, words, list(links), top_k))
    packed_words = array.array("i", [v for s, e, t in words for v in (s, e, _tag_id(t), -1)]).tobytes()
    offsets = pack_pairs(enc.offsets)
    got = _spans.annotate(text, packed_words, offsets, pack_pairs([(s, e) for s, e, _ in links]), top_k)
    return ref, got


def _assert_same(text, backend, **kw):
    ref, got = _both(text, backend, **kw)
    assert got is not None, text
    assert {t: unpack_pairs(b) for t, b in zip(SPAN_TYPES, got)} == ref, text


CASES = [
    "李白是唐代著名的浪漫主义诗人，他与杜甫并称李杜。",
    "",
    "   ",
    "北京大学的学生在北京大学读书，北京大学很好。北京大学！",
    "他说：“今天天气很好！”然后走了……又回来了......真的吗？！",
    "iPhone13售价5999元，增长3.5%。The the THE and of 苹果 apple Apple",
    "……………………",
    "一二三四五六七八九十",
    "😀李白😀杜甫😀",
    "他在北京。她在上海；我们在广州：你呢、谁知道\n第二行",
    "ＡＢＣ全角字母和数字１２３",
    "中国人民银行发布了新的货币政策，央行表示将继续实施稳健的货币政策。",
]


@pytest.mark.parametrize("text", CASES)
def test_hand_written_cases_match_reference(backend, text):
    _assert_same(text, backend)


def test_top_k_zero_and_large(backend):
    for k in (0, 1, 50):
        _assert_same(CASES[0] + CASES[3], backend, top_k=k)


def test_top_k_by_insertion_keeps_the_sorted_prefix(backend):
    # spans.c picks the top k (k <= 16) by insertion instead of sorting: same set as the reference's sort,
    # ties of equal score (words unknown to the IDF table share the median) broken by the word itself.
    ties = "qq pp oo nn mm ll kk jj ii hh gg ff ee dd cc bb aa zz yy xx"
    for k in (1, 2, 3, 4, 15, 16, 17, 19, 20, 21):
        _assert_same(ties, backend, top_k=k)
    long_text = "".join(CASES[i] for i in (0, 3, 6, 9, 10))
    for k in (1, 2, 5, 16, 17):
        _assert_same(long_text, backend, top_k=k)


def test_knowledge_base_entities_win_over_pos_entities(backend):
    m = EntityMatcher([KnowledgeEntry("Q1", "李白", ["李太白"]), KnowledgeEntry("Q2", "北京大学", [])])
    for text in (CASES[0], CASES[3], "李太白和北京大学的故事"):
        _assert_same(text, backend, links=m.link(text))


def test_kelvin_sign_word_goes_to_python():
    _keyword_table_loaded()
    _spans.set_tag_classes(bytes(tag_class(t) for t in ["eng"]))
    text = "\u212aing"  # KELVIN SIGN lower-cases to ASCII k: only Python's str.lower() knows that
    words = array.array("i", [0, 4, 0, -1]).tobytes()
    assert _spans.annotate(text, words, pack_pairs([(0, 4)]), b"", 3) is None
    TAGS.clear()


def test_python_isspace_table_matches():
    # spans.c hard-codes str.isspace(); a sentence of only such characters is dropped.
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert len(spaces) == 29


def test_bad_words_raise(backend):
    _tag_id("n")
    bad = array.array("i", [0, 5, 0, -1]).tobytes()  # ends past the text
    with pytest.raises(ValueError, match="inside the text"):
        _spans.annotate("李白", bad, b"", b"", 3)
    with pytest.raises(ValueError, match="int32 x 4"):
        _spans.annotate("李白", b"\x00" * 3, b"", b"", 3)


def test_fewclue_paragraphs_match_reference(backend):
    root = shared_file("fewclue")
    texts = []
    for f in sorted(root.glob("*/*.json")):
        for i, line in enumerate(open(f, encoding="utf-8")):
            if i % 5:  # every fifth row of every file: enough to meet every rule many times
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a few files hold non-JSON-lines records
                continue
            texts += [v for v in row.values() if isinstance(v, str) and len(v) > 1]
    assert len(texts) > 10_000
    for text in texts:
        ref, got = _both(text, backend, top_k=3)
        if got is None:
            continue
        assert {t: unpack_pairs(b) for t, b in zip(SPAN_TYPES, got)} == ref, text
    for text in sorted(texts, key=len)[-200:]:  # the longest: many keyword candidates for the top-k selection
        for k in (1, 8, 16, 17):
            ref, got = _both(text, backend, top_k=k)
            if got is not None:
                assert {t: unpack_pairs(b) for t, b in zip(SPAN_TYPES, got)} == ref, (k, text)


def test_c_idf_table_equals_python_table():
    from obert_lib.corpus.annotate import jieba_analyse_dir, jieba_idf

    idf, median, stop = jieba_idf()
    assert _spans.load_idf_file(str(jieba_analyse_dir() / "idf.txt"), sorted(stop), []) == median
    assert all(_spans.idf_of(w) == v for w, v in idf.items())
    assert _spans.idf_of("不在表里的词语") is None


def test_c_idf_reader_refuses_lines_it_cannot_read_exactly(tmp_path):
    for content in ("词 1.5\n 前导空格 2\n", "词 1.5\r\n另 2\n", "词 一点五\n", "\xff\n"):
        bad = tmp_path / "idf.txt"
        bad.write_bytes(content.encode("utf-8", "surrogateescape") if content != "\xff\n" else b"\xff 1\n")
        with pytest.raises(ValueError):
            _spans.load_idf_file(str(bad), [], [])
    good = tmp_path / "ok.txt"
    good.write_text(
        "甲 3\n乙 1\n甲 2\n丙 5\n", encoding="utf-8"
    )  # a repeated word keeps its last value, as a dict does
    assert _spans.load_idf_file(str(good), ["the"], []) == 2.0  # sorted([2, 1, 5])[3 // 2]
    assert _spans.idf_of("甲") == 2.0
    _keyword_table_loaded.cache_clear()
    _keyword_table_loaded()
