"""The main-text rule (main_text.py) on hand-written pages, with the exact lines kept and removed."""

from datatrove.data import Document

from obert_lib.corpus.main_text import REASON, MainTextBlocks, main_text_blocks, main_text_mask

# Lines of 20+ CJK characters (text lines at min_cjk 15) and short furniture.
P1 = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心。"
P2 = "长江是中国第一长河，全长六千三百多公里，流经十一个省级行政区。"
P3 = "黄河是中国第二长河，发源于青海省巴颜喀拉山脉，注入渤海。"
TEASER = "全民微信时代，用语音功能发六十秒是种怎样的体验？"  # 22 CJK: a text line by length alone
PAGE = [
    "首页",  # menu items: short lines
    "新闻",
    "体育",
    "财经",
    "科技",
    P1,  # the article: three text lines with a one-line subheading between
    "小标题",
    P2,
    P3,
    "我要分享",  # share bar: five short lines end the block
    "微信好友",
    "新浪微博",
    "QQ空间",
    "领英分享",
    TEASER,  # a related-article teaser: a block of its own, smaller than the article
    "关于我们 | 联系我们",
]


def test_blocks_and_mask_exact():
    assert main_text_blocks(PAGE, 15, 5, 1.0) == [(5, 8)]
    assert main_text_mask(PAGE, 15, 5, 1.0) == [False] * 5 + [True] * 4 + [False] * 7


def test_min_share_keeps_other_large_blocks():
    # the teaser block has 22 of the article's 84 CJK characters: kept at min_share 0.2, not at 0.5
    assert main_text_blocks(PAGE, 15, 5, 0.2) == [(5, 8), (14, 14)]
    assert main_text_blocks(PAGE, 15, 5, 0.5) == [(5, 8)]


def test_max_gap_and_lines_without_cjk():
    # four short lines do not end a block at max_gap 5, so the teaser joins the article
    page = [P1, "我要分享", "微信好友", "新浪微博", "QQ空间", TEASER]
    assert main_text_blocks(page, 15, 5, 1.0) == [(0, 5)]
    assert main_text_blocks(page, 15, 4, 1.0) == [(0, 0)]
    # lines without any CJK character ('#1', '>') are markup debris: they do not count towards the gap
    page = [P1, "#1", ">", "<", "2016-01-01", P2]
    assert main_text_blocks(page, 15, 1, 1.0) == [(0, 5)]


def test_step_removes_lines_with_named_reason():
    step = MainTextBlocks(15, 5, 1.0)
    (doc,) = list(step.run([Document(text="\n".join(PAGE), id="d")]))
    assert doc.text == "\n".join([P1, "小标题", P2, P3])
    stats = {k: v.total for k, v in step.stats.stats.items()}
    assert stats == {f"line_removed_{REASON}": 12} and REASON == "outside_main_text"


def test_step_leaves_documents_without_text_lines():
    step = MainTextBlocks(15, 5, 1.0)
    (doc,) = list(step.run([Document(text="首页\n新闻\n体育", id="d")]))
    assert doc.text == "首页\n新闻\n体育"  # the quality rules drop it as too short, under their own reason
    assert not step.stats.stats.get(f"line_removed_{REASON}")


def test_step_leaves_trafilatura_text_whole_unless_on_html():
    """Text ExtractMainText made of an HTML page (metadata html_chars) is already a main text: left whole."""
    from obert_lib.corpus.html_extract import EXTRACTED_KEY

    page = "\n".join(PAGE)
    step = MainTextBlocks(15, 5, 1.0)
    docs = [Document(text=page, id="html", metadata={EXTRACTED_KEY: 5000}), Document(text=page, id="text")]
    html, text = list(step.run(docs))
    assert html.text == page and text.text == "\n".join([P1, "小标题", P2, P3])
    stats = {k: v.total for k, v in step.stats.stats.items()}
    assert stats == {f"line_removed_{REASON}": 12, "documents_main_text_by_trafilatura": 1}
    step = MainTextBlocks(15, 5, 1.0, on_html=True)
    (doc,) = list(step.run([Document(text=page, id="html", metadata={EXTRACTED_KEY: 5000})]))
    assert doc.text == "\n".join([P1, "小标题", P2, P3])


def test_config_errors_name_key_and_fix():
    import pytest

    from obert_lib.config import ConfigError
    from obert_lib.corpus.config import load_config

    with pytest.raises(ConfigError, match=r"lines\.main_text_min_share: must be within \(0, 1\]"):
        load_config("web", **{"lines.main_text_min_share": 0})
    with pytest.raises(ConfigError, match=r"lines\.main_text_max_gap: must be >= 1"):
        load_config("web", **{"lines.main_text_max_gap": 0})
    with pytest.raises(ConfigError, match=r"lines\.main_text_min_cjk: expected an integer"):
        load_config("web", **{"lines.main_text_min_cjk": "ten"})
