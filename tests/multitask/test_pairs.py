"""The pairs JSONL reader and the pair batch on hand-written input: exact outcomes, bad lines named."""

from __future__ import annotations

import re

import pytest
import torch

from obert_lib.config import DataError
from obert_lib.multitask.config import AuxTaskConfig
from obert_lib.multitask.pairs import Pair, pair_batch, read_pairs, tokenize_pairs, truncate
from obert_lib.paths import sample_path


class CharTokenizer:
    """One id per character (ord % 1000 + 10): enough to check layout; ids 1-3 are [CLS], [SEP], padding 0."""

    cls_token_id, sep_token_id, pad_token_id = 1, 2, 0

    def __call__(self, texts, add_special_tokens=False):
        assert add_special_tokens is False
        return {"input_ids": [[ord(c) % 1000 + 10 for c in t] for t in texts]}


def _write(tmp_path, text: str):
    path = tmp_path / "pairs.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_reader_returns_every_pair_in_order_with_class_ids(tmp_path):
    path = _write(
        tmp_path,
        "\ufeff"  # a BOM is accepted, blank lines skipped, other fields ignored
        '{"text_a": "北京天气", "text_b": "北京今日天气", "label": 1, "query_id": 7}\n'
        "\n"
        '{"text_a": "北京天气", "text_b": "北京烤鸭", "label": 0}\n',
    )
    task = AuxTaskConfig(name="click", path=str(path))
    assert read_pairs(path, task) == [Pair("北京天气", "北京今日天气", 1), Pair("北京天气", "北京烤鸭", 0)]

    named = AuxTaskConfig(name="click", path="x", classes=["exposure", "click"], text_a_key="q", label_key="y")
    path = _write(tmp_path, '{"q": "a", "text_b": "b", "y": "click"}\n{"q": "c", "text_b": "d", "y": "exposure"}\n')
    assert read_pairs(path, named) == [Pair("a", "b", 1), Pair("c", "d", 0)]

    regression = AuxTaskConfig(name="ctr", path="x", loss="regression")
    path = _write(
        tmp_path, '{"text_a": "a", "text_b": "b", "label": 0.25}\n{"text_a": "c", "text_b": "d", "label": 3}\n'
    )
    assert read_pairs(path, regression) == [Pair("a", "b", 0.25), Pair("c", "d", 3.0)]


def test_the_sample_click_log_reads():
    pairs = read_pairs("sample:click_pairs.jsonl", AuxTaskConfig(name="click", path="sample:click_pairs.jsonl"))
    assert len(pairs) == 48 and sum(p.label for p in pairs) == 24
    assert pairs[0] == Pair("北京天气", "北京今日天气预报：晴转多云", 1)
    assert sample_path("click_pairs.jsonl").is_file()


@pytest.mark.parametrize(
    ("line", "task", "message"),
    [
        ("not json", {}, "not a JSON line (Expecting value at column 1); each line must be one JSON object"),
        ('["a", "b", 1]', {}, "a JSON list, not an object with text_a, text_b and label"),
        (
            '{"text_a": "", "text_b": "b", "label": 1}',
            {},
            "'text_a' is ''; each line needs a non-empty string 'text_a'",
        ),
        ('{"text_a": "a", "label": 1}', {}, "'text_b' is None; each line needs a non-empty string 'text_b'"),
        ('{"text_a": "a", "text_b": "b"}', {}, "no 'label'; each line needs a label"),
        (
            '{"text_a": "a", "text_b": "b", "label": 2}',
            {},
            "label 2 is not an integer in 0..1; use those, or name the classes (classes: [...]) when labels are "
            "strings",
        ),
        (
            '{"text_a": "a", "text_b": "b", "label": true}',
            {},
            "label True is not an integer in 0..1; use those, or name the classes (classes: [...]) when labels are "
            "strings",
        ),
        (
            '{"text_a": "a", "text_b": "b", "label": "1"}',
            {"classes": ["exposure", "click"]},
            "label '1' is not one of the classes ['exposure', 'click']; fix the line or classes",
        ),
        (
            '{"text_a": "a", "text_b": "b", "label": "0.5"}',
            {"loss": "regression"},
            "label '0.5' is not a finite number; a regression task needs numbers",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_number(tmp_path, line, task, message):
    good = '"click"' if "classes" in task else "0"
    path = _write(tmp_path, f'{{"text_a": "ok", "text_b": "ok", "label": {good}}}\n' + line + "\n")
    with pytest.raises(DataError, match=f"^{re.escape(f'{path}:2: {message}')}$"):
        read_pairs(path, AuxTaskConfig(name="t", path=str(path), **task))


def test_an_empty_or_missing_file_is_refused(tmp_path):
    path = _write(tmp_path, "\n\n")
    with pytest.raises(DataError, match=f"^{re.escape(f'{path}: no pairs; give one JSON object per line')}$"):
        read_pairs(path, AuxTaskConfig(name="t", path=str(path)))
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(DataError, match="aux task t: pairs file .*missing.jsonl does not exist"):
        read_pairs(missing, AuxTaskConfig(name="t", path=str(missing)))


def test_truncation_cuts_the_longer_text_first():
    assert truncate(3, 2, 8) == (3, 2)  # fits
    assert truncate(10, 2, 8) == (6, 2)
    assert truncate(2, 10, 8) == (2, 6)
    assert truncate(10, 10, 8) == (4, 4)
    assert truncate(10, 10, 7) == (4, 3)


def test_pair_batch_layout_is_cls_a_sep_b_sep_with_token_types_and_padding():
    tok = CharTokenizer()
    ids = tokenize_pairs([Pair("ab", "c", 1), Pair("abcdef", "xyz", 0)], tok)
    a, b, c = (ord(ch) % 1000 + 10 for ch in "abc")
    assert ids[0] == ([a, b], [c])
    batch = pair_batch(ids, [1, 0], max_length=8, tokenizer=tok)
    x, y, z = (ord(ch) % 1000 + 10 for ch in "xyz")
    d = ord("d") % 1000 + 10
    assert batch["input_ids"].tolist() == [[1, a, b, 2, c, 2, 0, 0], [1, a, b, c, 2, x, y, 2]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8]
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    assert d not in batch["input_ids"][1].tolist()  # the longer text lost its tail
    regression = pair_batch(ids, [0.5, 2.0], max_length=8, tokenizer=tok, regression=True)
    assert regression["labels"].dtype == torch.float32 and regression["labels"].tolist() == [0.5, 2.0]
