"""`run(cfg)`: corpus → every variant pretrained (same corpus, data order and budget) → ZeroCLUE → a fine-tuning
ablation over the variants' checkpoints → the report. Each level is resumable and skipped once finished.

Layout of <output_dir>:
    experiment_config.json, experiment_runtime.json   the resolved experiment and its speed-only settings
    corpus/                          the corpus built from corpus.config (absent with corpus.dir)
    pretrain/<variant>/seed<k>-<hash8>/   a pretraining run folder (pretraining.run_dir), named by its plan
    state/                           done.json / error.json per finished or failed step (the ablation's protocol)
    zeroshot/<split>/<variant>/seed<k>-<hash8>/   a ZeroCLUE run folder (evaluation.zeroclue)
    finetune/seed<k>/                the fine-tuning ablation of the checkpoints of pretraining seed k
    results.csv, results.md, comparisons_*.csv, compute.csv, figures/   the report (reporting.py)
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import pandas as pd

from .. import config as cfgmod
from ..config import ConfigError, UserError
from ..finetuning import ablation
from ..paths import check_output_dir
from ..results import write_text_atomic
from .config import ExperimentConfig, ExperimentRuntime, load_experiment
from .plans import PretrainSpec, corpus_dir, pretrain_specs, state_dir
from .reporting import ExperimentReport, report_from_specs
from .steps import ablation_config, build_corpus, pretrain_job, score_zero_shot


@dataclass
class ExperimentResult:
    output_dir: Path
    pretraining: pd.DataFrame  # one row per variant x seed: status (ran|cached), error, run_dir, plan_hash
    zeroshot: dict[str, Path] = field(default_factory=dict)  # run name -> its ZeroCLUE folder
    finetune: dict[int, Any] = field(default_factory=dict)  # pretraining seed -> ablation.AblationResult
    report: ExperimentReport | None = None


def resolve(
    cfg: str | Path | Mapping[str, Any] | ExperimentConfig,
    runtime: Mapping[str, Any] | ExperimentRuntime | None = None,
) -> tuple[ExperimentConfig, ExperimentRuntime]:
    """The experiment and its runtime; `runtime` (a mapping of dotted keys, or an instance) overrides the file's."""
    cfg, file_runtime = load_experiment(cfg)
    if isinstance(runtime, ExperimentRuntime):
        return cfg, runtime
    data = cfgmod.apply_overrides(cfgmod.to_dict(file_runtime), dict(runtime or {}))
    return cfg, cfgmod.from_dict(ExperimentRuntime, data, prefix="runtime.")


def check(cfg: ExperimentConfig, runtime: ExperimentRuntime, cuda: bool | None = None) -> list[PretrainSpec]:
    """Everything checkable before any work: every variant's plan, the ZeroCLUE split files and every fine-tuning
    run's config (with a stand-in checkpoint). Returns the pretraining runs."""
    from ..evaluation.fewclue import split_path
    from ..finetuning import FinetuneConfig

    check_output_dir(cfg.output_dir)
    if cfg.corpus.dir is not None and not (corpus_dir(cfg) / "stats.json").is_file():
        raise ConfigError(
            f"corpus.dir: {corpus_dir(cfg)} holds no preprocessed corpus (no stats.json); run `obert preprocess` "
            "into it, or give corpus.config to build one here"
        )
    specs = pretrain_specs(cfg, runtime, cuda)
    if cfg.zeroshot.enabled:
        for task in cfg.zeroshot.tasks:
            path = split_path(task, cfg.zeroshot.data_dir, cfg.zeroshot.split)
            if not path.is_file():
                raise ConfigError(
                    f"zeroshot.split: {path} does not exist; give a split that {cfg.zeroshot.data_dir} has for "
                    f"{task} (dev_0 in the sample, dev_few_all in shared:fewclue) or drop the task"
                )
    if cfg.finetune.enabled:
        stand_in = {v: {"model.checkpoint": "checkpoint"} for v in cfg.variants}
        mapping = ablation_config(cfg, runtime, stand_in, cfg.seeds[0])
        for spec in ablation.plan(mapping):
            try:
                cfgmod.load(FinetuneConfig, spec.config)
            except ConfigError as exc:
                raise ConfigError(f"finetune.base.{exc}") from None
    return specs


def run(
    cfg: str | Path | Mapping[str, Any] | ExperimentConfig,
    runtime: Mapping[str, Any] | ExperimentRuntime | None = None,
) -> ExperimentResult:
    """Run what is not done yet of the experiment, then write its report; returns what each level produced.

    A finished pretraining, zero-shot task or fine-tuning run is never redone; an interrupted pretraining
    continues from its resume point. A failed pretraining stops the run after the others finished (rerun to
    retry it); runtime.workers > 1 pretrains that many variants at once through the ablation runner's engine.
    """
    cfg, runtime = resolve(cfg, runtime)
    specs = check(cfg, runtime)
    out = check_output_dir(cfg.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "experiment_config.json", json.dumps(cfgmod.to_dict(cfg), ensure_ascii=False, indent=2))
    write_text_atomic(
        out / "experiment_runtime.json", json.dumps(cfgmod.to_dict(runtime), ensure_ascii=False, indent=2)
    )
    if cfg.corpus.config is not None:
        build_corpus(cfg, runtime, out)
    table = _pretrain(specs, runtime, out)
    result = ExperimentResult(out, table)
    if cfg.zeroshot.enabled:
        for spec in specs:
            result.zeroshot[spec.name] = score_zero_shot(cfg, spec, runtime.progress)
    if cfg.finetune.enabled:
        for seed in cfg.seeds:
            checkpoints = {s.variant: {"model.checkpoint": str(s.checkpoint)} for s in specs if s.seed == seed}
            result.finetune[seed] = ablation.run_ablation(
                ablation_config(cfg, runtime, checkpoints, seed), progress=runtime.progress
            )
    result.report = report_from_specs(cfg, specs)
    return result


def _pretrain(specs: list[PretrainSpec], runtime: ExperimentRuntime, out: Path) -> pd.DataFrame:
    """Every pretraining run without done.json, through the ablation runner's local or Ray engine."""
    rows: dict[int, dict] = {}
    jobs = []
    for i, spec in enumerate(specs):
        state = state_dir(out, spec)
        if (state / "done.json").is_file():
            rows[i] = {"status": "cached", "error": ""}
            continue
        config = {
            "plan": cfgmod.to_dict(spec.plan),
            "speed": runtime.speed,
            "progress": runtime.progress,
            "gpus": runtime.gpus,
            "hostfile": runtime.hostfile,
        }
        meta = {"variant": spec.variant, "seed": spec.seed, "plan_hash": spec.plan_hash, "metric": "final_loss"}
        jobs.append((i, config, str(state), meta))

    def on_done(job, record):
        rows[job[0]] = {"status": record["status"], "error": record.get("error", "")}

    workers = min(runtime.workers, len(jobs))
    with _own_distributed_env(workers > 1 or runtime.executor == "ray"):
        if jobs and runtime.executor == "ray":
            ray = cfgmod.from_dict(ablation.RayOptions, runtime.ray)
            ablation.run_ray(jobs, workers, pretrain_job, ray, on_done)
        elif jobs:
            ablation.run_local(jobs, workers, pretrain_job, on_done)
    table = pd.DataFrame(
        [
            {
                "variant": s.variant,
                "seed": s.seed,
                **rows[i],
                "run_dir": str(s.output_dir),
                "plan_hash": s.plan_hash[:8],
            }
            for i, s in enumerate(specs)
        ]
    )
    failed = table[table["status"] == "failed"]
    if len(failed):
        first = failed.iloc[0]
        raise PretrainingFailed(
            f"{len(failed)} of {len(table)} pretraining runs failed (first: {first['variant']} seed {first['seed']}: "
            f"{first['error']}; {first['run_dir']}/train.log and {state_dir(out, specs[int(first.name)])}/error.json "
            "say more); fix it and rerun: finished runs are kept, an interrupted one resumes"
        )
    return table


# torch.distributed settings a training in this process left behind (pretraining.engine.single_process_env):
# worker processes started with them would all listen on this process's MASTER_PORT.
DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextlib.contextmanager
def _own_distributed_env(hide: bool) -> Iterator[None]:
    """Hide this process's torch.distributed variables from worker processes started inside (when `hide`)."""
    saved = {k: os.environ.pop(k) for k in DIST_ENV if k in os.environ} if hide else {}
    try:
        yield
    finally:
        os.environ.update(saved)


class PretrainingFailed(UserError):
    """A variant's pretraining raised or was interrupted; the message names it and what to read."""
