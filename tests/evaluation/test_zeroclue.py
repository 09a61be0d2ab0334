"""ZeroCLUE protocol: exact inputs per task, exact predictions with a hand-set stub model, the two map fixes."""

from __future__ import annotations

import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from obert_lib import evaluation
from obert_lib.config import ConfigError, DataError
from obert_lib.corpus.tokenizer import SPECIAL_TOKENS, load_vocab_tokenizer
from obert_lib.evaluation import PUBLISHED, ClozeBuilder, label_words, task_fields
from obert_lib.evaluation.label_maps import read_assigned_dict
from obert_lib.evaluation.leaderboard import submission_lines
from obert_lib.evaluation.scoring import calibrate, word_ids
from obert_lib.evaluation.task_scoring import evaluate, prepare
from obert_lib.evaluation.templates import Template, published
from obert_lib.paths import sample_path
from tests.conftest import shared_file

CHARS = (
    "满意很不好差下面报导一则新闻科技娱乐做为一款应用，办公银行这篇论文阐述了材料教育研究"
    "？,是的并且不是他她去了和意思相同用概括能可以关键词摘要指代关系正确错误吗。（这实体代）"
    "画蛇添足雪中送炭一帆风顺马到成功我想送你给他甲乙丙丁戊己庚辛句子的说次"
    "故事文化娱乐体育财经房产汽车教育科技军事旅游国际股票农业电竞"
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A real BERT WordPiece tokenizer over a hand-written vocabulary: token id = line number."""
    vocab = list(SPECIAL_TOKENS) + sorted(set(CHARS))
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tk = load_vocab_tokenizer(path)
    tk.vocab_list = vocab
    return tk


def tokens(tk, ids):
    return [tk.vocab_list[i] for i in ids]


class CopyModel(torch.nn.Module):
    """Stub masked LM with hand-set logits: at every position, logit 10 for each token that occurs in the row's
    input (outside the special tokens), 0 elsewhere. A label word whose characters occur in the text wins."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the stub a device

    def forward(self, input_ids, attention_mask):
        present = torch.zeros(input_ids.shape[0], self.vocab_size)
        present.scatter_(1, input_ids, 1.0)
        present[:, : len(SPECIAL_TOKENS)] = 0
        logits = 10 * present[:, None, :].expand(-1, input_ids.shape[1], -1)
        return SimpleNamespace(logits=logits)


# --- inputs: template, truncation, slot positions, per task -----------------------------------------------------

ROWS = {
    "eprstmt": ({"id": 1, "sentence": "很好"}, "[CLS] [MASK] 满 意 。 很 好 [SEP]"),
    "tnews": ({"id": "1", "sentence": "新闻"}, "[CLS] 下 面 报 导 一 则 [MASK] [MASK] 新 闻 。 新 闻 [SEP]"),
    "iflytek": ({"id": 1, "sentence": "办公"}, "[CLS] 做 为 一 款 [MASK] [MASK] 应 用 ， 办 公 [SEP]"),
    "csldcp": ({"id": 1, "content": "研究"}, "[CLS] 这 篇 [MASK] [MASK] 论 文 阐 述 了 研 究 [SEP]"),
    "ocnli": (
        {"id": 1, "sentence1": "他去了", "sentence2": "她去了"},
        "[CLS] 他 去 了 ？ [MASK] [MASK] , 她 去 了 [SEP]",
    ),
    "bustm": ({"id": 1, "sentence1": "甲", "sentence2": "乙"}, "[CLS] 甲 和 乙 意 思 [MASK] 同 [SEP]"),
    "chid": (
        {"id": 1, "content": "我想 #idiom# 给他", "candidates": ["雪中送炭", "画蛇添足"]},
        "[CLS] 我 想 [MASK] [MASK] [MASK] [MASK] 给 他 [SEP]",
    ),
    "csl": ({"id": 1, "abst": "摘要", "keyword": ["甲", "乙"]}, "[CLS] [MASK] [MASK] 用 甲 ， 乙 概 括 摘 要 [SEP]"),
}


@pytest.mark.parametrize("task", sorted(ROWS))
def test_published_template_builds_exact_ids_and_slots(tokenizer, task):
    row, expected = ROWS[task]
    ids, slots, cut = ClozeBuilder(tokenizer, PUBLISHED[task], 128).build(task_fields(task, row))
    assert " ".join(tokens(tokenizer, ids)) == expected and not cut
    assert slots == [i for i, t in enumerate(expected.split()) if t == "[MASK]"]


def test_cluewsc_markers_follow_each_span_inserted_right_to_left(tokenizer):
    text = "他说她去了"
    row = {
        "idx": 0,
        "text": text,
        "target": {"span1_index": 2, "span1_text": "她", "span2_index": 0, "span2_text": "他"},
    }
    assert task_fields("cluewsc", row)["text"] == "他（这是代词）说她（这是实体）去了"  # span2 before span1 here
    row["target"] = {"span1_index": 0, "span1_text": "他说", "span2_index": 2, "span2_text": "她"}
    assert task_fields("cluewsc", row)["text"] == "他说（这是实体）她（这是代词）去了"
    ids, slots, _ = ClozeBuilder(tokenizer, PUBLISHED["cluewsc"], 128).build(task_fields("cluewsc", row))
    template = "[CLS] 下 面 句 子 的 指 代 关 系 正 确 吗 ？ [MASK] [MASK] 。"
    assert " ".join(tokens(tokenizer, ids)) == template + " 他 说 （ 这 是 实 体 ） 她 （ 这 是 代 词 ） 去 了 [SEP]"
    assert slots == [14, 15]


def test_truncation_cuts_content_tail_and_keeps_template_and_slots(tokenizer):
    builder = ClozeBuilder(tokenizer, PUBLISHED["eprstmt"], 10)  # [CLS] [M] 满 意 。 + 4 content + [SEP]
    ids, slots, cut = builder.build({"sentence": "甲乙丙丁戊己"})
    assert " ".join(tokens(tokenizer, ids)) == "[CLS] [MASK] 满 意 。 甲 乙 丙 丁 [SEP]" and slots == [1] and cut
    builder = ClozeBuilder(tokenizer, PUBLISHED["bustm"], 11)  # slots at the end survive; longest field cut first
    ids, slots, _ = builder.build({"sentence1": "甲乙丙丁戊", "sentence2": "己庚"})
    assert " ".join(tokens(tokenizer, ids)) == "[CLS] 甲 乙 和 己 庚 意 思 [MASK] 同 [SEP]" and slots == [8]


def test_chid_cuts_the_text_left_of_the_slots_from_its_head(tokenizer):
    builder = ClozeBuilder(tokenizer, PUBLISHED["chid"], 12)  # 2 specials + 4 slots: 6 content tokens
    row = {"id": 1, "content": "甲乙丙丁戊己#idiom#庚辛", "candidates": ["雪中送炭", "画蛇添足"]}
    ids, slots, cut = builder.build(task_fields("chid", row))
    assert " ".join(tokens(tokenizer, ids)) == "[CLS] 丙 丁 戊 己 [MASK] [MASK] [MASK] [MASK] 庚 辛 [SEP]"
    assert slots == [5, 6, 7, 8] and cut


def test_a_template_that_cannot_fit_and_a_mask_inside_content(tokenizer):
    with pytest.raises(ValueError, match="needs 13 tokens without any content, more than max_length 12"):
        ClozeBuilder(tokenizer, PUBLISHED["tnews"], 12)
    ids, slots, _ = ClozeBuilder(tokenizer, PUBLISHED["eprstmt"], 32).build({"sentence": "好[MASK]"})
    assert slots == [1] and tokens(tokenizer, ids)[-2] == "[UNK]"  # content never adds a slot


# --- predictions with a hand-set stub model ----------------------------------------------------------------------


def _predict(tokenizer, task, rows, task_dir, templates=None, calibrated=False):
    templates = templates or [published(task, task_dir)]
    prepared = prepare(task, rows, templates, tokenizer, 128, task_dir.parent, "dev")
    return evaluate(CopyModel(len(tokenizer.vocab_list)), tokenizer, prepared, 4, calibrated, 0, False)


@pytest.fixture
def data_dir(tmp_path):
    for task in ("eprstmt", "csldcp", "tnews", "iflytek", "ocnli", "bustm", "chid", "csl", "cluewsc"):
        (tmp_path / task).mkdir()
    (tmp_path / "iflytek" / "label_id2des_desc2short.py").write_text(
        "iflytek_labels={'办公':113,'银行':99}\nlabel_des2tag={'办公':'办公','银行':'银行'}\n", encoding="utf-8"
    )
    (tmp_path / "csldcp" / "labelDesc2label.py").write_text(
        "label_des2tag={'材料科学与工程':'材料','教育学':'教育'}\n", encoding="utf-8"
    )
    return tmp_path


WSC_TARGET = {"span1_index": 0, "span1_text": "甲", "span2_index": 1, "span2_text": "乙"}
STUB_CASES = [
    (
        "eprstmt",
        [dict(sentence="很好", label="Positive"), dict(sentence="不", label="Positive")],
        ["Positive", "Negative"],
    ),
    ("tnews", [dict(sentence="科技", label=109), dict(sentence="娱乐", label=109)], ["109", "102"]),
    ("iflytek", [dict(sentence="银行", label=99), dict(sentence="办公", label=113)], ["99", "113"]),
    ("csldcp", [dict(content="教育研究", label="教育学")], ["教育学"]),
    (
        "ocnli",
        [
            dict(sentence1="他", sentence2="是的", label="entailment"),
            dict(sentence1="他", sentence2="不是", label="neutral"),
            dict(sentence1="他", sentence2="她", label="-"),
        ],
        ["entailment", "contradiction"],
    ),
    ("bustm", [dict(sentence1="甲", sentence2="相同", label="1")], ["1"]),
    ("chid", [dict(content="画蛇#idiom#", candidates=["雪中送炭", "画蛇添足"], answer=1)], [1]),
    ("csl", [dict(abst="可以", keyword=["甲"], label="1")], ["1"]),
    ("cluewsc", [dict(text="甲乙", label="true", target=WSC_TARGET)], ["true"]),
]


@pytest.mark.parametrize("task,rows,expected", STUB_CASES)
def test_stub_model_predicts_the_label_whose_word_occurs_in_the_text(tokenizer, data_dir, task, rows, expected):
    rows = [{"idx" if task == "cluewsc" else "id": i, **row} for i, row in enumerate(rows)]
    out = _predict(tokenizer, task, rows, data_dir / task)
    assert list(out.predictions["pred"]) == expected
    assert list(out.predictions["id"]) == [r.get("id", r.get("idx")) for r in rows if r.get("label") != "-"]
    assert out.metrics["n"] + out.metrics["skipped"] == len(rows)
    gold = [str(r.get("label", r.get("answer"))) for r in rows if r.get("label") != "-"]
    assert out.metrics["accuracy"] == pytest.approx(100 * np.mean([str(p) == g for p, g in zip(expected, gold)]))


def test_ocnli_rows_outside_the_three_labels_are_skipped_and_counted(tokenizer, data_dir):
    rows = [
        {"id": 1, "sentence1": "他", "sentence2": "她", "label": "-"},
        {"id": 2, "sentence1": "他", "sentence2": "她", "label": "neutral"},
    ]
    out = _predict(tokenizer, "ocnli", rows, data_dir / "ocnli")
    assert out.metrics["skipped"] == 1 and out.metrics["n"] == 1 and list(out.predictions["id"]) == [2]


def test_chid_scores_every_candidate_over_the_four_slots(tokenizer, data_dir):
    rows = [
        {"id": 7, "content": "一帆 #idiom#", "candidates": ["马到成功", "一帆风顺", "雪中送炭"], "answer": 1},
        {"id": 8, "content": "马到#idiom#，雪中", "candidates": ["马到成功", "一帆风顺", "雪中送炭"], "answer": 0},
    ]
    out = _predict(tokenizer, "chid", rows, data_dir / "chid")
    # the copy model rewards characters present: 一帆 (2 of 一帆风顺) and 马到 ties 雪中 (2 each): the first wins
    assert list(out.predictions["pred"]) == [1, 0]
    logp = out.scores[[f"logp_{j}" for j in range(3)]].to_numpy()
    assert logp[0, 1] > logp[0, 0] == pytest.approx(logp[0, 2])
    assert submission_lines("chid", out.predictions) == '{"id": 7, "answer": 1}\n{"id": 8, "answer": 0}\n'


def test_contextual_calibration_divides_by_the_content_free_probabilities():
    probs = np.array([[0.7, 0.3], [0.6, 0.4]])
    got = calibrate(probs, np.array([0.8, 0.2]))
    assert got.argmax(1).tolist() == [1, 1]  # 0.7/0.8 < 0.3/0.2 and 0.6/0.8 < 0.4/0.2
    assert got[0] == pytest.approx(np.array([0.875, 1.5]) / 2.375)


def test_calibration_and_ensemble_are_reported_beside_the_published_template(tokenizer, data_dir):
    rows = [{"id": 1, "sentence": "很好", "label": "Positive"}, {"id": 2, "sentence": "很差", "label": "Negative"}]
    alt = Template("alt", "这次很[M]。{sentence}", {"Negative": "差", "Positive": "好"})
    out = _predict(tokenizer, "eprstmt", rows, data_dir / "eprstmt", [published("eprstmt", ""), alt], True)
    assert out.metrics["templates"] == {"published": 50.0, "alt": 100.0}
    assert set(out.metrics["calibrated"]) == {"accuracy", "ci95"} and "accuracy" in out.metrics["ensemble"]
    assert {"pred_calibrated", "pred_ensemble"} <= set(out.scores)


# --- label maps: the two fixes, read as data -----------------------------------------------------------------------


def test_cluewsc_words_are_not_inverted():
    assert label_words("cluewsc", "") == {"true": "正确", "false": "错误"}


def test_shared_iflytek_and_csldcp_maps_give_every_class_its_own_word():
    ifly = label_words("iflytek", shared_file("fewclue/iflytek"))
    assert len(ifly) == 119 == len(set(ifly.values()))
    assert ifly["21"] == "养成" and ifly["116"] == "经营"  # 经营养成 and 经营: one word each since the fix
    csldcp = label_words("csldcp", shared_file("fewclue/csldcp"))
    assert len(csldcp) == 67 == len(set(csldcp.values()))
    assert (csldcp["理论经济学"], csldcp["应用经济学"]) == ("理经", "应经")
    assert all(len(w) == 2 for w in [*ifly.values(), *csldcp.values()])


def test_label_files_are_read_without_running_them(tmp_path):
    path = tmp_path / "labelDesc2label.py"
    path.write_text("raise SystemExit('ran')\nlabel_des2tag={'a':'甲','b':'乙'}\nprint(1/0)\n", encoding="utf-8")
    assert read_assigned_dict(path, "label_des2tag") == {"a": "甲", "b": "乙"}
    path.write_text("label_des2tag={'a':'甲','b':'甲'}\n", encoding="utf-8")
    with pytest.raises(DataError, match="classes 'a' and 'b' share the word '甲'"):
        label_words("csldcp", tmp_path)


def test_label_words_must_fill_the_slots_and_be_in_the_vocabulary(tokenizer):
    with pytest.raises(ConfigError, match="label word '不' of csl .* 1 tokens but the template has 2"):
        word_ids(tokenizer, {"0": "不", "1": "可以"}, 2, "csl")
    with pytest.raises(ConfigError, match="label word '赞' of eprstmt .* not in the checkpoint's vocabulary"):
        word_ids(tokenizer, {"Negative": "不", "Positive": "赞"}, 1, "eprstmt")


def test_anchor_scores_are_the_plain_mean_of_the_nine_tasks():
    table = evaluation.anchor_table()
    means = table[list(evaluation.TASK_ORDER)].mean(axis=1)
    assert means["RoBERTa-wwm-ext zero-shot"].round(2) == 44.61  # chid included; without it 42.99
    assert ((means - table["score"]).abs() <= 0.05).all()  # the task accuracies are published to one decimal


# --- end to end ----------------------------------------------------------------------------------------------------


def test_all_nine_sample_tasks_end_to_end_with_the_interface_layout(tiny_checkpoint, tmp_path):
    out = tmp_path / "zs"
    r = evaluation.run({"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "output_dir": str(out)}, progress=False)
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved == r.metrics and list(saved["tasks"]) == list(evaluation.TASK_ORDER) and saved["complete"]
    for task, m in saved["tasks"].items():
        rows = evaluation.load_split(task, "sample:fewclue", "dev_0")
        frame = pd.read_csv(out / task / "predictions.csv", dtype=str, keep_default_na=False)
        assert list(frame.columns) == ["id", "pred"] and len(frame) == m["n"] == len(rows) - m["skipped"]
        assert 0 <= m["ci95"][0] <= m["accuracy"] <= m["ci95"][1] <= 100
    assert saved["score"] == pytest.approx(np.mean([m["accuracy"] for m in saved["tasks"].values()]), abs=1e-3)
    assert saved["tasks"]["ocnli"]["skipped"] == 1


def test_an_unlabelled_split_writes_predictions_and_the_leaderboard_zip(tiny_checkpoint, tmp_path):
    r = evaluation.run(
        {"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "output_dir": str(tmp_path), "split": "test"},
        progress=False,
    )
    assert r.metrics["score"] is None and all(m["accuracy"] is None for m in r.metrics["tasks"].values())
    with zipfile.ZipFile(tmp_path / "zeroclue_submission.zip") as zf:
        assert len(zf.namelist()) == 9
        tnews = [json.loads(line) for line in zf.read("tnewsf_predict.json").decode().splitlines()]
        wsc = [json.loads(line) for line in zf.read("cluewscf_predict.json").decode().splitlines()]
    test_rows = evaluation.load_split("tnews", "sample:fewclue", "test")
    assert [x["id"] for x in tnews] == [row["id"] for row in test_rows]  # tnews test ids are strings
    assert all(isinstance(x["label"], str) and x["label"] in evaluation.label_words("tnews", "") for x in tnews)
    assert {x["label"] for x in wsc} <= {"true", "false"}


def test_runs_sharing_an_output_merge_tasks_and_refuse_another_split(tiny_checkpoint, tmp_path):
    ckpt = str(tiny_checkpoint.checkpoints[-1])
    evaluation.run({"checkpoint": ckpt, "output_dir": str(tmp_path), "tasks": "eprstmt"}, progress=False)
    r = evaluation.run({"checkpoint": ckpt, "output_dir": str(tmp_path), "tasks": ["bustm"]}, progress=False)
    assert list(r.metrics["tasks"]) == ["eprstmt", "bustm"]
    with pytest.raises(ConfigError, match="holds a zero-shot run with another split"):
        evaluation.run({"checkpoint": ckpt, "output_dir": str(tmp_path), "tasks": "bustm", "split": "test"})
    r = evaluation.run(
        {"checkpoint": ckpt, "output_dir": str(tmp_path), "tasks": "csl", "split": "test", "overwrite": True},
        progress=False,
    )
    assert list(r.metrics["tasks"]) == ["csl"] and not (tmp_path / "eprstmt").exists()


def test_shared_dev_few_all_all_nine_tasks_with_a_small_random_bert(tmp_path):
    """Every row of the real splits scored once with a random BertForMaskedLM over the Chinese BERT vocabulary."""
    from transformers import BertConfig, BertForMaskedLM

    vocab = shared_file("vocab/bert-base-chinese-vocab.txt")
    data = shared_file("fewclue")
    torch.manual_seed(0)
    ckpt = tmp_path / "bert"
    config = BertConfig(
        vocab_size=21128, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    BertForMaskedLM(config).save_pretrained(ckpt)
    (ckpt / "vocab.txt").write_bytes(vocab.read_bytes())
    r = evaluation.run(
        {"checkpoint": str(ckpt), "data_dir": str(data), "split": "dev_few_all", "output_dir": str(tmp_path / "o"),
         "batch_size": 64},
        progress=False,
    )  # fmt: skip
    for task, m in r.metrics["tasks"].items():
        lines = (data / task / "dev_few_all.json").read_text(encoding="utf-8").split("\n")
        assert m["n"] + m["skipped"] == sum(1 for line in lines if line.strip()), task
        assert len(r.predictions[task]) == m["n"]
    assert r.metrics["tasks"]["chid"]["unknown_candidates"] > 0  # idioms with characters outside the vocabulary
    assert r.metrics["tasks"]["csldcp"]["truncated"] > 0


def test_sample_rows_every_template_field_is_filled():
    for task in evaluation.TASK_ORDER:
        for row in evaluation.load_split(task, sample_path("fewclue"), "dev_0"):
            fields = task_fields(task, row)
            assert all(isinstance(fields[f], str) for f in evaluation.templates.FIELDS[task])
