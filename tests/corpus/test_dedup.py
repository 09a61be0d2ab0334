import numpy as np

from obert_lib.corpus.dedup import exact_dedup_key, shingles


class Doc:
    def __init__(self, text):
        self.text = text


def test_exact_key_ignores_spacing_punctuation_and_case():
    assert exact_dedup_key(Doc("北京 是，首都！AI")) == exact_dedup_key(Doc("北京是首都ai")) == "北京是首都ai".encode()
    assert exact_dedup_key(Doc("北京是首都")) != exact_dedup_key(Doc("上海是首都"))


def test_shingles_are_distinct_character_ngrams():
    assert len(shingles("北京北京北京", 2)) == 2  # 北京, 京北
    assert len(shingles("北", 5)) == 1 and len(shingles("，。", 5)) == 0
    a, b = set(shingles("长江是中国第一长河", 3).tolist()), set(shingles("长江是中国第一大河", 3).tolist())
    assert len(a & b) == 5 and shingles("abc", 2).dtype == np.uint64
