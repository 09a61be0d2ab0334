"""Evaluation stage: FewCLUE task loading and ZeroCLUE-style zero-shot cloze scoring."""

from .fewclue import TASKS, TaskSpec, load_split, task_spec
from .zeroclue import TEMPLATES, ZeroShotConfig, ZeroShotResult, build_cloze, plot_zero_shot, run, score

__all__ = [
    "TASKS",
    "TEMPLATES",
    "TaskSpec",
    "ZeroShotConfig",
    "ZeroShotResult",
    "build_cloze",
    "load_split",
    "plot_zero_shot",
    "run",
    "score",
    "task_spec",
]
