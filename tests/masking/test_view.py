from obert_lib.masking import MaskPreviewer, mask_widget

TEXT = "李白是唐代著名的浪漫主义诗人，他与杜甫并称李杜。"


def test_same_seed_same_view_and_strategies_differ(sample_corpus):
    p = MaskPreviewer.from_corpus(sample_corpus.output_dir)
    a, b = p.mask(TEXT, "word", 0.15, 3), p.mask(TEXT, "word", 0.15, 3)
    assert a == b
    assert a.tokens[:2] == ["李", "白"] and len(a.tokens) == len(a.shown) == len(a.masked)
    clause = p.mask(TEXT, "clause", 0.15, 3)
    assert sum(clause.masked) >= 8  # a whole clause (the shorter one has 8 tokens)


def test_widget_controls_drive_the_output(sample_corpus):
    p = MaskPreviewer.from_corpus(sample_corpus.output_dir)
    box = mask_widget(p, [TEXT, "北京是中国的首都，也是政治和文化中心。"])
    c = box.controls
    first = c["output"].value
    assert "obert-tok" in first and "strategy <b>word</b>" in first
    c["strategy"].value = "clause"
    assert "strategy <b>clause</b>" in c["output"].value
    c["mask_rate"].value = 0.5
    assert c["output"].value.count("obert-mask") + c["output"].value.count("obert-random") + c["output"].value.count("obert-keep") >= 10
    c["sample"].value = "北京是中国的首都，也是政治和文化中心。"
    assert c["text"].value.startswith("北京") and ">北<" in c["output"].value
    c["text"].value = ""
    assert c["output"].value == ""
