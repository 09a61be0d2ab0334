"""NER: BIO checks, seqeval-compatible spans and F1, KgCLUE subject mentions, CoNLL files, end to end to tensors."""

from __future__ import annotations

import json

import pytest

from obert_lib.config import ConfigError, DataError
from obert_lib.corpus.tokenizer import SPECIAL_TOKENS, load_vocab_tokenizer
from obert_lib.finetuning.encoding import encode
from obert_lib.finetuning.examples import DataSource, Example, load_task
from obert_lib.finetuning.ner import (
    KGCLUE_TAGS,
    all_o_f1,
    check_bio,
    join_tokens,
    kgclue_mentions,
    longest_common_substring,
    span_f1,
    spans,
    strip_disambiguation,
    tag_sequences,
)
from tests.conftest import shared_file

# --- spans and F1 -------------------------------------------------------------------------------------------------


def test_seqeval_readme_example_scores_one_half():
    y_true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    y_pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert span_f1(y_true, y_pred) == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "gold": 2,
        "predicted": 2,
        "correct": 1,
    }


def test_predicted_spans_are_read_leniently_as_seqeval_default_mode():
    assert spans(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    assert spans(["I-PER", "I-PER", "O", "I-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}  # I- after O or start begins
    assert spans(["B-PER", "I-LOC", "I-LOC"]) == {("PER", 0, 1), ("LOC", 1, 3)}  # a type change starts anew
    assert spans(["B-PER", "B-PER", "I-PER"]) == {("PER", 0, 1), ("PER", 1, 3)}
    assert spans(["O", "O"]) == set()
    with pytest.raises(DataError, match=r"'E-PER' is not a BIO tag"):
        spans(["E-PER"])


def test_f1_counts_exact_matches_only_and_zero_when_nothing_is_predicted():
    gold = [["B-X", "I-X", "O", "B-Y"], ["O", "B-X"]]
    pred = [["B-X", "O", "O", "B-Y"], ["O", "B-X"]]  # X(0,1) is a boundary error: wrong, not half right
    result = span_f1(gold, pred)
    assert (result["correct"], result["gold"], result["predicted"]) == (2, 3, 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert all_o_f1(gold) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 3, "predicted": 0, "correct": 0}
    with pytest.raises(DataError, match=r"^gold sequence 1: tag 1 'I-X' follows 'O'"):
        span_f1([["O"], ["O", "I-X"]], [["O"], ["O", "O"]])
    with pytest.raises(ValueError, match=r"sequence 0: 2 gold tags but 1 predicted"):
        span_f1([["O", "O"]], [["O"]])


def test_check_bio_names_where_and_the_fix():
    check_bio(["B-PER", "I-PER", "O", "B-LOC", "I-LOC"], "x")
    with pytest.raises(DataError, match=r"^ex 3: tag 1 'I-PER' follows 'O'; an I- tag must continue .* B-PER"):
        check_bio(["O", "I-PER"], "ex 3")
    with pytest.raises(DataError, match=r"^f:1: tag 0 'I-PER' follows the sentence start"):
        check_bio(["I-PER"], "f:1")
    with pytest.raises(DataError, match=r"tag 1 'I-LOC' follows 'B-PER'"):
        check_bio(["B-PER", "I-LOC"], "x")
    with pytest.raises(DataError, match=r"tag 0 'PER' is not a BIO tag"):
        check_bio(["PER"], "x")


def test_tag_sequences_keep_labelled_positions_and_mend_mid_word_starts():
    tags = ["O", "B-S", "I-S"]
    labels = [[-100, 0, 2, -100, 2, -100], [-100, 1, -100, -100, -100, -100]]
    preds = [[1, 2, 2, 0, 0, 1], [0, 0, 0, 0, 0, 0]]
    gold, pred = tag_sequences(labels, preds, tags)
    assert gold == [["O", "B-S", "I-S"], ["B-S"]]  # the first I-S follows O: its entity began inside a word
    assert pred == [["I-S", "I-S", "O"], ["O"]]


# --- KgCLUE -------------------------------------------------------------------------------------------------------


def test_disambiguation_suffix_is_removed_with_nested_brackets():
    assert strip_disambiguation(" 守望星光（韩玉玲、刘东考演唱歌曲） ") == "守望星光"
    assert strip_disambiguation("郑多彬（韩国女演员（2000年出生））") == "郑多彬"
    assert strip_disambiguation("完美（中国）有限公司") == "完美（中国）有限公司"
    assert strip_disambiguation("（韩）") == "（韩）"
    assert longest_common_substring("你知道网易的股票吗", "网易公司") == (3, 2)


def test_kgclue_subjects_are_tagged_exactly_by_fallback_or_dropped():
    rows = [
        {"id": 0, "question": "龙晶用繁体怎么写？", "answer": "龙晶（游戏） ||| 繁体 ||| 龍晶"},
        {"id": 1, "question": "网易的代码？", "answer": "网易公司 ||| 代码 ||| NTES"},
        {"id": 2, "question": "欧盟领袖是谁？", "answer": "欧洲联盟 ||| 领袖 ||| 某人"},
    ]
    examples, stats = kgclue_mentions(rows)
    assert examples == [
        Example(0, "龙晶用繁体怎么写？", label=[1, 2, 0, 0, 0, 0, 0, 0, 0]),
        Example(1, "网易的代码？", label=[1, 2, 0, 0, 0, 0]),
    ]
    assert stats == {
        "rows": 3,
        "exact": 1,
        "fallback": 1,
        "none": 1,
        "none_ids": [2],
        "mention_rate": 2 / 3,
        "exact_rate": 1 / 3,
    }


def write_kgclue(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_kgclue_task_encodes_to_the_gold_spans(tmp_path):
    rows = [{"id": 0, "question": "北京有多大", "answer": "北京（首都） ||| 面积 ||| 1"}]
    write_kgclue(tmp_path / "train.json", rows)
    write_kgclue(tmp_path / "dev.json", rows + [{"id": 1, "question": "他好吗", "answer": "天安门 ||| a ||| b"}])
    data = load_task(DataSource("kgclue_ner", str(tmp_path)), "train", "dev")
    assert (data.kind, data.labels, data.skipped) == ("tagging", KGCLUE_TAGS, {"train": 0, "dev": 1})
    assert data.stats["dev"]["none_ids"] == [1]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL_TOKENS + list("北京有多大")) + "\n", encoding="utf-8")
    batch = encode("tagging", load_vocab_tokenizer(vocab), data.eval, 16)
    gold, pred = tag_sequences(batch["labels"], batch["labels"].clamp(min=0), data.labels)
    assert gold == [["B-SUBJ", "I-SUBJ", "O", "O", "O"]]
    assert span_f1(gold, pred)["f1"] == 1.0


def test_kgclue_rows_without_answer_or_with_a_bad_one_are_named(tmp_path):
    write_kgclue(tmp_path / "a.json", [{"id": 0, "question": "甲"}, {"id": 1, "question": "乙"}])
    with pytest.raises(DataError, match=r"a\.json: 2 rows have no answer"):
        load_task(DataSource("kgclue_ner", str(tmp_path)), "a", "a")
    write_kgclue(tmp_path / "b.json", [{"id": 0, "question": "甲", "answer": "甲 ||| 乙"}])
    with pytest.raises(
        DataError, match=r"b\.json:1: answer '甲 \|\|\| 乙' is not 'entity \|\|\| attribute \|\|\| value'"
    ):
        load_task(DataSource("kgclue_ner", str(tmp_path)), "b", "b")


def test_shared_kgclue_mention_rate():
    """Measured: train 17,963 exact + 34 fallback of 18,000 (3 none); dev 1,996 + 4 of 2,000 (0 none)."""
    shared_file("kgclue/train.json")
    data = load_task(DataSource("kgclue_ner", "shared:kgclue"), "train", "dev")
    for split, rows in (("train", 18000), ("dev", 2000)):
        stats = data.stats[split]
        assert stats["rows"] == rows and stats["exact"] + stats["fallback"] + stats["none"] == rows
        assert stats["exact_rate"] >= 0.995 and stats["mention_rate"] >= 0.999
        assert data.skipped[split] == stats["none"] <= 5
    assert len(data.train) >= 17995 and len(data.eval) >= 1998
    assert all(e.label.count(1) == 1 for e in data.train + data.eval)  # one subject mention per question


# --- CoNLL --------------------------------------------------------------------------------------------------------


def test_tokens_join_with_a_space_only_where_they_would_merge():
    text, tags = join_tokens(["New", "York", "是", "城市", "3", "."], ["B-LOC", "I-LOC", "O", "B-X", "O", "O"])
    assert text == "New York是城市3."
    assert tags == ["B-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC"] + [
        "O",
        "B-X",
        "I-X",
        "O",
        "O",
    ]


def test_conll_files_load_with_tags_from_training(tmp_path):
    (tmp_path / "train.txt").write_text(
        "-DOCSTART- O\n\n我 O\n爱 O\n北 B-LOC\n京 I-LOC\n\n他 B-PER\n", encoding="utf-8"
    )
    (tmp_path / "dev.conll").write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dev\.conll:1: tag 'B-ORG' is not one of \['O', 'B-LOC', 'I-LOC', 'B-PER'"):
        load_task(DataSource("conll", str(tmp_path)), "train", "dev")
    (tmp_path / "dev.conll").write_text("\n\n他 B-PER\n去 O\n", encoding="utf-8")
    data = load_task(DataSource("conll", str(tmp_path)), "train", "dev")
    assert data.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert data.train == [
        Example("train.txt:3", "我爱北京", label=[0, 0, 1, 2]),
        Example("train.txt:8", "他", label=[3]),
    ]
    assert data.eval == [Example("dev.conll:3", "他去", label=[3, 0])]


def test_conll_scheme_breaks_and_bad_label_lists_are_named(tmp_path):
    (tmp_path / "train.txt").write_text("我 O\n爱 O\n\n北 O\n京 I-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.txt:5: 'I-LOC' follows 'O'; an I- tag must continue"):
        load_task(DataSource("conll", str(tmp_path)), "train", "train")
    (tmp_path / "train.txt").write_text("我\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.txt:1: '我' has no tag"):
        load_task(DataSource("conll", str(tmp_path)), "train", "train")
    (tmp_path / "train.txt").write_text("我 O\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^labels: \['B-X'\] must be BIO tags including 'O'"):
        load_task(DataSource("conll", str(tmp_path), labels=["B-X"]), "train", "train")
