"""Fine-tuning data: FewCLUE rows -> Examples of the right kind, a user's JSONL/CSV, and the encoded tensors."""

from __future__ import annotations

import json

import pytest

from obert_lib.config import ConfigError, DataError
from obert_lib.corpus.tokenizer import SPECIAL_TOKENS, load_vocab_tokenizer
from obert_lib.finetuning.encoding import IGNORE_INDEX, check_lengths, encode
from obert_lib.finetuning.examples import FEWCLUE_KINDS, DataSource, Example, fewclue_example, load_task
from tests.conftest import shared_file

CHARS = "我爱北京天安门他去了她和好吗。，甲乙丙丁戊己庚辛画蛇添足雪中送炭在这之际"
WORDS = ["ip", "##hone", "new", "york", "##s"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A real BERT WordPiece tokenizer over a hand-written vocabulary: token id = line number."""
    vocab = list(SPECIAL_TOKENS) + sorted(set(CHARS)) + WORDS
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tk = load_vocab_tokenizer(path)
    tk.vocab_list = vocab
    return tk


def tokens(tk, ids):
    return " ".join(tk.vocab_list[i] for i in ids)


def write_lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- FewCLUE rows -> Examples -------------------------------------------------------------------------------------


def test_each_fewclue_task_maps_to_its_kind_and_fields():
    assert fewclue_example("eprstmt", {"id": 1, "sentence": "好", "label": "Positive"}, ["Negative", "Positive"]) == (
        Example(1, "好", label=1)
    )
    pair = fewclue_example("bustm", {"id": 2, "sentence1": "甲", "sentence2": "乙", "label": "0"}, ["0", "1"])
    assert pair == Example(2, "甲", pair="乙", label=0)
    csl = fewclue_example("csl", {"id": 3, "abst": "摘要", "keyword": ["甲", "乙"], "label": "1"}, ["0", "1"])
    assert csl == Example(3, "甲，乙", pair="摘要", label=1)
    wsc_row = {
        "idx": 4,
        "text": "甲说他去了",
        "target": {"span1_index": 0, "span1_text": "甲", "span2_index": 2, "span2_text": "他"},
        "label": "false",
    }
    assert fewclue_example("cluewsc", wsc_row, ["true", "false"]) == Example(
        4, "甲（这是实体）说他（这是代词）去了", label=1
    )
    chid_row = {"id": 5, "content": "在这 #idiom# 之际", "candidates": ["画蛇添足", "雪中送炭"], "answer": 1}
    assert fewclue_example("chid", chid_row, []) == Example(
        5, "在这#idiom#之际", choices=["在这画蛇添足之际", "在这雪中送炭之际"], label=1
    )
    assert fewclue_example("ocnli", {"id": 6, "sentence1": "a", "sentence2": "b", "label": "-"}, ["x"]) is None
    assert FEWCLUE_KINDS["cluewsc"] == "classification" and FEWCLUE_KINDS["chid"] == "multiple_choice"


# sample data: dev_0 of every task (train_0 where the sample has one): kind, classes, examples, ocnli's skipped row
SAMPLE = {
    "eprstmt": ("classification", 2, 16),
    "tnews": ("classification", 15, 16),
    "iflytek": ("classification", 8, 16),  # the sample label files hold 8 classes
    "csldcp": ("classification", 8, 16),
    "cluewsc": ("classification", 2, 16),
    "bustm": ("pair", 2, 16),
    "ocnli": ("pair", 3, 15),
    "csl": ("pair", 2, 16),
    "chid": ("multiple_choice", 0, 14),
}


@pytest.mark.parametrize("task", sorted(SAMPLE))
def test_every_sample_task_loads(task):
    kind, n_labels, n_examples = SAMPLE[task]
    data = load_task(DataSource(task, "sample:fewclue"), "dev_0", "dev_0")
    assert (data.kind, len(data.labels), len(data.train), len(data.eval)) == (kind, n_labels, n_examples, n_examples)
    assert data.skipped == {"dev_0": 1 if task == "ocnli" else 0}
    assert all(e.label is not None for e in data.eval)


def test_unlabelled_rows_name_the_file_and_count():
    with pytest.raises(DataError, match=r"eprstmt/test\.json: 8 of 8 rows have no label"):
        load_task(DataSource("eprstmt", "sample:fewclue"), "train_0", "test")


def test_ocnli_rows_outside_the_three_classes_are_skipped_and_counted(tmp_path):
    rows = [
        {"id": 0, "sentence1": "甲", "sentence2": "乙", "label": "neutral"},
        {"id": 1, "sentence1": "甲", "sentence2": "丙", "label": "-"},
        {"id": 2, "sentence1": "丁", "sentence2": "乙", "label": "entailment"},
    ]
    write_lines(tmp_path / "ocnli" / "train.json", rows)
    write_lines(tmp_path / "ocnli" / "dev.json", rows[:2])
    data = load_task({"task": "ocnli", "data_dir": str(tmp_path)}, "train", "dev")
    assert data.labels == ["entailment", "neutral", "contradiction"]
    assert [(e.id, e.label) for e in data.train] == [(0, 1), (2, 0)]
    assert data.skipped == {"train": 1, "dev": 1}


def test_an_unknown_task_and_format_are_config_errors():
    with pytest.raises(ConfigError, match=r"^task: 'sst2' is not a known task"):
        DataSource("sst2", "x")
    with pytest.raises(ConfigError, match=r"^format: 'tsv' is not readable; use 'jsonl' or 'csv'"):
        DataSource("custom", "x", format="tsv")


# --- a user's JSONL / CSV -----------------------------------------------------------------------------------------


def test_custom_jsonl_labels_default_to_the_sorted_training_labels(tmp_path):
    write_lines(tmp_path / "train.jsonl", [{"q": "甲", "y": "pos"}, {"q": "乙", "y": "neg", "id": "x"}])
    write_lines(tmp_path / "dev.jsonl", [{"q": "丙", "y": "neg"}])
    data = load_task(DataSource("custom", str(tmp_path), text_field="q", label_field="y"), "train", "dev")
    assert (data.kind, data.labels) == ("classification", ["neg", "pos"])
    assert data.train == [Example(1, "甲", label=1), Example("x", "乙", label=0)]
    assert data.eval == [Example(1, "丙", label=0)]


def test_custom_csv_pairs_with_given_labels(tmp_path):
    (tmp_path / "train.csv").write_text("a,b,label\n甲,乙,1\n丙,丁,0\n", encoding="utf-8")
    (tmp_path / "dev.csv").write_text("a,b,label\n甲,丁,1\n", encoding="utf-8")
    source = DataSource("custom", str(tmp_path), format="csv", text_field="a", pair_field="b", labels=["1", "0"])
    data = load_task(source, "train", "dev")
    assert data.kind == "pair" and data.labels == ["1", "0"]
    assert data.train == [Example(2, "甲", "乙", label=0), Example(3, "丙", "丁", label=1)]


def test_custom_bad_rows_name_file_and_line(tmp_path):
    write_lines(tmp_path / "train.jsonl", [{"text": "甲", "label": "a"}, {"text": "乙", "label": "b"}])
    write_lines(tmp_path / "dev.jsonl", [{"text": "甲", "label": "a"}, {"text": "乙", "label": "c"}])
    with pytest.raises(DataError, match=r"dev\.jsonl:2: label 'c' is not one of the labels seen in train\.jsonl"):
        load_task(DataSource("custom", str(tmp_path)), "train", "dev")
    with pytest.raises(DataError, match=r"train\.jsonl:1: label 'a' is not one of the YAML's `labels` \['b'\]"):
        load_task(DataSource("custom", str(tmp_path), labels=["b"]), "train", "dev")
    write_lines(tmp_path / "dev.jsonl", [{"text": "甲"}, {"text": "乙", "label": ""}, {"text": "乙", "label": "a"}])
    with pytest.raises(DataError, match=r"dev\.jsonl: 2 of 3 rows have no `label`"):
        load_task(DataSource("custom", str(tmp_path)), "train", "dev")
    write_lines(tmp_path / "dev.jsonl", [{"sentence": "甲", "label": "a"}])
    with pytest.raises(DataError, match=r"dev\.jsonl:1: no `text` \(the row has \['label', 'sentence'\]\)"):
        load_task(DataSource("custom", str(tmp_path)), "train", "dev")
    with pytest.raises(FileNotFoundError, match=r"valid\{\.jsonl,\.json\} does not exist"):
        load_task(DataSource("custom", str(tmp_path)), "train", "valid")


# --- encoding -----------------------------------------------------------------------------------------------------


def test_classification_and_pairs_truncated_longest_first(tokenizer):
    batch = encode("classification", tokenizer, [Example(0, "我爱北京", label=1), Example(1, "他", label=0)], 5)
    assert [tokens(tokenizer, x) for x in batch["input_ids"].tolist()] == [
        "[CLS] 我 爱 北 [SEP]",
        "[CLS] 他 [SEP] [PAD] [PAD]",
    ]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]
    pair = encode("pair", tokenizer, [Example(0, "我爱北京天安门", pair="他去了", label=1)], 8)
    assert tokens(tokenizer, pair["input_ids"][0].tolist()) == "[CLS] 我 爱 北 [SEP] 他 去 [SEP]"
    assert pair["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1, 1]]
    unlabelled = encode("pair", tokenizer, [Example(0, "我", pair="他")], 8, pad_to_max_length=True)
    assert "labels" not in unlabelled and unlabelled["input_ids"].shape == (1, 8)
    with pytest.raises(DataError, match=r"example 3: a pair task needs `pair` text"):
        encode("pair", tokenizer, [Example(3, "我")], 8)


def test_multiple_choice_keeps_the_differing_span_and_pads_choices(tokenizer):
    long_row = Example(0, "", choices=["甲乙丙丁画蛇添足戊己庚辛", "甲乙丙丁雪中送炭戊己庚辛"], label=1)
    short_row = Example(1, "", choices=["在这", "在这之际", "我"], label=2)
    batch = encode("multiple_choice", tokenizer, [long_row, short_row], 10)
    assert batch["input_ids"].shape == (2, 3, 10)
    assert [tokens(tokenizer, x) for x in batch["input_ids"][0].tolist()] == [
        "[CLS] 丙 丁 画 蛇 添 足 戊 己 [SEP]",  # 4 tokens of context left, kept evenly on each side
        "[CLS] 丙 丁 雪 中 送 炭 戊 己 [SEP]",
        "[PAD] [PAD] [PAD] [PAD] [PAD] [PAD] [PAD] [PAD] [PAD] [PAD]",
    ]
    assert batch["attention_mask"][0, 2].tolist() == [1] + [0] * 9  # never a fully masked row
    assert tokens(tokenizer, batch["input_ids"][1, 1].tolist()) == "[CLS] 在 这 之 际 [SEP] [PAD] [PAD] [PAD] [PAD]"
    assert batch["choice_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["labels"].tolist() == [1, 2]
    tail = encode(
        "multiple_choice", tokenizer, [Example(0, "", choices=["画蛇添足甲乙丙丁戊", "雪中送炭甲乙丙丁戊"])], 8
    )
    assert (
        tokens(tokenizer, tail["input_ids"][0, 0].tolist()) == "[CLS] 画 蛇 添 足 甲 乙 [SEP]"
    )  # all room on the right


def test_tagging_labels_the_first_token_of_each_word(tokenizer):
    text = "我爱iphones 北京"  # ip ##hone ##s: one word of three tokens; the space has no token
    tags = [0, 0, 1, 2, 2, 2, 2, 2, 2, 0, 1, 2]
    batch = encode("tagging", tokenizer, [Example(0, text, label=tags), Example(1, "他", label=[1])], 16)
    assert tokens(tokenizer, batch["input_ids"][0].tolist()) == "[CLS] 我 爱 ip ##hone ##s 北 京 [SEP]"
    assert batch["labels"].tolist() == [
        [IGNORE_INDEX, 0, 0, 1, IGNORE_INDEX, IGNORE_INDEX, 1, 2, IGNORE_INDEX],
        [IGNORE_INDEX, 1, IGNORE_INDEX] + [IGNORE_INDEX] * 6,
    ]
    cut = encode("tagging", tokenizer, [Example(0, text, label=tags)], 4)
    assert cut["labels"].tolist() == [[IGNORE_INDEX, 0, 0, IGNORE_INDEX]]
    with pytest.raises(DataError, match=r"example 7: 1 tags for 2 characters; give one tag per character"):
        encode("tagging", tokenizer, [Example(7, "我爱", label=[0])], 8)


def test_length_check_refuses_more_positions_than_the_model_has_and_counts_cuts(tokenizer):
    examples = [Example(0, "我爱北京天安门", pair="他"), Example(1, "我", pair="他")]
    assert check_lengths("pair", tokenizer, examples, 8, 512) == {"examples": 2, "truncated": 1, "longest": 11}
    assert check_lengths("pair", tokenizer, examples, 16, None)["truncated"] == 0
    with pytest.raises(ConfigError, match=r"^max_length: 1024 tokens is more than the model's 512 positions"):
        check_lengths("pair", tokenizer, examples, 1024, 512)
    with pytest.raises(ConfigError, match=r"^kind: 'ner' is not a task kind"):
        check_lengths("ner", tokenizer, examples, 8, 512)
    mc = [Example(0, "", choices=["甲乙画蛇添足", "甲乙雪中送炭"])]
    assert check_lengths("multiple_choice", tokenizer, mc, 6, 512) == {"examples": 1, "truncated": 1, "longest": 8}


# --- real data ----------------------------------------------------------------------------------------------------

# task -> (kind, classes, train_few_all examples, dev_few_all examples), measured on the shared FewCLUE files
REAL = {
    "eprstmt": ("classification", 2, 160, 160),
    "tnews": ("classification", 15, 1185, 1098),
    "iflytek": ("classification", 119, 3024, 1373),
    "csldcp": ("classification", 67, 2036, 2068),
    "cluewsc": ("classification", 2, 160, 159),
    "bustm": ("pair", 2, 160, 160),
    "ocnli": ("pair", 3, 160, 160),
    "csl": ("pair", 2, 160, 160),
    "chid": ("multiple_choice", 0, 202, 202),
}


@pytest.mark.parametrize("task", sorted(REAL))
def test_every_shared_fewclue_task_loads(task):
    shared_file(f"fewclue/{task}/dev_few_all.json")
    data = load_task(DataSource(task, "shared:fewclue"), "train_few_all", "dev_few_all")
    assert (data.kind, len(data.labels), len(data.train), len(data.eval)) == REAL[task]
    assert data.skipped == {"train_few_all": 0, "dev_few_all": 0}
    for e in data.train + data.eval:
        if data.kind == "multiple_choice":
            assert len(e.choices) == 7 and 0 <= e.label < 7 and all("#idiom#" not in c for c in e.choices)
        else:
            assert 0 <= e.label < len(data.labels) and e.text and (e.pair is not None) == (data.kind == "pair")


def test_shared_cluewsc_texts_carry_both_markers():
    shared_file("fewclue/cluewsc/dev_few_all.json")
    data = load_task(DataSource("cluewsc", "shared:fewclue"), "train_few_all", "dev_few_all")
    assert all(e.text.count("（这是实体）") == 1 and e.text.count("（这是代词）") == 1 for e in data.eval)
    assert [e.label for e in data.eval].count(0) + [e.label for e in data.eval].count(1) == 159
