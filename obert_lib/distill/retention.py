"""The retention table: each distillation run's student against its teacher, accuracy, size and speed.

`retention_table(run_dirs)` reads the `metrics.json` (and `config.json`) that `distill.run` writes into each
run folder; `plot_retention(table)` draws teacher and student dev metric per task with the retention above.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..config import ConfigError

COLUMNS = [
    "task",
    "student",
    "metric",
    "teacher_metric",
    "student_metric",
    "retention_pct",
    "teacher_params",
    "student_params",
    "size_ratio",
    "speedup",
]


def _student_name(cfg: dict) -> str:
    """How the student was made, from the run's resolved config (distill.config.StudentConfig)."""
    s = cfg.get("student", {})
    if s.get("layers") is not None:
        k = s["layers"]
        return f"teacher cut to {k} layer{'s' if k != 1 else ''} ({s.get('pick', 'bottom')})"
    if s.get("preset") is not None:
        return f"fresh preset {s['preset']}"
    if s.get("checkpoint") is not None:
        return f"checkpoint {Path(s['checkpoint']).name}"
    return ""


def _row(run_dir: Path) -> dict:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ConfigError(
            f"run_dirs: {run_dir} holds no metrics.json; give the output_dir of a finished `obert distill`"
        )
    m = json.loads(path.read_text(encoding="utf-8"))
    cfg_path = run_dir / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    teacher, student = m["teacher_metric"], m["student_metric"]
    t_sec, s_sec = m.get("teacher_eval_seconds"), m.get("student_eval_seconds")
    return {
        "task": cfg.get("data", {}).get("task", run_dir.name),
        "student": _student_name(cfg),
        "metric": m.get("metric", "accuracy"),
        "teacher_metric": teacher,
        "student_metric": student,
        "retention_pct": 100 * student / teacher if teacher > 0 else float("nan"),
        "teacher_params": int(m["teacher_params"]),
        "student_params": int(m["student_params"]),
        "size_ratio": m["student_params"] / m["teacher_params"],
        "speedup": t_sec / s_sec if t_sec and s_sec else float("nan"),
    }


def retention_table(run_dirs) -> pd.DataFrame:
    """One row per distillation run folder, in the order given.

    Columns: task; student (how it was made); metric (accuracy, or span_f1 for tagging); teacher_metric and
    student_metric (dev, 0-1); retention_pct = 100 · student / teacher; teacher_params, student_params;
    size_ratio = student / teacher parameters; speedup = teacher / student inference seconds per dev example.
    """
    rows = [_row(Path(d)) for d in run_dirs]
    return pd.DataFrame(rows, columns=COLUMNS)


def plot_retention(table: pd.DataFrame):
    """Bars of teacher and student dev metric per task, each student bar labelled with its retention %."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(table))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(4.8, 1.6 * len(table) + 2), 4.0))
    ax.bar(x - width / 2, table["teacher_metric"], width, label="teacher", color="#4c72b0")
    bars = ax.bar(x + width / 2, table["student_metric"], width, label="student", color="#dd8452")
    for bar, pct in zip(bars, table["retention_pct"]):
        ax.annotate(f"{pct:.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    xytext=(0, 2), textcoords="offset points", fontsize=9)  # fmt: skip
    ax.set_xticks(x, table["task"])
    metric = table["metric"].iloc[0] if len(table) else "metric"
    ax.set_ylabel(f"dev {metric}")
    ax.set_ylim(0, 1.12)
    ax.set_title("Distillation: teacher against student (label: retention)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig
