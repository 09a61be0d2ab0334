"""Zero-shot and fine-tuning on what users actually pass: shared output folders, bad checkpoints, bad splits."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pandas as pd
import pytest

from obert_lib import evaluation
from obert_lib.cli import main
from obert_lib.config import ConfigError, DataError
from obert_lib.evaluation import load_split
from obert_lib.paths import sample_path
from obert_lib.results import append_result

pytestmark = pytest.mark.bad_input

CHECKPOINT_KEY = {"zeroshot": "checkpoint", "finetune": "model.checkpoint"}


def one_line_error(capsys, argv: list[str], command: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"obert {command}: error: ")
    return line


@pytest.fixture
def checkpoint_copy(tiny_checkpoint, tmp_path) -> Path:
    """A private copy of the tiny pretraining checkpoint, for a test to damage."""
    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint.checkpoints[-1], copy, ignore=shutil.ignore_patterns("deepspeed"))
    return copy


def edit_config(ckpt: Path, **changes) -> None:
    data = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
    data.update(changes)
    (ckpt / "config.json").write_text(json.dumps(data), encoding="utf-8")


# --- finding 4: zero-shot runs sharing an output folder -------------------------------------------------------


def test_zero_shot_runs_sharing_a_folder_keep_every_task_or_are_refused(tiny_checkpoint, tmp_path):
    """Runs of one checkpoint and split add their tasks to one table; another split never overwrites it silently."""
    ckpt = str(tiny_checkpoint.checkpoints[-1])
    for task in ("eprstmt", "bustm"):
        result = evaluation.run({"checkpoint": ckpt, "tasks": task, "output_dir": str(tmp_path)}, progress=False)
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert saved == result.metrics and list(saved["tasks"]) == ["eprstmt", "bustm"]
    for task in ("eprstmt", "bustm"):
        predictions = pd.read_csv(tmp_path / task / "predictions.csv")
        assert len(predictions) == len(load_split(task, "sample:fewclue", "dev_0")) == saved["tasks"][task]["n"]
        low, high = saved["tasks"][task]["ci95"]
        assert low <= saved["tasks"][task]["accuracy"] <= high and high - low < 60  # 16 rows: wide but bounded
    with pytest.raises(ConfigError, match="another split"):
        evaluation.run({"checkpoint": ckpt, "tasks": "eprstmt", "split": "train_0", "output_dir": str(tmp_path)})
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8")) == saved
    table = pd.read_csv(tmp_path / "results.csv", dtype=str)
    assert len(table) == 2 and list(table["config.split"]) == ["dev_0", "dev_0"]


def _append_rows(table: str, worker: int, n: int) -> None:
    for i in range(n):
        append_result(table, "zeroshot/test", worker, "hash", {"worker": worker, "i": i}, {"accuracy": 0.5})


def test_concurrent_appends_to_one_results_table_keep_every_row(tmp_path):
    table = str(tmp_path / "results.csv")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_rows, args=(table, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    rows = pd.read_csv(table)
    assert len(rows) == 60
    assert sorted(zip(rows["config.worker"], rows["config.i"])) == [(w, i) for w in range(4) for i in range(15)]


# --- checkpoints that cannot be used: one line naming them, before any work -----------------------------------


@pytest.mark.parametrize("command", ["zeroshot", "finetune"])
def test_broken_config_json_names_file_line_and_column(capsys, checkpoint_copy, tmp_path, command):
    text = (checkpoint_copy / "config.json").read_text(encoding="utf-8")
    (checkpoint_copy / "config.json").write_text(text[: len(text) // 2], encoding="utf-8")
    line = one_line_error(
        capsys,
        [command, "--set", f"{CHECKPOINT_KEY[command]}={checkpoint_copy}", "--set", f"output_dir={tmp_path / 'out'}"],
        command,
    )
    assert f"{checkpoint_copy}/config.json:" in line and "broken JSON" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["zeroshot", "finetune"])
def test_vocabulary_smaller_than_the_tokenizer_is_refused(capsys, checkpoint_copy, tmp_path, command):
    edit_config(checkpoint_copy, vocab_size=100)
    line = one_line_error(
        capsys,
        [command, "--set", f"{CHECKPOINT_KEY[command]}={checkpoint_copy}", "--set", f"output_dir={tmp_path / 'out'}"],
        command,
    )
    assert "vocab_size is 100" in line and "the tokenizer has" in line
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_without_a_masked_lm_head_is_refused_for_zero_shot(capsys, checkpoint_copy, tmp_path):
    from obert_lib.model import OBertForSequenceClassification

    classifier = tmp_path / "classifier"
    OBertForSequenceClassification.from_pretrained(checkpoint_copy, num_labels=2).save_pretrained(classifier)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(checkpoint_copy / name, classifier / name)
    line = one_line_error(
        capsys, ["zeroshot", "--set", f"checkpoint={classifier}", "--set", f"output_dir={tmp_path / 'out'}"], "zeroshot"
    )
    assert "OBertForSequenceClassification" in line and "masked-LM head" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "damage,needle",
    [
        ("model_type", "model_type 'gpt2'"),
        ("weights", "holds no weights"),
        ("tokenizer", "holds no tokenizer"),
        ("file", "is a file"),
    ],
)
def test_other_unusable_checkpoints_are_one_line(capsys, checkpoint_copy, tmp_path, damage, needle):
    target = checkpoint_copy
    if damage == "model_type":
        edit_config(checkpoint_copy, model_type="gpt2")
    elif damage == "weights":
        (checkpoint_copy / "model.safetensors").unlink()
    elif damage == "tokenizer":
        (checkpoint_copy / "tokenizer.json").unlink()
    else:
        target = checkpoint_copy / "model.safetensors"
    line = one_line_error(
        capsys, ["zeroshot", "--set", f"checkpoint={target}", "--set", f"output_dir={tmp_path / 'out'}"], "zeroshot"
    )
    assert needle in line


# --- FewCLUE split files --------------------------------------------------------------------------------------


def _task_dir(tmp_path: Path, lines: list[str], task: str = "eprstmt", split: str = "dev_0", prefix: str = "") -> Path:
    folder = tmp_path / "fewclue" / task
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.json").write_text(prefix + "\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "fewclue"


def test_a_byte_order_mark_does_not_cost_the_first_row(tmp_path):
    lines = (sample_path("fewclue", "eprstmt", "dev_0.json")).read_text(encoding="utf-8").splitlines()
    data_dir = _task_dir(tmp_path, lines, prefix="\ufeff")
    rows = load_split("eprstmt", data_dir, "dev_0")
    assert rows == [json.loads(line) for line in lines]


def test_rows_are_split_on_newline_only(tmp_path):
    row = {"id": 1, "sentence": "第一行\u2028还是第一行", "label": "Positive"}
    data_dir = _task_dir(tmp_path, [json.dumps(row, ensure_ascii=False)])
    assert load_split("eprstmt", data_dir, "dev_0") == [row]


@pytest.mark.parametrize(
    "lines,needle",
    [
        (['{"id": 1, "sentence": "好", "label": "Positive"}', '{"id": 2, "sentence": '], ":2: not a JSON line"),
        (["[1, 2]"], ":1: a JSON list"),
        (
            ['{"id": 1, "text": "好", "label": "Positive"}'],
            ":1: missing or mistyped field(s) ['sentence']; the row has",
        ),
        (['{"id": 1, "sentence": "好", "label": "positive"}'], ":1: label 'positive' is not one of"),
        ([""], "holds no rows"),
    ],
)
def test_bad_split_rows_name_file_and_line(tmp_path, lines, needle):
    data_dir = _task_dir(tmp_path, lines)
    with pytest.raises(DataError) as exc:
        load_split("eprstmt", data_dir, "dev_0")
    assert f"{data_dir / 'eprstmt' / 'dev_0.json'}" in str(exc.value) and needle in str(exc.value)


def test_zero_shot_on_a_partly_labelled_split_is_refused_not_scored(capsys, tiny_checkpoint, tmp_path):
    lines = sample_path("fewclue", "eprstmt", "dev_0.json").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    del row["label"]
    data_dir = _task_dir(tmp_path, [*lines, json.dumps(row, ensure_ascii=False)])
    argv = ["zeroshot", "--checkpoint", str(tiny_checkpoint.checkpoints[-1]), "--data-dir", str(data_dir)]
    line = one_line_error(capsys, [*argv, "--tasks", "eprstmt", "--output", str(tmp_path / "out")], "zeroshot")
    assert "1 of 17 rows have no label" in line and "dev_0.json" in line
    assert not (tmp_path / "out").exists()
