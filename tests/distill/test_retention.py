"""The retention table from hand-written distillation run folders, with exact expected values; its figure."""

from __future__ import annotations

import json
import math

import pytest

from obert_lib import distill, reports
from obert_lib.config import ConfigError


def write_run(folder, metrics: dict, config: dict | None = None):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


RUNS = {
    "a": (
        {"teacher_metric": 0.75, "student_metric": 0.5625, "metric": "accuracy", "teacher_params": 1000,
         "student_params": 250, "teacher_eval_seconds": 0.0625, "student_eval_seconds": 0.015625, "retention": 0.75},
        {"data": {"task": "eprstmt"}, "student": {"layers": 1, "pick": "bottom", "checkpoint": None, "preset": None}},
    ),
    "b": (
        {"teacher_metric": 0.5, "student_metric": 0.5, "metric": "accuracy", "teacher_params": 4096,
         "student_params": 1024, "teacher_eval_seconds": 0.5, "student_eval_seconds": 0.25, "retention": 1.0},
        {"data": {"task": "bustm"}, "student": {"layers": None, "preset": "small"}},
    ),
}  # fmt: skip


def test_the_table_reads_each_run_into_one_row_with_exact_values(tmp_path):
    dirs = [write_run(tmp_path / name, *RUNS[name]) for name in ("a", "b")]
    table = distill.retention_table(dirs)
    assert list(table.columns) == distill.retention.COLUMNS
    assert table.to_dict("records") == [
        {"task": "eprstmt", "student": "teacher cut to 1 layer (bottom)", "metric": "accuracy",
         "teacher_metric": 0.75, "student_metric": 0.5625, "retention_pct": 75.0, "teacher_params": 1000,
         "student_params": 250, "size_ratio": 0.25, "speedup": 4.0},
        {"task": "bustm", "student": "fresh preset small", "metric": "accuracy", "teacher_metric": 0.5,
         "student_metric": 0.5, "retention_pct": 100.0, "teacher_params": 4096, "student_params": 1024,
         "size_ratio": 0.25, "speedup": 2.0},
    ]  # fmt: skip


def test_without_config_the_folder_names_the_task_and_a_zero_teacher_has_no_retention(tmp_path):
    metrics = {**RUNS["a"][0], "teacher_metric": 0.0, "student_metric": 0.0}
    del metrics["teacher_eval_seconds"]
    row = distill.retention_table([write_run(tmp_path / "tnews", metrics)]).iloc[0]
    assert row["task"] == "tnews" and row["student"] == "" and row["size_ratio"] == 0.25
    assert math.isnan(row["retention_pct"]) and math.isnan(row["speedup"])


def test_a_folder_without_metrics_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"run_dirs: .*nowhere holds no metrics.json"):
        distill.retention_table([tmp_path / "nowhere"])


def test_the_figure_is_saved(tmp_path):
    table = distill.retention_table([write_run(tmp_path / name, *RUNS[name]) for name in ("a", "b")])
    fig = distill.plot_retention(table)
    paths = reports.save_figure(fig, "09_retention", tmp_path / "reports")
    assert [p.name for p in paths] == ["09_retention.png", "09_retention.svg"] and all(p.stat().st_size for p in paths)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["75.0%", "100.0%"]
