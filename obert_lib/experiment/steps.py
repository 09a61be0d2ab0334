"""The experiment's steps, each skipped when finished: building the corpus, one pretraining (the engine's job
function), one ZeroCLUE run, and the fine-tuning ablation's mapping."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import config as cfgmod
from ..paths import resolve_data_path
from ..results import write_text_atomic
from .config import ExperimentConfig, ExperimentRuntime
from .plans import PretrainSpec, corpus_config


def build_corpus(cfg: ExperimentConfig, runtime: ExperimentRuntime, out: Path) -> Path:
    """Run the corpus stage into <out>/corpus unless state/corpus.json records this very config as built."""
    from .. import corpus

    ccfg = corpus_config(cfg, out)
    marker = out / "state" / "corpus.json"
    wanted = cfgmod.to_dict(ccfg)
    done = _read(marker)
    if done == wanted and (out / "corpus" / "stats.json").is_file():
        return out / "corpus"
    if cfg.corpus.fewclue_unlabeled is not None:
        from ..unified.top_n import unlabeled_corpus

        text = cfg.corpus.fewclue_unlabeled
        unlabeled_corpus(text.data_dir, ccfg.inputs[0], tasks=text.tasks)
    corpus.run(ccfg, corpus.CorpusRuntime(progress=runtime.progress))
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps(wanted, ensure_ascii=False, indent=2))
    return out / "corpus"


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass
class PretrainOutcome:
    """What the engine records in done.json for one pretraining run."""

    metrics: dict


def pretrain_job(config: dict, progress: bool = False) -> PretrainOutcome:
    """One variant's pretraining (the engine's run_fn): fresh, resumed from its resume point, or only read back when
    the run already finished. config: {"plan": resolved plan, "speed": SpeedConfig mapping, "progress": bool}."""
    import torch

    from .. import pretraining

    plan = cfgmod.from_dict(pretraining.PretrainConfig, config["plan"])
    out = Path(plan.output_dir)
    point = pretraining.resume_point(out)
    t0 = time.perf_counter()
    gpus, hostfile = config.get("gpus"), config.get("hostfile")
    if not (point and point.get("finished")):
        if gpus is None and hostfile is None:  # one process: here
            progress = config.get("progress", progress)
            status = pretraining.run(plan, config["speed"], progress=progress, resume=bool(point)).status
        else:  # data parallel: the DeepSpeed launcher in a subprocess, followed until it ends
            handle = pretraining.launch(
                plan, config["speed"], resume=bool(point), gpus=gpus, hostfile=hostfile, live=False
            )
            status = handle.status().status
        if status != "finished":
            raise RuntimeError(f"pretraining in {out} was {status}; rerun the experiment to resume it")
    metrics = pd.read_csv(out / "metrics.csv")
    cuda = torch.cuda.is_available()
    world = config["speed"].get("data_parallel_size", 1)
    if gpus is not None or hostfile is not None:
        from ..pretraining.processes import world_size

        world = world_size(gpus, hostfile)
    return PretrainOutcome(
        {
            "final_loss": float(metrics["loss"].tail(5).mean()),
            "steps": int(metrics["global_step"].max()),
            "tokens": int(metrics["tokens"].sum()),
            "positions": int((metrics["global_batch"] * metrics["seq_len"]).sum()),
            "train_seconds": float((metrics["tokens"] / metrics["tokens_per_s"]).sum()),
            "this_call_seconds": round(time.perf_counter() - t0, 3),
            "device": "cuda" if cuda else "cpu",
            "devices": int(world) if cuda else torch.get_num_threads(),
        }
    )


def zeroshot_dir(cfg: ExperimentConfig, spec: PretrainSpec) -> Path:
    """The ZeroCLUE folder of one pretraining run: zeroshot/<split>/<variant>/<its pretrain folder name>."""
    root = resolve_data_path(cfg.output_dir).resolve()
    return root / "zeroshot" / cfg.zeroshot.split / spec.variant / spec.output_dir.name


def zeroshot_settings(cfg: ExperimentConfig, spec: PretrainSpec) -> dict[str, Any]:
    """The evaluation.run mapping of one pretraining run (all of the experiment's tasks)."""
    zs = cfg.zeroshot
    return {
        "checkpoint": str(spec.checkpoint),
        "data_dir": zs.data_dir,
        "split": zs.split,
        "tasks": zs.tasks,
        "max_length": zs.max_length,
        "batch_size": zs.batch_size,
        "calibrate": zs.calibrate,
        "output_dir": str(zeroshot_dir(cfg, spec)),
        "seed": spec.seed,
        "overwrite": True,  # the folder is the experiment's: scores of other protocol settings are replaced
    }


def zeroshot_scored(cfg: ExperimentConfig, spec: PretrainSpec) -> dict[str, dict]:
    """The task metrics already in the run's ZeroCLUE folder for these very settings ({} when none)."""
    from ..evaluation.zeroclue import ZeroShotConfig, run_identity

    earlier = _read(zeroshot_dir(cfg, spec) / "metrics.json") or {}
    identity = run_identity(cfgmod.from_dict(ZeroShotConfig, zeroshot_settings(cfg, spec)))
    return earlier.get("tasks", {}) if earlier.get("run") == identity else {}


def score_zero_shot(cfg: ExperimentConfig, spec: PretrainSpec, progress: bool) -> Path:
    """Score the run's last checkpoint on the tasks its ZeroCLUE folder does not hold yet (none: nothing runs)."""
    from .. import evaluation

    scored = zeroshot_scored(cfg, spec)
    calibrate = cfg.zeroshot.calibrate
    missing = [t for t in cfg.zeroshot.tasks if t not in scored or (calibrate and "calibrated" not in scored[t])]
    if missing:
        evaluation.run({**zeroshot_settings(cfg, spec), "tasks": missing}, progress=progress)
    return zeroshot_dir(cfg, spec)


def ablation_config(
    cfg: ExperimentConfig, runtime: ExperimentRuntime, checkpoints: dict[str, dict], seed: int
) -> dict[str, Any]:
    """The fine-tuning ablation of pretraining seed `seed`: its variants set model.checkpoint to each variant's."""
    ft = cfg.finetune
    return {
        "base": ft.base,
        "tasks": ft.tasks,
        "variants": checkpoints,
        "baseline": cfg.baseline,
        "seeds": list(ft.seeds),
        "metric": ft.metric,
        "output_dir": str(resolve_data_path(cfg.output_dir).resolve() / "finetune" / f"seed{seed}"),
        "executor": runtime.executor,
        "workers": runtime.workers,
        "ray": runtime.ray,
    }
