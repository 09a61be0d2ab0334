"""Language identification (language.py): hand-written Chinese, Japanese and English documents, exact reasons."""

import pytest
from datatrove.data import Document

from obert_lib.config import ConfigError
from obert_lib.corpus.config import DEFAULT_LANGUAGE_CANDIDATES, load_config
from obert_lib.corpus.language import LanguageFilter, identify
from obert_lib.corpus.pipeline import cleaning_steps

CHINESE = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"
TRADITIONAL = "臺北是臺灣最大的都會區，擁有許多歷史建築與美食，每年吸引大量觀光客前來旅遊。"
JAPANESE = "東京は日本の首都であり、政治と経済の中心です。多くの観光客が毎年訪れています。"
ENGLISH = "Beijing is the capital of the People's Republic of China and its political and cultural centre."


def _filter():
    return LanguageFilter(["zh"], DEFAULT_LANGUAGE_CANDIDATES, 1000)


def test_identify_hand_written():
    cands = tuple(DEFAULT_LANGUAGE_CANDIDATES)
    assert identify(CHINESE, cands, 1000) == "zh"
    assert identify(TRADITIONAL, cands, 1000) == "zh"
    assert identify(JAPANESE, cands, 1000) == "ja"  # the same ideographs, told apart by the kana
    assert identify(ENGLISH, cands, 1000) == "en"
    assert identify("#@%&*(~~~ 123 !!", cands, 1000) is None  # no letter: left to the quality rules


def test_filter_exact_reasons():
    f = _filter()
    assert f.filter(Document(text=CHINESE, id="zh")) is True
    assert f.filter(Document(text=TRADITIONAL, id="zh-hant")) is True
    ja = Document(text=JAPANESE, id="ja")
    assert f.filter(ja) == (False, "other_language")
    assert ja.metadata["detail"] == "identified as 'ja' in the first 1000 characters"
    assert f.filter(Document(text=ENGLISH, id="en")) == (False, "other_language")
    assert f.filter(Document(text="#@%&*(~~~ 123 !!", id="symbols")) is True


def test_prefix_only():
    # only the first prefix_chars characters are read: Chinese after 40 characters of Japanese is not seen
    f = LanguageFilter(["zh"], DEFAULT_LANGUAGE_CANDIDATES, 40)
    assert f.filter(Document(text=JAPANESE[:40] + CHINESE * 5, id="d")) == (False, "other_language")


def test_web_preset_runs_it_before_quality():
    web = [type(s).__name__ for s in cleaning_steps(load_config("web"))]
    assert web[-5:] == ["LineRules", "PageLineRules", "MainTextBlocks", "LanguageFilter", "QualityFilter"]
    default = [type(s).__name__ for s in cleaning_steps(load_config("default"))]
    assert "LanguageFilter" not in default and "MainTextBlocks" not in default


def test_config_errors_name_key_and_fix():
    with pytest.raises(ConfigError, match=r"language\.candidates: \['xx'\] are not py3langid language codes"):
        load_config("web", **{"language.candidates": ["zh", "xx"]})
    with pytest.raises(ConfigError, match=r"language\.keep: \['ja'\] not among candidates"):
        load_config("web", **{"language.keep": ["ja"], "language.candidates": ["zh"]})
    with pytest.raises(ConfigError, match=r"language\.prefix_chars: must be >= 20"):
        load_config("web", **{"language.prefix_chars": 5})
    with pytest.raises(ConfigError, match=r"language\.enabeld: unknown key.*did you mean 'enabled'"):
        load_config("web", **{"language.enabeld": True})


def test_all_japanese_run_says_why(tmp_path):
    import json

    from tests.corpus.small_runs import preprocess_cli

    src = tmp_path / "ja.jsonl"
    src.write_text(json.dumps({"id": "ja", "text": JAPANESE * 3}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert preprocess_cli([src], tmp_path / "out", "--config", "web") == 2
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["documents_dropped"] == {"other_language": 1}
    assert (
        "all 1 document dropped: other_language (1); documents are in a language not in language.keep=['zh']"
        in (stats["error"])
    )
    assert "identified as 'ja' in the first 500 characters" in stats["error"]
