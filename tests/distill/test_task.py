"""Task-stage distillation end to end on CPU: a tiny fine-tuned teacher (eprstmt sample) into a 1-layer
student whose loss falls; truncation; refusals before work; the `obert distill` subcommand; a run killed with
SIGKILL and rerun matches an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from obert_lib import distill, finetuning
from obert_lib.cli import main
from obert_lib.config import ConfigError
from obert_lib.distill.task import truncate
from obert_lib.finetuning import model as ftmodel
from obert_lib.pretraining import resume_point
from tests.pretraining.kill import LAUNCHER_ENV, run_and_kill


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
    assert not (r.output_dir / "checkpoints").exists()  # a finished run keeps no resume points
    again = distill.run(config(teacher, tmp_path), progress=False)  # the same config: read back, not redone
    assert again.metrics == m and again.step_losses == r.step_losses
    assert again.history["eval_metric"].tolist() == r.history["eval_metric"].tolist()
    assert len(pd.read_csv(r.output_dir / "results.csv")) == 1
    with pytest.raises(ConfigError, match=r"output_dir: .* finished distillation run of another config \(kd.alpha"):
        distill.run(config(teacher, tmp_path, kd={"alpha": 0.3}), progress=False)


def cli_args(path) -> list[str]:
    return [sys.executable, "-m", "obert_lib.cli", "distill", "--config", str(path), "--runtime", "progress=false"]


def run_cli(path) -> None:
    """`obert distill` in a fresh process. The reference and the resumed run train there, as the killed run does:
    after an in-process ZeRO-3 run (test_pretrain.py) this process's CPU numerics differ from a fresh one's by
    ~1e-7 per step, which Adam grows to ~1e-4 in the weights over 64 steps."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    subprocess.run(cli_args(path), env=env, check=True, stdout=subprocess.DEVNULL)


@pytest.mark.parametrize(
    "engine", [{"engine": "torch"}, {"engine": "deepspeed", "zero_stage": 2}], ids=["torch", "zero2"]
)
def test_a_killed_run_rerun_with_its_config_resumes_to_the_uninterrupted_runs_step_losses(teacher, tmp_path, engine):
    """SIGKILL after a resume point (every 3 steps, mostly mid-epoch: 8 steps an epoch), then the same config:
    every step once with the uninterrupted run's losses, dev metrics and best student."""
    sets = {"train": {"epochs": 8, "batch_size": 2, "resume_every": 3, **engine}}
    (tmp_path / "reference.yaml").write_text(json.dumps(config(teacher, tmp_path / "reference", **sets)), "utf-8")
    run_cli(tmp_path / "reference.yaml")
    reference = distill.run(config(teacher, tmp_path / "reference", **sets), progress=False)  # read back
    assert reference.metrics["steps"] == 64 and not (reference.output_dir / "checkpoints").exists()

    cfg = config(teacher, tmp_path / "killed", **sets)
    out = tmp_path / "killed" / "distill"
    path = tmp_path / "killed.yaml"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    run_and_kill(cli_args(path), out, global_step=9)
    assert resume_point(out)["global_step"] >= 9 and not (out / "metrics.json").exists()

    run_cli(path)
    resumed = distill.run(cfg, progress=False)  # the finished run, read back
    steps = pd.read_csv(out / "steps.csv", float_precision="round_trip")
    assert list(steps["step"]) == list(range(1, 65)) and list(steps["epoch"]) == [
        e for e in range(1, 9) for _ in "12345678"
    ]
    diff = (steps["loss"] - pd.Series(reference.step_losses)).abs().max()
    assert diff < 1e-5, steps[["step", "loss"]].assign(reference=reference.step_losses)
    assert resumed.step_losses == steps["loss"].tolist()
    assert resumed.history["eval_metric"].tolist() == reference.history["eval_metric"].tolist()
    assert (resumed.history["train_loss"] - reference.history["train_loss"]).abs().max() < 1e-5
    assert resumed.metrics["best_epoch"] == reference.metrics["best_epoch"]
    a, b = ftmodel.load(out / "student")[0].state_dict(), ftmodel.load(reference.output_dir / "student")[0].state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


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
        ({"train": {"resume_every": -2}}, "train.resume_every: -2 steps is impossible; use N >= 1"),
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
