"""Fine-tuning one task with the tricks its YAML switches on: `run(cfg) -> FinetuneResult`.

`run` reads like a table of contents: check everything, load the task, build model and engine, resume if a
resume point of this very config exists, then epochs of steps with an evaluation after each, the best model
kept, early stopping, and one results row. Writes into `output_dir`:
    config.json, history.csv, metrics.json   resolved config, one row per epoch, the final metrics
    best/                                    the best dev model (finetune.model.save layout)
    resume/                                  the last resume point (removed when the run finishes)
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import config as cfgmod
from ..config import ConfigError
from ..model.checkpoint_check import check_checkpoint, check_vocabulary, load_tokenizer
from ..paths import check_output_dir
from ..results import append_result, hash_files, write_text_atomic
from . import model as ftmodel
from .config import FinetuneConfig
from .engines import build_engine
from .resume_state import ResumeState, load_resume, save_resume
from .steps import evaluate, train_step
from .tricks import freeze_bottom, noisytune_


@dataclass
class FinetuneResult:
    metrics: dict  # eval_metric (best dev accuracy or span F1, 0-1), seconds_per_step, steps, ...
    history: pd.DataFrame  # one row per epoch
    output_dir: Path


def run(cfg: FinetuneConfig | dict | str | None = None, progress: bool = True) -> FinetuneResult:
    """Fine-tune `cfg.model.checkpoint` on `cfg.data.task`; everything a user names is checked before training."""
    from .encoding import check_lengths
    from .examples import load_task

    cfg = cfgmod.load(FinetuneConfig, cfg)
    out = check_output_dir(cfg.output_dir)
    resume = _resume_or_refuse(out, cfg)
    if resume == "finished":  # the same config already ran to the end here: its result, nothing retrained
        history = pd.read_csv(out / "history.csv")
        return FinetuneResult(json.loads((out / "metrics.json").read_text(encoding="utf-8")), history, out)
    model_config = check_checkpoint(cfg.model.checkpoint, masked_lm=False, key="model.checkpoint")
    task = load_task(cfg.data.source(), cfg.data.train_split, cfg.data.eval_split)
    _check_task_fits(cfg, task)
    tokenizer = load_tokenizer(Path(cfg.model.checkpoint))
    check_vocabulary(Path(cfg.model.checkpoint), model_config, tokenizer)
    check_lengths(task.kind, tokenizer, task.train + task.eval, cfg.model.max_length, _positions(model_config))
    torch.manual_seed(cfg.train.seed)
    model = ftmodel.build(
        cfg.model.checkpoint,
        task.kind,
        len(task.labels),
        cfg.model.classifier_dropout,
        cfg.tricks.msd,
        cfg.tricks.lexical,
    )
    frozen = freeze_bottom(model.encoder, cfg.model.freeze_layers) if cfg.model.freeze_layers else []
    if cfg.tricks.noisytune.enabled:
        noisytune_(model.encoder, cfg.tricks.noisytune.lam, seed=cfg.train.seed)
    engine = build_engine(model, cfg.train)
    state = ResumeState()
    if resume:
        state = load_resume(out / "resume", engine)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    state = _train(cfg, task, tokenizer, engine, state, out, progress)
    return _finish(cfg, task, state, out, frozen)


def _positions(model_config: dict) -> int | None:
    if model_config.get("position", "absolute") != "absolute":
        return None  # relative positions: no table to run past
    return model_config.get("max_position_embeddings")


def _check_task_fits(cfg: FinetuneConfig, task) -> None:
    """A checkpoint fine-tuned here for another task, and tricks a task kind cannot use, are refused before
    training, naming the key."""
    saved = Path(cfg.model.checkpoint) / ftmodel.FINETUNE_FILE
    if saved.is_file():
        info = json.loads(saved.read_text(encoding="utf-8"))
        if (info.get("kind"), list(info.get("labels", []))) != (task.kind, list(task.labels)):
            raise ConfigError(
                f"model.checkpoint: {cfg.model.checkpoint} was fine-tuned for {info.get('task')} ({info.get('kind')}, "
                f"{len(info.get('labels', []))} labels), not for {cfg.data.task} ({task.kind}, {len(task.labels)} "
                f"labels); start from the pretrained checkpoint it came from ({info.get('pretrained')})"
            )
    if cfg.tricks.lexical.enabled and task.kind not in ("classification", "pair"):
        raise ConfigError(
            f"tricks.lexical: the word-boundary task tags the input text(s) of a classification or pair task; "
            f"{cfg.data.task} is a {task.kind} task"
        )
    if cfg.tricks.msd.enabled and task.kind not in ("classification", "pair"):
        raise ConfigError(f"tricks.msd: Multi-Sample Dropout sits on a sentence classifier, not a {task.kind} task")


def _resume_or_refuse(out: Path, cfg: FinetuneConfig) -> bool | str:
    """ "finished" when `out` holds a finished run of this exact config, True when it holds a resume point of it;
    a run of another config is refused unless overwrite is set (then the folder's run files are removed)."""
    saved = out / "config.json"
    finished = (out / "metrics.json").is_file()
    same = saved.is_file() and json.loads(saved.read_text(encoding="utf-8")) == cfgmod.to_dict(cfg)
    if cfg.overwrite:
        for name in ("resume", "best", "metrics.json", "history.csv", "config.json"):
            path = out / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        return False
    if finished:
        if same:
            return "finished"
        raise ConfigError(
            f"output_dir: {out} holds a finished fine-tuning run of another config; give another folder or set "
            "overwrite=true"
        )
    if (out / "resume").is_dir():
        if not same:
            raise ConfigError(
                f"output_dir: {out} holds an unfinished run of another config; give another folder or set "
                "overwrite=true to start again"
            )
        return True
    return False


def _train(cfg: FinetuneConfig, task, tokenizer, engine, state: ResumeState, out: Path, progress: bool):
    """Epochs of shuffled batches (the order of epoch e is a permutation seeded by (seed, e), so a resumed run
    sees the same batches), an evaluation after each epoch, best model kept, early stopping on patience."""
    from .encoding import encode

    n = len(task.train)
    per_epoch = -(-n // cfg.train.batch_size)
    bar = tqdm(total=cfg.train.epochs * per_epoch, initial=state.step, desc=f"fine-tune {cfg.data.task}",
               disable=not progress)  # fmt: skip
    while state.epoch < cfg.train.epochs and not state.stopped:
        order = np.random.default_rng([cfg.train.seed, state.epoch]).permutation(n)
        engine.train(True)
        for b in range(state.batch_in_epoch, per_epoch):
            rows = [task.train[i] for i in order[b * cfg.train.batch_size : (b + 1) * cfg.train.batch_size]]
            batch = encode(task.kind, tokenizer, rows, cfg.model.max_length)
            t0 = time.perf_counter()
            record = train_step(engine, batch, rows, cfg, tokenizer)
            state.step_seconds += time.perf_counter() - t0
            state.add(record)
            state.batch_in_epoch = b + 1
            bar.update(1)
            if cfg.train.resume_every and state.step % cfg.train.resume_every == 0 and b + 1 < per_epoch:
                save_resume(out / "resume", engine, state)
        metric = evaluate(engine.module, task, tokenizer, cfg)
        state.end_epoch(metric)
        if state.improved:
            ftmodel.save(engine.module, tokenizer, out / "best", task.labels, _head_info(cfg, state))
        state.stopped = cfg.train.patience > 0 and state.since_best >= cfg.train.patience
        write_text_atomic(out / "history.csv", pd.DataFrame(state.history).to_csv(index=False))
        save_resume(out / "resume", engine, state)
    bar.close()
    return state


def _head_info(cfg: FinetuneConfig, state: ResumeState) -> dict:
    msd = cfg.tricks.msd
    return {
        "task": cfg.data.task,
        "epoch": state.epoch,
        "eval_metric": state.best_metric,
        "msd_k": msd.k if msd.enabled else 0,
        "msd_p": msd.p if msd.enabled else 0.0,
        "pretrained": cfg.model.checkpoint,
        "freeze_layers": cfg.model.freeze_layers,
        "config": cfgmod.to_dict(cfg),  # the resolved config travels with the best model
    }


def _finish(cfg: FinetuneConfig, task, state: ResumeState, out: Path, frozen: list[str]) -> FinetuneResult:
    history = pd.DataFrame(state.history)
    metrics = {
        "eval_metric": state.best_metric,
        "metric": "span_f1" if task.kind == "tagging" else "accuracy",
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "early_stopped": state.stopped and state.epoch < cfg.train.epochs,
        "steps": state.step,
        "seconds_per_step": state.step_seconds / max(1, state.step),
        "adversarial_skips": state.adversarial_skips,
        "train_loss": float(history["train_loss"].iloc[-1]),
        "n_train": len(task.train),
        "n_eval": len(task.eval),
        "skipped_rows": getattr(task, "skipped", {}),
        "frozen_parameters": len(frozen),
        "tricks": cfg.tricks.enabled(),
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=2))
    shutil.rmtree(out / "resume", ignore_errors=True)
    append_result(
        cfg.results_table or out / "results.csv",
        f"finetune/{cfg.data.task}",
        cfg.train.seed,
        hash_files(data_files(cfg)),
        cfgmod.to_dict(cfg),
        {k: metrics[k] for k in ("eval_metric", "seconds_per_step", "steps", "train_loss")},
    )
    return FinetuneResult(metrics=metrics, history=history, output_dir=out)


def data_files(cfg: FinetuneConfig) -> list[Path]:
    """The task's train and eval files that a run reads (hashed into its config hash)."""
    from ..paths import resolve_data_path

    root = resolve_data_path(cfg.data.data_dir)
    found = []
    for split in (cfg.data.train_split, cfg.data.eval_split):
        found += sorted(p for p in (root / cfg.data.task).glob(f"{split}.*") if p.is_file())
        found += sorted(p for p in root.glob(f"{split}.*") if p.is_file())
    return found
