"""Task-stage distillation end to end on CPU: a tiny fine-tuned teacher (eprstmt sample) into a 1-layer
student whose loss falls; truncation; refusals before work; the `obert distill` subcommand."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from obert_lib import distill, finetuning
from obert_lib.cli import main
from obert_lib.config import ConfigError
from obert_lib.distill.task import truncate
from obert_lib.finetuning import model as ftmodel


@pytest.fixture(scope="module")
def teacher(tiny_checkpoint, tmp_path_factory):
    """The tiny pretraining checkpoint fine-tuned on the eprstmt sample: its best/ folder (2 layers)."""
    out = tmp_path_factory.mktemp("teacher")
    cfg = {"model": {"checkpoint": str(tiny_checkpoint.checkpoints[-1])}, "data": {"task": "eprstmt"},
           "train": {"epochs": 2}, "output_dir": str(out)}  # fmt: skip
    return finetuning.run(cfg, progress=False).output_dir / "best"


def config(teacher, tmp_path, **sets) -> dict:
    cfg = {"teacher": {"checkpoint": str(teacher)}, "student": {"layers": 1}, "data": {"task": "eprstmt"},
           "train": {"epochs": 10}, "output_dir": str(tmp_path / "distill")}  # fmt: skip
    for key, value in sets.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


def test_a_truncated_student_learns_from_the_teacher_and_writes_a_results_row(teacher, tmp_path):
    r = distill.run(config(teacher, tmp_path), progress=False)
    m = r.metrics
    n_steps = 10 * -(-m["n_train"] // 8)
    assert m["steps"] == n_steps == len(r.step_losses) and list(r.history["epoch"]) == list(range(1, 11))
    # the student's loss falls: the last epoch's mean below the first's, the last three epochs' below the first three
    loss = r.history["train_loss"]
    assert loss.iloc[-1] < loss.iloc[0] and loss.iloc[-3:].mean() < loss.iloc[:3].mean()
    assert 0 <= m["student_metric"] <= 1 and 0 <= m["teacher_metric"] <= 1
    assert m["student_params"] < m["teacher_params"]
    student, info = ftmodel.load(r.output_dir / "student")
    assert len(student.encoder.encoder.layer) == 1 and info["epoch"] == m["best_epoch"]
    table = pd.read_csv(r.output_dir / "results.csv")
    assert list(table["stage"]) == ["distill/eprstmt"]
    assert table["metric.student_metric"].iloc[0] == m["student_metric"]
    assert json.loads((r.output_dir / "metrics.json").read_text(encoding="utf-8")) == m
    with pytest.raises(ConfigError, match="output_dir: .* finished distillation run"):
        distill.run(config(teacher, tmp_path), progress=False)


def test_truncation_keeps_the_bottom_or_the_uniformly_spaced_layers(teacher):
    model, _ = ftmodel.load(teacher)
    layers = model.encoder.encoder.layer
    for pick, kept in (("bottom", 0), ("uniform", 1)):  # 2 -> 1 layer: bottom keeps layer 1, uniform layer 2
        student = truncate(model, 1, pick)
        assert student.encoder.config.num_hidden_layers == 1 and len(model.encoder.encoder.layer) == 2
        a, b = student.encoder.encoder.layer[0].state_dict(), layers[kept].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert torch.equal(student.head.weight, model.head.weight)


@pytest.mark.parametrize(
    "sets, needle",
    [
        ({"kd": {"temprature": 2.0}}, "kd.temprature: unknown key"),
        ({"kd": {"alpha": 1.5}}, "kd.alpha"),
        ({"kd": {"temperature": 0.5}}, "kd.temperature"),
        ({"student": {"layers": 3}}, "student.layers: 3 is more than the teacher's 2 layers"),
        ({"student": {"checkpoint": "x"}}, "student.layers / checkpoint / preset: give exactly one"),
        ({"student": {"layers": None, "preset": "huge"}}, "student.preset: 'huge'"),
        ({"max_length": 4096}, "max_length: 4096 tokens is more than the model's"),
        ({"data": {"task": "bustm"}}, "teacher.checkpoint: .* fine-tuned for eprstmt"),
    ],
)
def test_impossible_settings_are_refused_naming_the_key(teacher, tmp_path, sets, needle):
    with pytest.raises(ConfigError, match=needle):
        distill.run(config(teacher, tmp_path, **sets), progress=False)
    assert not (tmp_path / "distill" / "config.json").exists()  # refused before any work


@pytest.mark.parametrize(
    "name, sets",
    [
        ("pretrained", {"student": {"layers": None, "checkpoint": "PRETRAINED"}}),
        ("preset", {"student": {"layers": None, "preset": "tiny"}, "kd": {"alpha": 1.0}, "train": {"epochs": 10}}),
        ("zero2", {"train": {"epochs": 2, "engine": "deepspeed", "zero_stage": 2}}),
    ],
)
def test_other_students_and_deepspeed_zero2_run(teacher, tiny_checkpoint, tmp_path, name, sets):
    if "checkpoint" in sets.get("student", {}):
        sets["student"]["checkpoint"] = str(tiny_checkpoint.checkpoints[-1])
    r = distill.run(config(teacher, tmp_path, **{"train": {"epochs": 2}, **sets}), progress=False)
    assert all(map(torch.isfinite, torch.tensor(r.step_losses))) and r.metrics["steps"] == len(r.step_losses)
    student, info = ftmodel.load(r.output_dir / "student")
    assert info["task"] == "eprstmt" and student.kind == "classification"
    if name == "preset":  # a fresh student, pure KD: it learns the teacher's soft labels, its KD loss falls by half
        assert r.history["train_kd"].iloc[-1] < r.history["train_kd"].iloc[0] / 2


def test_a_pretrained_checkpoint_is_not_a_teacher(tiny_checkpoint, tmp_path):
    cfg = config(tiny_checkpoint.checkpoints[-1], tmp_path)
    with pytest.raises(ConfigError, match="not a fine-tuned model"):
        distill.run(cfg, progress=False)


def test_the_cli_subcommand_runs_and_reports_errors_in_one_line(teacher, tmp_path, capsys):
    path = tmp_path / "distill.yaml"
    path.write_text(json.dumps(config(teacher, tmp_path, train={"epochs": 1})), encoding="utf-8")
    assert main(["distill", "--config", str(path), "--set", "kd.t_squared=false", "--runtime", "progress=false"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == -(-printed["n_train"] // 8)
    saved = json.loads((tmp_path / "distill" / "config.json").read_text(encoding="utf-8"))
    assert saved["kd"]["t_squared"] is False
    assert main(["distill", "--config", str(path), "--set", "student.layres=1"]) == 2
    assert "student.layres: unknown key" in capsys.readouterr().err


def test_the_example_config_loads():
    from obert_lib import config as cfgmod
    from obert_lib.paths import REPO_ROOT

    cfg = cfgmod.load(distill.DistillConfig, REPO_ROOT / "configs" / "distill" / "tnews.yaml")
    assert (cfg.student.layers, cfg.kd.t_squared, cfg.data.task) == (3, True, "tnews")
