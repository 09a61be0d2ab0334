"""The KgCLUE metric on hand-made answers: LCS F1 values computed by hand, normalisation, bad predictions."""

from __future__ import annotations

import json

import pytest

from obert_lib.config import DataError
from obert_lib.kbqa.metric import evaluate, lcs_f1, lcs_length, normalize, parse_answer, read_answers

# --- LCS and F1 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, lcs",
    [
        ("abcde", "ace", 3),
        ("ABCBDAB", "BDCABA", 4),  # the textbook pair (Cormen et al., ch. 15.4): BCBA
        ("a1b2c3", "abc", 3),  # a subsequence, not a substring (the longest common substring is 1)
        ("韩玉玲原创音乐", "韩玉玲音乐", 5),
        ("abc", "xyz", 0),
        ("abc", "", 0),
    ],
)
def test_lcs_length_is_the_longest_common_subsequence(a, b, lcs):
    assert lcs_length(a, b) == lcs
    assert lcs_length(b, a) == lcs


@pytest.mark.parametrize(
    "a, b, f1",
    [
        ("abcde", "ace", 0.75),  # 2·3 / (5 + 3)
        ("ABCBDAB", "BDCABA", 8 / 13),  # 2·4 / (7 + 6)
        ("a1b2c3", "abc", 2 / 3),  # 2·3 / (6 + 3)
        ("韩玉玲原创音乐", "韩玉玲音乐", 5 / 6),  # 2·5 / (7 + 5)
        ("abc", "abc", 1.0),
        ("abc", "xyz", 0.0),
        ("abc", "", 0.0),
        ("", "", 0.0),  # the official f1_sim: 0 when both are empty
    ],
)
def test_lcs_f1_hand_computed(a, b, f1):
    assert lcs_f1(a, b) == pytest.approx(f1, rel=1e-12, abs=0)


# --- normalisation and parsing ------------------------------------------------------------------------------------


def test_normalize_lowercases_and_collapses_any_whitespace_only():
    assert normalize("  Hello \t  World\u3000X \n") == "hello world x"  # U+3000 (full-width space) is whitespace
    assert normalize("ＡＢ，c") == "ａｂ，c"  # full-width letters lower-case but are not folded to half-width


@pytest.mark.parametrize(
    "text, parsed",
    [
        (
            "守望星光（韩玉玲、刘东考演唱歌曲） ||| 出品公司 ||| 韩玉玲原创音乐",
            ("守望星光（韩玉玲、刘东考演唱歌曲）", "出品公司", "韩玉玲原创音乐"),
        ),
        (" Apple  INC ||| Type |||  Company ", ("apple inc", "type", "company")),
        ("a|||b|||c", ("a", "b", "c")),
        ("a ||| ||| c", ("a", "", "c")),  # three fields, one empty: parsed, scored field by field
        ("a ||| b", None),
        ("a ||| b ||| c ||| d", None),
        ("", None),
        ("   ", None),
        (None, None),
        (5, None),
    ],
)
def test_parse_answer(text, parsed):
    assert parse_answer(text) == parsed


# --- evaluate -----------------------------------------------------------------------------------------------------

GOLD = {
    0: "守望星光 ||| 出品公司 ||| 韩玉玲原创音乐",
    1: "S1 ||| 作者 ||| abcde",
    2: "S2 ||| 国籍 ||| 中国",
    3: "S3 ||| 身高 ||| 170cm",
}


def test_evaluate_hand_computed_with_missing_malformed_and_extra_ids():
    pred = {
        0: "守望星光 ||| 出品公司 ||| 韩玉玲音乐",  # S, P exact; O F1 5/6; all: LCS 13 of 15 + 13 -> 26/28
        "1": "s1 ||| 作者 ||| ACE",  # id "1" aligns with gold 1; S matches after lower-casing; O F1 0.75;
        # all: 's1作者ace' (7) vs 's1作者abcde' (9), LCS 7 -> 14/16
        3: "S3 ||| 身高",  # malformed: two fields
        9: "x ||| y ||| z",  # not in gold: ignored, counted
    }  # gold 2 has no prediction: missing
    m = evaluate(GOLD, pred)
    expected = {
        "EM_S": 2 / 4,
        "EM_P": 2 / 4,
        "EM_O": 0.0,
        "EM_All": 0.0,
        "F1_S": 2 / 4,
        "F1_P": 2 / 4,
        "F1_O": (5 / 6 + 0.75) / 4,  # 19/48
        "F1_All": (26 / 28 + 14 / 16) / 4,  # 101/224
        "EMF1": 19 / 96,  # 0.5·0 + 0.5·19/48
        "score": 19 / 96,
    }
    assert {k: m[k] for k in expected} == pytest.approx(expected, rel=1e-12, abs=0)
    assert {k: m[k] for k in ("n", "scored", "missing", "malformed", "extra")} == {
        "n": 4,
        "scored": 2,
        "missing": 1,
        "malformed": 1,
        "extra": 1,
    }


def test_evaluate_perfect_and_all_wrong():
    perfect = evaluate(GOLD, {k: v.lower().replace(" ||| ", "|||") for k, v in GOLD.items()})
    assert perfect["score"] == perfect["EM_All"] == perfect["F1_All"] == 1.0
    assert perfect["scored"] == 4
    empty = evaluate(GOLD, {0: "", 1: "   ", 2: None, 3: "a ||| b ||| c ||| d"})
    assert empty["score"] == empty["F1_All"] == empty["EM_S"] == 0.0
    assert (empty["malformed"], empty["missing"], empty["scored"]) == (4, 0, 0)
    nothing = evaluate(GOLD, {})
    assert nothing["score"] == 0.0 and nothing["missing"] == 4


def test_evaluate_object_em_and_f1_make_the_score():
    m = evaluate({"a": "e ||| r ||| abcde"}, {"a": "e ||| r ||| ace"})
    assert (m["EM_O"], m["F1_O"], m["score"]) == (0.0, 0.75, 0.375)
    m = evaluate({"a": "e ||| r ||| 中国"}, {"a": "x ||| y ||| 中国"})  # the object alone decides the score
    assert (m["EM_S"], m["EM_P"], m["EM_O"], m["score"]) == (0.0, 0.0, 1.0, 1.0)


def test_evaluate_refuses_bad_gold():
    with pytest.raises(DataError, match=r"gold id 7: answer 'a \|\|\| b' is not"):
        evaluate({7: "a ||| b"}, {7: "a ||| b ||| c"})
    with pytest.raises(DataError, match="gold holds no answers"):
        evaluate({}, {1: "a ||| b ||| c"})
    with pytest.raises(DataError, match="ids 1 and '1' are the same id"):
        evaluate({1: "a ||| b ||| c", "1": "a ||| b ||| c"}, {})


# --- read_answers -------------------------------------------------------------------------------------------------


def test_read_answers_and_its_errors(tmp_path):
    good = tmp_path / "pred.json"
    good.write_text(
        json.dumps({"id": 0, "answer": "a ||| b ||| c"}, ensure_ascii=False) + "\n\n" + '{"id": "x", "answer": null}\n',
        encoding="utf-8",
    )
    assert read_answers(good) == {0: "a ||| b ||| c", "x": None}
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 0, "answer": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{bad}:2: not a JSON line"):
        read_answers(bad)
    bad.write_text('{"id": 0}\n{"answer": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf'{bad}:2: a row needs an integer or text "id"'):
        read_answers(bad)
    bad.write_text('{"id": 0}\n{"id": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{bad}:2: id 0 repeats line 1"):
        read_answers(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_answers(tmp_path / "absent.json")
