"""Experiment stage: pretraining variants of one base plan, each scored on ZeroCLUE and by a fine-tuning ablation,
compared with intervals and paired tests, from one YAML file (configs/experiments/*.yaml).

Start reading at runner.run; config.py says what the file holds, plans.py how each variant's plan is made,
steps.py what each level runs (and when it is skipped), reporting.py what the report holds. The names below load
on first use, so that `obert --help` (which registers experiment.cli) does not import torch.
"""

from importlib import import_module

from .config import ExperimentConfig, ExperimentRuntime, load_experiment

_LAZY = {
    "plot_loss_curves": "figures",
    "PretrainSpec": "plans",
    "apply_budget": "plans",
    "pretrain_specs": "plans",
    "plan_table": "plans",
    "variant_plan": "plans",
    "ExperimentReport": "reporting",
    "markdown_table": "reporting",
    "report": "reporting",
    "ExperimentResult": "runner",
    "PretrainingFailed": "runner",
    "check": "runner",
    "resolve": "runner",
    "run": "runner",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ExperimentConfig", "ExperimentRuntime", "load_experiment", *_LAZY]
