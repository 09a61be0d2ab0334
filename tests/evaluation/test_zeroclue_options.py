"""ZeroCLUE options a researcher reaches for: the CLI interface, template files, paired comparison of checkpoints."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from obert_lib import evaluation
from obert_lib.cli import main
from obert_lib.config import ConfigError, DataError
from obert_lib.evaluation.templates import load_templates
from obert_lib.paths import sample_path

TASK_DIRS = {task: sample_path("fewclue", task) for task in evaluation.TASK_ORDER}


def test_the_cli_interface_writes_the_layout_and_prints_the_anchors(capsys, tiny_checkpoint, tmp_path):
    argv = ["zeroshot", "--checkpoint", str(tiny_checkpoint.checkpoints[-1]), "--data-dir", "sample:fewclue"]
    argv += ["--split", "dev_0", "--tasks", "eprstmt,cluewsc", "--output", str(tmp_path), "--runtime", "progress=false"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "RoBERTa-wwm-ext zero-shot" in printed and "this checkpoint (dev_0)" in printed
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["tasks"]) == {"eprstmt", "cluewsc"} and not metrics["complete"]
    assert set(metrics["tasks"]["eprstmt"]) >= {"accuracy", "n", "ci95"}
    wsc = pd.read_csv(tmp_path / "cluewsc" / "predictions.csv", dtype=str)
    rows = evaluation.load_split("cluewsc", "sample:fewclue", "dev_0")
    assert list(wsc["id"]) == [str(r["idx"]) for r in rows] and set(wsc["pred"]) <= {"true", "false"}


def test_the_shipped_alternative_templates_load_for_every_task():
    templates = load_templates("alternatives", list(evaluation.TASK_ORDER), TASK_DIRS)
    assert set(templates) == set(evaluation.TASK_ORDER) and all(len(t) >= 1 for t in templates.values())
    assert templates["eprstmt"][0].words == {"Negative": "失望", "Positive": "满意"}
    assert templates["tnews"][0].words == evaluation.label_words("tnews", "")  # words left out: the published ones


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "text,needle",
    [
        ("eprstmt:\n  - template: '[M]满意。{text}'\n", "names ['text']; eprstmt templates can use ['sentence']"),
        ("eprstmt:\n  - template: '满意。{sentence}'\n", "has no [M] slot"),
        ("eprstmt:\n  - template: '[M]。{sentence}'\n    label_words: {Positive: 好}\n", "missing ['Negative']"),
        ("chid:\n  - template: '{left}[M][M][M][M]{right}'\n    label_words: {0: 一}\n", "chid takes no label_words"),
        ("chid:\n  - template: '{left}[M][M]{right}'\n", "exactly 4 [M] slots"),
        ("cmnli:\n  - template: '[M]{sentence}'\n", "unknown task(s) ['cmnli']"),
        ("bustm:\n  - name: published\n    template: '{sentence1}[M]{sentence2}'\n", "name 'published' is used twice"),
        ("bustm:\n  - templat: '{sentence1}[M]{sentence2}'\n", "each entry needs `template:"),
    ],
)
def test_template_files_name_the_entry_and_the_fix(tmp_path, text, needle):
    path = tmp_path / "templates.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_templates(path, list(evaluation.TASK_ORDER), TASK_DIRS)
    assert needle in str(exc.value) and str(path) in str(exc.value)


def test_alternative_templates_are_scored_with_their_ensemble(tiny_checkpoint, tmp_path):
    r = evaluation.run(
        {"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "output_dir": str(tmp_path), "tasks": "eprstmt,chid",
         "templates": "alternatives", "calibrate": True},
        progress=False,
    )  # fmt: skip
    for task, name in (("eprstmt", "bought"), ("chid", "instruction")):
        m = r.metrics["tasks"][task]
        assert set(m["templates"]) == {"published", name} and m["templates"]["published"] == m["accuracy"]
        assert 0 <= m["ensemble"]["accuracy"] <= 100 and 0 <= m["calibrated"]["accuracy"] <= 100
        assert {"pred_ensemble", "pred_calibrated"} <= set(r.scores[task])
    assert r.metrics["score_calibrated"] == pytest.approx(
        (r.metrics["tasks"]["eprstmt"]["calibrated"]["accuracy"] + r.metrics["tasks"]["chid"]["calibrated"]["accuracy"])
        / 2,
        abs=1e-3,
    )


def test_two_checkpoints_on_the_same_rows_get_a_paired_comparison(tiny_checkpoint, tmp_path):
    first, last = (str(c) for c in tiny_checkpoint.checkpoints[:2])
    base = {"tasks": "eprstmt,bustm,ocnli"}
    evaluation.run({**base, "checkpoint": first, "output_dir": str(tmp_path / "a")}, progress=False)
    evaluation.run(
        {**base, "checkpoint": last, "output_dir": str(tmp_path / "b"), "compare_with": [str(tmp_path / "a")]},
        progress=False,
    )
    table = pd.read_csv(tmp_path / "b" / "comparison.csv")
    assert list(table["task"]) == ["eprstmt", "ocnli", "bustm", "score"]  # the leaderboard order
    assert table[["p_bootstrap"]].apply(lambda p: p.between(0, 1)).all().all()
    assert (table["n"].iloc[:3] == [16, 15, 16]).all()  # ocnli's "-" row is not compared


@pytest.mark.bad_input
def test_a_vocabulary_without_a_label_word_is_named_before_scoring(capsys, tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    from obert_lib.corpus.tokenizer import SPECIAL_TOKENS

    text = sample_path("fewclue", "eprstmt", "dev_0.json").read_text(encoding="utf-8")
    chars = sorted({c for c in text + "满意。" if not c.isspace()} - {"很"})
    ckpt = tmp_path / "bert"
    config = BertConfig(vocab_size=len(SPECIAL_TOKENS) + len(chars), hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=1, intermediate_size=8)  # fmt: skip
    BertForMaskedLM(config).save_pretrained(ckpt)
    (ckpt / "vocab.txt").write_text("\n".join([*SPECIAL_TOKENS, *chars]) + "\n", encoding="utf-8")
    argv = ["zeroshot", "--checkpoint", str(ckpt), "--tasks", "eprstmt", "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("obert zeroshot: error: label word '很' of eprstmt (label Positive)")
    assert not (tmp_path / "out").exists()


@pytest.mark.bad_input
def test_a_task_folder_without_its_label_file_is_named(capsys, tiny_checkpoint, tmp_path):
    folder = tmp_path / "iflytek"
    folder.mkdir()
    (folder / "dev_0.json").write_text('{"id": 1, "sentence": "办公", "label": 113}\n', encoding="utf-8")
    ckpt = str(tiny_checkpoint.checkpoints[-1])
    argv = ["zeroshot", "--checkpoint", ckpt, "--data-dir", str(tmp_path), "--tasks", "iflytek"]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{folder / 'label_id2des_desc2short.py'} does not exist" in err and "Traceback" not in err


def test_a_crash_keeps_the_tasks_already_scored_and_a_rerun_adds_the_rest(tiny_checkpoint, tmp_path, monkeypatch):
    from obert_lib.evaluation import zeroclue

    real = zeroclue.evaluate

    def crash_on_bustm(model, tokenizer, prepared, *args):
        if prepared.task == "bustm":
            raise KeyboardInterrupt
        return real(model, tokenizer, prepared, *args)

    cfg = {"checkpoint": str(tiny_checkpoint.checkpoints[-1]), "output_dir": str(tmp_path), "tasks": "eprstmt,bustm"}
    monkeypatch.setattr(zeroclue, "evaluate", crash_on_bustm)
    with pytest.raises(KeyboardInterrupt):
        evaluation.run(cfg, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert list(saved["tasks"]) == ["eprstmt"] and (tmp_path / "eprstmt" / "predictions.csv").is_file()
    monkeypatch.setattr(zeroclue, "evaluate", real)
    r = evaluation.run({**cfg, "tasks": "bustm"}, progress=False)
    assert (
        list(r.metrics["tasks"]) == ["eprstmt", "bustm"] and r.metrics["tasks"]["eprstmt"] == saved["tasks"]["eprstmt"]
    )


WSC = {"span1_index": 0, "span1_text": "甲", "span2_index": 1, "span2_text": "乙"}


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "task,row,needle",
    [
        ("chid", {"id": 1, "content": "#idiom#和#idiom#", "candidates": ["一二三四"] * 7}, "holds #idiom# 2 times"),
        (
            "chid",
            {"id": 1, "content": "#idiom#", "candidates": ["一二三四"] * 7, "answer": 7},
            "answer 7 is not an index",
        ),
        (
            "chid",
            {"id": 1, "content": "#idiom#", "candidates": "一二三四"},
            "missing or mistyped field(s) ['candidates']",
        ),
        (
            "cluewsc",
            {"idx": 1, "text": "甲乙", "target": {**WSC, "span2_index": 0}},
            "span2_text '乙' is not at span2_index 0",
        ),
        ("cluewsc", {"idx": 1, "text": "甲乙"}, "need a `target` object"),
        ("csl", {"id": 1, "abst": "摘要", "keyword": "甲，乙", "label": "1"}, "['keyword']"),
        ("ocnli", {"sentence1": "甲", "sentence2": "乙", "label": "neutral"}, "has no `id` (or `idx`)"),
        ("tnews", {"id": 1, "sentence": "甲", "label": 105}, "label 105 is not one of tnews's labels"),
    ],
)
def test_rows_the_protocol_cannot_read_name_file_line_and_field(tmp_path, task, row, needle):
    folder = tmp_path / task
    folder.mkdir()
    good = {"chid": {"id": 0, "content": "#idiom#", "candidates": ["一二三四"] * 7}}.get(task)
    lines = [json.dumps(r, ensure_ascii=False) for r in ([good] if good else []) + [row]]
    (folder / "dev_0.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        evaluation.load_split(task, tmp_path, "dev_0")
    assert f"{folder / 'dev_0.json'}:{len(lines)}:" in str(exc.value) and needle in str(exc.value)
