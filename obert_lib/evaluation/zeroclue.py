"""ZeroCLUE: any Chinese masked-LM checkpoint scored zero-shot on the nine FewCLUE tasks with the published PET
protocol (FewCLUE `baselines/models_keras/pet/pet_<task>.py`; Xu et al. 2021), beside the published anchors.

Layout of one run (`output_dir`):
    metrics.json              {"score", "score_ci95", "tasks": {task: {"accuracy", "n", "ci95", ...}}, ...}
    config.json               the resolved config
    <task>/predictions.csv    id, pred: one line per scored row in the data's order
    <task>/scores.csv         id, gold, pred, correct, calibrated/ensemble predictions, log-prob per label
    anchors.csv               this run above the published rows
    comparison.csv            with compare_with: paired tests against earlier runs
    submission/, zeroclue_submission.zip   for an unlabelled split (test): the leaderboard files
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import config as cfgmod
from .. import model as _registers_obert  # noqa: F401  (registers 'obert' with the Auto classes)
from ..config import ConfigError, require
from ..model.checkpoint_check import check_checkpoint, check_vocabulary, load_tokenizer
from ..paths import check_output_dir, resolve_data_path
from ..results import append_result, hash_files, write_text_atomic
from .anchors import TASK_ORDER, with_anchors
from .cloze import MAX_LENGTH
from .fewclue import load_split, split_path, task_spec
from .leaderboard import write_submission
from .statistics import score_ci
from .task_scoring import TaskOutcome, evaluate, prepare
from .templates import load_templates, published


@dataclass
class ZeroShotConfig:
    checkpoint: str = "runs/pretrain/checkpoints/stage-2-seq128"
    data_dir: str = "sample:fewclue"  # 'shared:fewclue' for the real files; a folder of <task>/<split>.json
    split: str = "dev_0"  # any split file: dev_0, dev_few_all, test (unlabelled: predictions only), test_public
    tasks: str | list[str] = "all"  # 'all' or names: 'eprstmt,bustm' or a list
    output_dir: str = "runs/zeroshot"
    max_length: int | None = None  # None: the protocol's 128 tokens (256 for ocnli and csl)
    batch_size: int = 16
    calibrate: bool = False  # also report contextual calibration (Zhao et al. 2021)
    templates: str | None = None  # YAML of alternative templates ('alternatives' = the shipped examples)
    compare_with: list[str] = field(default_factory=list)  # earlier zero-shot output folders: paired tests
    overwrite: bool = False  # replace a run of another checkpoint/split already in output_dir
    seed: int = 0  # bootstrap resampling
    results_table: str | None = None  # default <output_dir>/results.csv

    def __post_init__(self):
        self.tasks = resolve_tasks(self.tasks)
        require(
            self.max_length is None or self.max_length >= 16,
            "max_length",
            f"{self.max_length} is too short for a template; use >= 16 or null for the protocol's lengths",
        )
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} rows per forward pass is impossible; use >= 1")


def resolve_tasks(tasks: str | list[str]) -> list[str]:
    """'all' -> the nine tasks in the leaderboard's order; 'a,b' or [a, b] -> those, each checked."""
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else [str(t).strip() for t in tasks]
    names = [t for t in names if t]
    if names == ["all"]:
        return list(TASK_ORDER)
    require(bool(names), "tasks", "is empty; give 'all' or task names such as 'eprstmt,bustm'")
    for name in names:
        try:
            task_spec(name)
        except ConfigError as exc:
            raise ConfigError(f"tasks: {str(exc).removeprefix('task: ')}") from None
    require(len(set(names)) == len(names), "tasks", f"{names} names a task twice")
    return names


@dataclass
class ZeroShotResult:
    metrics: dict  # what metrics.json holds
    predictions: dict[str, pd.DataFrame]  # task -> id, pred
    scores: dict[str, pd.DataFrame]  # task -> id, gold, pred, correct, ...
    output_dir: Path

    def table(self) -> pd.DataFrame:
        """This run's accuracies above the published anchors (accuracy %, NaN where a task was not scored)."""
        return with_anchors({"this checkpoint": self.metrics}, self.metrics["split"])


def run_identity(cfg: ZeroShotConfig) -> dict:
    """What makes two runs' task results belong to one table: same model, data, split and protocol settings."""
    return {
        "checkpoint": str(Path(cfg.checkpoint).resolve()),
        "data_dir": str(resolve_data_path(cfg.data_dir).resolve()),
        "split": cfg.split,
        "max_length": cfg.max_length,
        "templates": cfg.templates,
    }


def _earlier_tasks(out: Path, cfg: ZeroShotConfig) -> dict:
    """Task metrics already in `out` from a run of the same identity (kept), or {} when `out` is fresh.

    A run of another checkpoint, split or protocol in `out` is refused unless overwrite is set, so two runs
    sharing a folder never silently overwrite each other.
    """
    path = out / "metrics.json"
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text(encoding="utf-8"))
    if earlier.get("run") == run_identity(cfg):
        return earlier.get("tasks", {})
    if not cfg.overwrite:
        diff = sorted(k for k, v in run_identity(cfg).items() if (earlier.get("run") or {}).get(k) != v)
        raise ConfigError(
            f"output_dir: {out} holds a zero-shot run with another {', '.join(diff)}; give another folder, or "
            "set overwrite=true to replace it"
        )
    for task in earlier.get("tasks", {}):
        shutil.rmtree(out / task, ignore_errors=True)
    return {}


def run(cfg: ZeroShotConfig | dict | str | None = None, progress: bool = True) -> ZeroShotResult:
    """Score a checkpoint zero-shot on the chosen tasks of one split; writes the layout in the module docstring.

    Everything a user names is checked before the model loads: the checkpoint (a masked LM whose vocabulary
    covers every label word), each task's split and label files (every row, with file and line on error),
    the templates, and the output folder.
    """
    from transformers import AutoModelForMaskedLM

    cfg = cfgmod.load(ZeroShotConfig, cfg)
    out = check_output_dir(cfg.output_dir)
    task_dirs = {task: split_path(task, cfg.data_dir, cfg.split).parent for task in cfg.tasks}
    alternatives = load_templates(cfg.templates, cfg.tasks, task_dirs) if cfg.templates else {}
    ckpt = Path(cfg.checkpoint)
    model_config = check_checkpoint(ckpt, masked_lm=True)
    rows = {task: load_split(task, cfg.data_dir, cfg.split) for task in cfg.tasks}
    earlier = _earlier_tasks(out, cfg)
    tokenizer = load_tokenizer(ckpt)
    check_vocabulary(ckpt, model_config, tokenizer)
    prepared = {
        task: prepare(
            task,
            rows[task],
            [published(task, task_dirs[task]), *alternatives.get(task, [])],
            tokenizer,
            cfg.max_length or MAX_LENGTH[task],
            cfg.data_dir,
            cfg.split,
        )
        for task in cfg.tasks
    }
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar above every run's table
    try:
        model = AutoModelForMaskedLM.from_pretrained(ckpt, local_files_only=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    outcomes: dict[str, TaskOutcome] = {}
    t0 = time.perf_counter()
    for task in tqdm(cfg.tasks, desc="ZeroCLUE tasks", disable=not progress or len(cfg.tasks) == 1):
        outcome = evaluate(model, tokenizer, prepared[task], cfg.batch_size, cfg.calibrate, cfg.seed, progress)
        outcomes[task] = outcome
        # each task lands on disk as soon as it is scored: a crash keeps the finished tasks, a rerun adds the rest
        _write_task(out / task, outcome)
        metrics = _run_metrics(cfg, out, earlier, outcomes, time.perf_counter() - t0)
        write_text_atomic(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=2))
    write_text_atomic(out / "anchors.csv", with_anchors({"this checkpoint": metrics}, cfg.split).to_csv())
    if not any(o.correct is not None for o in outcomes.values()):
        write_submission(out, {task: o.predictions for task, o in outcomes.items()})
    if cfg.compare_with:
        from .comparison import compare_runs, write_comparison

        write_comparison(compare_runs([*cfg.compare_with, out], seed=cfg.seed), out / "comparison.csv")
    _append_results_row(cfg, out, metrics)
    return ZeroShotResult(
        metrics,
        {t: o.predictions for t, o in outcomes.items()},
        {t: o.scores for t, o in outcomes.items()},
        out,
    )


def _write_task(folder: Path, outcome: TaskOutcome) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "predictions.csv", outcome.predictions.to_csv(index=False))
    write_text_atomic(folder / "scores.csv", outcome.scores.to_csv(index=False))


def _run_metrics(cfg: ZeroShotConfig, out: Path, earlier: dict, outcomes: dict[str, TaskOutcome], seconds) -> dict:
    """metrics.json: the tasks of this run and of earlier runs of the same identity, their score and interval.

    The score is the plain mean of the task accuracies (chid included), as the published 44.61 is computed.
    """
    tasks = {t: m for t, m in earlier.items() if t not in outcomes}
    tasks.update({t: o.metrics for t, o in outcomes.items()})
    tasks = {t: tasks[t] for t in [*TASK_ORDER, *sorted(tasks)] if t in tasks}
    labelled = {t: m for t, m in tasks.items() if m.get("accuracy") is not None}
    metrics: dict = {"score": None, "score_ci95": None}
    if labelled:
        correct = {
            t: outcomes[t].correct if t in outcomes else _saved_correct(out / t / "scores.csv") for t in labelled
        }
        low, high = score_ci(correct, seed=cfg.seed)
        metrics["score"] = round(float(np.mean([m["accuracy"] for m in labelled.values()])), 4)
        metrics["score_ci95"] = [round(100 * low, 4), round(100 * high, 4)]
        if all("calibrated" in m for m in labelled.values()):
            metrics["score_calibrated"] = round(
                float(np.mean([m["calibrated"]["accuracy"] for m in labelled.values()])), 4
            )
    metrics.update(
        complete=len(labelled) == len(TASK_ORDER),  # all nine tasks: comparable with the anchors' score
        split=cfg.split,
        data_dir=cfg.data_dir,
        checkpoint=cfg.checkpoint,
        protocol="ZeroCLUE PET (FewCLUE pet_<task>.py), cluewsc and iflytek/csldcp maps fixed",
        tasks=tasks,
        seconds=round(seconds, 3),
        run=run_identity(cfg),
    )
    return metrics


def _saved_correct(path: Path) -> np.ndarray:
    return pd.read_csv(path)["correct"].to_numpy().astype(bool)


def _append_results_row(cfg: ZeroShotConfig, out: Path, metrics: dict) -> None:
    files = [split_path(t, cfg.data_dir, cfg.split) for t in cfg.tasks]
    row = {"score": metrics["score"], **{t: m.get("accuracy") for t, m in metrics["tasks"].items()}}
    append_result(
        cfg.results_table or out / "results.csv", "zeroshot", cfg.seed, hash_files(files), cfgmod.to_dict(cfg), row
    )


def load_run(output_dir: str | Path) -> dict:
    """metrics.json of a finished zero-shot run."""
    path = Path(output_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; is {output_dir} a zero-shot output folder?")
    return json.loads(path.read_text(encoding="utf-8"))
