from obert_lib.corpus.dedup import NearDuplicateIndex, normalised_hash, shingles

BASE = ("长江是中国第一长河，也是亚洲最长的河流，全长约六千三百公里。长江发源于青藏高原，"
        "流经重庆、武汉、南京，最后在上海注入东海。沿江城市众多，航运十分发达。")


def test_normalised_hash_ignores_spacing_and_punctuation():
    assert normalised_hash("北京 是，首都！") == normalised_hash("北京是首都")
    assert normalised_hash("北京是首都") != normalised_hash("上海是首都")


def test_shingles_are_distinct_ngrams():
    assert len(shingles("北京北京北京", 2)) == 2  # 北京, 京北
    assert len(shingles("北", 5)) == 1


def test_near_duplicate_found_and_different_text_not():
    index = NearDuplicateIndex(num_perm=128, bands=16, threshold=0.7, seed=1)
    assert index.find_or_add(BASE) == (None, 0.0)
    other, jaccard = index.find_or_add(BASE.replace("六千三百", "六千三百多"))
    assert other == 0 and jaccard >= 0.7
    assert index.find_or_add("黄河是中国第二长河，发源于青海省巴颜喀拉山脉，流经九个省区，最后注入渤海。")[0] is None
