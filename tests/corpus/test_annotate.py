from obert_lib.corpus.annotate import EntityMatcher, KnowledgeEntry, annotate, clause_spans, phrase_spans, tag_words

KB = [
    KnowledgeEntry("E1", "北京", ["北京市"]),
    KnowledgeEntry("E2", "北京大学", ["北大"]),
    KnowledgeEntry("E3", "李白", ["李太白"]),
    KnowledgeEntry("E4", "京", []),
]


def test_entity_matcher_longest_match_wins_and_no_overlap():
    m = EntityMatcher(KB)
    text = "北京大学位于北京市，李太白游北京。"
    found = [(text[s:e], ids) for s, e, ids in m.find(text)]
    assert found == [("北京大学", ["E2"]), ("北京市", ["E1"]), ("李太白", ["E3"]), ("北京", ["E1"])]


def test_clause_spans_split_at_chinese_punctuation():
    text = "李白是诗人，他的诗豪放；与杜甫齐名。好"
    assert [text[s:e] for s, e in clause_spans(text)] == ["李白是诗人", "他的诗豪放", "与杜甫齐名"]


def test_tag_words_tiles_text_and_phrases_follow_pos_patterns():
    text = "李白是唐代著名的浪漫主义诗人"
    words = tag_words(text)
    assert "".join(text[s:e] for s, e, _ in words) == text
    assert [text[s:e] for s, e in phrase_spans(words)] == ["著名的浪漫主义诗人"]


def test_annotate_gives_every_span_type():
    m = EntityMatcher(KB)
    spans = annotate("李白是唐代著名的浪漫主义诗人，他与杜甫并称李杜。", m, keywords_top_k=2)
    text = "李白是唐代著名的浪漫主义诗人，他与杜甫并称李杜。"
    assert [text[s:e] for s, e in spans["entity"]][:1] == ["李白"]
    assert "杜甫" in [text[s:e] for s, e in spans["entity"]]  # proper noun found by POS, not in the KB
    assert "李白" in [text[s:e] for s, e in spans["word"]]
    assert len({text[s:e] for s, e in spans["keyword"]}) == 2
    assert [text[s:e] for s, e in spans["clause"]] == ["李白是唐代著名的浪漫主义诗人", "他与杜甫并称李杜"]


def test_sentence_spans_keep_closing_quotes():
    from obert_lib.corpus.annotate import sentence_spans

    text = "他说：“今天天气很好。”我们出发吧！真的吗？？好……走"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "他说：“今天天气很好。”",
        "我们出发吧！",
        "真的吗？？",
        "好……",
        "走",
    ]
    assert sentence_spans("") == [] and sentence_spans("没有句号") == [(0, 4)]


def test_user_dictionary_keeps_words_whole(tmp_path):
    import rjieba

    from obert_lib.corpus.annotate import load_user_dict

    # A made-up name: rjieba's dictionary is process-global, so the word must not occur in other tests' text.
    text = "瑶台仙阁的荷花开了"
    before = [w for w, _ in rjieba.tag(text)]
    assert "瑶台仙阁" not in before
    d = tmp_path / "user.txt"
    d.write_text("# 景点\n瑶台仙阁 ns\n", encoding="utf-8")
    assert load_user_dict(d) == 1
    assert dict(rjieba.tag(text))["瑶台仙阁"] == "ns"


def test_jieba_idf_equals_jieba_analyse():
    import jieba.analyse as ja

    from obert_lib.corpus.annotate import jieba_idf

    idf, median, stop = jieba_idf()
    assert idf == ja.default_tfidf.idf_freq and median == ja.default_tfidf.median_idf
    assert stop == frozenset(ja.default_tfidf.stop_words)
