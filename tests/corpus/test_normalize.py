from obert_lib.corpus import normalize


def test_strip_html_tags_and_entities():
    assert normalize.strip_html("<p>北京&nbsp;是&amp;首都</p><br/>长江") == "\n北京\xa0是&首都\n\n长江"
    assert normalize.strip_html('<span class="x">故宫</span>&lt;b&gt;') == "故宫<b>"


def test_nfkc_folds_fullwidth_ascii_but_keeps_chinese_punctuation():
    assert normalize.nfkc_keep_cjk_punct("ＧＤＰ在２０１９年，增长！（约）") == "GDP在2019年，增长！（约）"


def test_control_and_zero_width_removed():
    assert normalize.remove_control_chars("北\u200b京\x07\n上海\ufeff") == "北京\n上海"


def test_whitespace_and_cjk_spaces():
    assert normalize.normalize_whitespace("  北京　　是 \n\n  首都  ") == "北京 是\n首都"
    assert normalize.remove_spaces_between_cjk("北京 是 AI 首都") == "北京是 AI 首都"


def test_traditional_to_simplified():
    assert normalize.traditional_to_simplified("臺灣的故宮與長城") == "台湾的故宫与长城"
