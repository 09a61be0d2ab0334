"""Experiment stage: pretraining variants of one base plan, each scored on ZeroCLUE and by a fine-tuning ablation,
compared with intervals and paired tests, from one YAML file (configs/experiments/*.yaml).

Start reading at runner.run; config.py says what the file holds, plans.py how each variant's plan is made,
steps.py what each level runs (and when it is skipped), report.py what the report holds.
"""

from .config import ExperimentConfig, ExperimentRuntime, load_experiment
from .figures import plot_loss_curves
from .plans import PretrainSpec, apply_budget, pretrain_specs, variant_plan
from .report import ExperimentReport, markdown_table, report
from .runner import ExperimentResult, PretrainingFailed, check, resolve, run

__all__ = [
    "ExperimentConfig",
    "ExperimentReport",
    "ExperimentResult",
    "ExperimentRuntime",
    "PretrainSpec",
    "PretrainingFailed",
    "apply_budget",
    "check",
    "load_experiment",
    "markdown_table",
    "plot_loss_curves",
    "pretrain_specs",
    "report",
    "resolve",
    "run",
    "variant_plan",
]
