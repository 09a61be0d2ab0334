"""Each datatrove step on hand-written documents, with the exact outcome."""

from datatrove.data import Document

from obert_lib.corpus.cleaning import LengthGuardFilter, LineRules, Normalize, QualityFilter, ReaderDropFilter
from obert_lib.corpus.readers import DROP_KEY

PROSE = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"


def _doc(text, **meta):
    return Document(text=text, id="d", metadata=meta)


def test_quality_reasons_in_order():
    q = QualityFilter(
        20, 0.4, 0.25, 0.3, max_punctuation_ratio=0.3, max_digit_ratio=0.3, max_duplicate_ngram_fraction=0.3
    )
    assert q.filter(_doc(PROSE)) is True
    assert q.filter(_doc(PROSE, spam_lines="3/4")) == (False, "spam_keywords")
    assert q.filter(_doc("   ")) == (False, "empty_after_cleaning")
    assert q.filter(_doc("abc def ghi jkl 北京")) == (False, "low_cjk_ratio")
    assert q.filter(_doc("北京是首都。")) == (False, "too_short")
    assert q.filter(_doc("哈" * 40)) == (False, "repetitive_characters")
    assert q.filter(_doc("\n".join([PROSE, PROSE, PROSE]))) == (False, "repeated_lines")
    symbols = "北京、上海；广州！深圳？杭州。成都，西安：南京（武汉）重庆“长江”黄河…珠江《泰山》华山【黄山】嵩山"
    assert q.filter(_doc(symbols)) == (False, "punctuation_ratio")
    assert q.filter(_doc("电话一二三四五六七八九十百千万亿北京上海广州深圳" + "1234567890" * 2)) == (
        False,
        "digit_ratio",
    )
    loop = "长江是中国第一长河流经许多城市" * 3
    assert q.filter(_doc(loop)) == (False, "repeated_ngrams")


def test_length_guard_and_reader_drops():
    g = LengthGuardFilter(10)
    long = _doc("长" * 11)
    assert g.filter(long) == (False, "too_long") and long.metadata["detail"] == "11 chars > 10"
    assert ReaderDropFilter().filter(_doc("", **{DROP_KEY: "invalid_utf8"})) == (False, "invalid_utf8")
    assert ReaderDropFilter().filter(_doc(PROSE)) is True


def test_normalize_and_line_rules_steps():
    doc = _doc(
        "<p>臺灣　ＧＤＰ&amp;增長</p>\n首页 | 新闻 | 国内 | 国际 | 财经\n"
        + PROSE
        + "\n（责任编辑：王某）\n加微信免费领取资料"
    )
    (doc,) = list(Normalize().run([doc]))
    assert doc.text.split("\n")[0] == "台湾 GDP&增长"
    rules = LineRules()
    (doc,) = list(rules.run([doc]))
    assert doc.text == "台湾 GDP&增长\n" + PROSE  # a space between CJK and Latin stays
    stats = {k: v.total for k, v in rules.stats.stats.items()}
    assert stats == {"line_removed_navigation": 1, "line_removed_boilerplate": 1, "line_removed_spam_line": 1}
    ad = _doc("加微信领红包\n点击领取红包\n正常的一句话。")
    (ad,) = list(LineRules().run([ad]))
    assert ad.metadata["spam_lines"] == "2/3"  # QualityFilter will drop the whole advert
