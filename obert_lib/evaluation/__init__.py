"""Evaluation stage: FewCLUE task files and ZeroCLUE zero-shot scoring with the published PET protocol."""

from .anchors import ANCHORS, TASK_ORDER, anchor_table, with_anchors
from .cloze import PUBLISHED, ClozeBuilder, task_fields
from .comparison import compare_runs, plot_comparison, write_comparison
from .fewclue import TASKS, TaskSpec, load_split, task_spec
from .figures import confusion, plot_confusion, plot_zero_shot
from .label_maps import label_words, task_labels
from .templates import Template, load_templates
from .zeroclue import ZeroShotConfig, ZeroShotResult, load_run, run

__all__ = [
    "ANCHORS",
    "PUBLISHED",
    "TASKS",
    "TASK_ORDER",
    "ClozeBuilder",
    "TaskSpec",
    "Template",
    "ZeroShotConfig",
    "ZeroShotResult",
    "anchor_table",
    "compare_runs",
    "confusion",
    "label_words",
    "load_run",
    "load_split",
    "load_templates",
    "plot_comparison",
    "plot_confusion",
    "plot_zero_shot",
    "run",
    "task_fields",
    "task_labels",
    "task_spec",
    "with_anchors",
    "write_comparison",
]
