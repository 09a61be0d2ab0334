"""Task-stage distillation: `run(cfg) -> DistillResult`, a fine-tuned teacher's logits into a smaller student.

Reads like a table of contents: check the config, what an earlier run of the folder left (distill.resume: a
finished run of this config is returned, an unfinished one continued from its latest resume point), the teacher
and the task; build the student (the teacher truncated to k layers, as RBT3 is, or a smaller pretrained
checkpoint with a fresh head); score the teacher on dev once; then epochs of steps, each loss = α·KD(T) +
(1 − α)·CE (distill.losses.task_distillation_loss) with the teacher frozen in eval mode; the best student by dev
metric kept; a resume point after each epoch but the last and every `train.resume_every` steps; one results
row. Writes into `output_dir`:
    config.json, history.csv, metrics.json   resolved config, one row per epoch, the final metrics
    steps.csv                                one row per optimiser step (step, epoch, loss, kd, ce)
    student/                                 the best student (finetuning.model.save layout: fine-tune it, serve it)
    checkpoints/resume/                      the latest resume point while the run is unfinished (then removed)
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import config as cfgmod
from ..config import ConfigError
from ..finetuning import model as ftmodel
from ..finetuning.resume_state import ResumeState
from ..model.checkpoint_check import check_checkpoint, load_tokenizer
from ..paths import check_output_dir
from ..results import append_result, hash_files, write_text_atomic
from .config import DistillConfig
from .layer_map import uniform_layer_map
from .losses import task_distillation_loss
from .resume import FINISHED, StepLog, load_task_point, prior_run, read_step_log, remove_points, save_task_point

RUN_FILES = ("student", FINISHED, "history.csv", "config.json", "steps.csv", "checkpoints")
STEP_COLUMNS = ("step", "epoch", "loss", "kd", "ce")


@dataclass
class DistillResult:
    metrics: dict  # student_metric, teacher_metric, retention, sizes, speeds, steps, train_loss ...
    history: pd.DataFrame  # one row per epoch: train loss, its KD and CE parts, dev metric
    step_losses: list[float]  # the training loss of every step, in order
    output_dir: Path


def run(cfg: DistillConfig | dict | str | None = None, progress: bool = True) -> DistillResult:
    """Distil `cfg.teacher.checkpoint` into a student on `cfg.data.task`; every named thing is checked first.

    A rerun of the same config continues an unfinished run from its latest resume point (same batches, dropout
    draws and optimiser state) and returns a finished run's result without training (distill.resume)."""
    from ..finetuning.examples import load_task

    cfg = cfgmod.load(DistillConfig, cfg)
    if cfg.stage != "task":
        raise ConfigError(f"stage: {cfg.stage!r} is not task; distill.run dispatches each stage to its loop")
    out = check_output_dir(cfg.output_dir)
    prior = prior_run(out, cfg)
    if prior == "finished":
        return _finished(out)
    teacher_path = _check_teacher(cfg)
    task = load_task(cfg.data.source(), cfg.data.train_split, cfg.data.eval_split)
    teacher, info = ftmodel.load(teacher_path)
    if (info["kind"], list(info["labels"])) != (task.kind, list(task.labels)):
        raise ConfigError(
            f"teacher.checkpoint: {teacher_path} was fine-tuned for {info.get('task')} ({info['kind']}, "
            f"{len(info['labels'])} labels), not for {cfg.data.task} ({task.kind}, {len(task.labels)} labels)"
        )
    tokenizer = load_tokenizer(teacher_path, key="teacher.checkpoint")
    _check_lengths(cfg, task, tokenizer, teacher.encoder.config)
    torch.manual_seed(cfg.train.seed)
    student = build_student(cfg, teacher, task, tokenizer)
    from ..finetuning.engines import build_engine

    engine = build_engine(student, cfg.train)
    device = next(engine.module.parameters()).device
    teacher.to(device).eval().requires_grad_(False)
    teacher_metric, _ = _score(teacher, task, tokenizer, cfg.max_length)
    state = load_task_point(out, engine) if prior == "resume" else ResumeState()
    for name in RUN_FILES if prior == "fresh" else ():
        path = out / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    history, steps, best = _train(cfg, task, tokenizer, teacher, engine, out, progress, state)
    sizes = {"teacher_params": _count(teacher), "student_params": _count(engine.module)}
    best_student, _ = ftmodel.load(out / "student")
    teacher_seconds = _seconds_per_example(teacher, task, tokenizer, cfg.max_length)
    student_seconds = _seconds_per_example(best_student.to(device), task, tokenizer, cfg.max_length)
    speeds = {"teacher_eval_seconds": teacher_seconds, "student_eval_seconds": student_seconds}
    return _finish(cfg, task, history, steps, best, teacher_metric, sizes, speeds, out)


def _finished(out: Path) -> DistillResult:
    """The result of the finished run of this config in `out`, read from its files; nothing is trained."""
    metrics = json.loads((out / FINISHED).read_text(encoding="utf-8"))
    steps = [row["loss"] for row in read_step_log(out / "steps.csv", STEP_COLUMNS)]
    return DistillResult(metrics, pd.read_csv(out / "history.csv"), steps, out)


def _check_teacher(cfg: DistillConfig) -> Path:
    """The teacher must be a model fine-tuned here (finetune.json beside its weights)."""
    path = Path(cfg.teacher.checkpoint)
    if not path.is_dir():
        raise ConfigError(
            f"teacher.checkpoint: {path} is not a folder; give the best/ folder of an `obert finetune` run on "
            f"{cfg.data.task} (e.g. runs/finetune/{cfg.data.task}/best)"
        )
    check_checkpoint(path, masked_lm=False, key="teacher.checkpoint")
    if not (path / ftmodel.FINETUNE_FILE).is_file():
        raise ConfigError(
            f"teacher.checkpoint: {path} holds no {ftmodel.FINETUNE_FILE}, so it is not a fine-tuned model; give the "
            "best/ folder of an `obert finetune` run on this task"
        )
    return path


def _check_lengths(cfg: DistillConfig, task, tokenizer, encoder_config) -> None:
    """max_length must fit the teacher's (and so the student's) position table, as in fine-tuning."""
    from ..finetuning.encoding import check_lengths

    absolute = getattr(encoder_config, "position", "absolute") == "absolute"
    positions = encoder_config.max_position_embeddings if absolute else None
    check_lengths(task.kind, tokenizer, task.train + task.eval, cfg.max_length, positions)


def truncate(model: ftmodel.FinetuneModel, layers: int, pick: str = "bottom") -> ftmodel.FinetuneModel:
    """A copy of `model` keeping `layers` of its L transformer layers: the bottom k (as RBT3), or with
    pick="uniform" teacher layers L/k, 2L/k, ..., L (distill.layer_map). Embeddings and the head are copied."""
    stack = model.encoder.encoder.layer
    total = len(stack)
    if layers > total:
        raise ConfigError(f"student.layers: {layers} is more than the teacher's {total} layers")
    if pick == "uniform":
        try:
            keep = [t - 1 for _, t in uniform_layer_map(total, layers, include_embeddings=False)]
        except ValueError as exc:
            raise ConfigError(f"student.pick: uniform: {exc}") from None
    else:
        keep = list(range(layers))
    student = copy.deepcopy(model)
    student.encoder.encoder.layer = nn.ModuleList(student.encoder.encoder.layer[i] for i in keep)
    student.encoder.config.num_hidden_layers = layers
    return student


def build_student(cfg: DistillConfig, teacher: ftmodel.FinetuneModel, task, tokenizer) -> ftmodel.FinetuneModel:
    """The student model, in train mode, with the head dropout of `student.classifier_dropout`."""
    s = cfg.student
    if s.layers is not None:
        student = truncate(teacher, s.layers, s.pick)
        student.dropout = nn.Dropout(s.classifier_dropout)
        student.lexical_head, student.lexical_weight = None, 0.0  # only the task head is distilled
        return student.train().requires_grad_(True)
    if s.preset is not None:
        return _fresh_student(s.preset, s.classifier_dropout, teacher, task, tokenizer)
    check_checkpoint(s.checkpoint, masked_lm=False, key="student.checkpoint")
    if load_tokenizer(s.checkpoint, key="student.checkpoint").get_vocab() != tokenizer.get_vocab():
        raise ConfigError(
            f"student.checkpoint: {s.checkpoint} has another vocabulary than the teacher; student and teacher read "
            "the same token ids here, so give a checkpoint pretrained with the teacher's tokenizer"
        )
    return ftmodel.build(s.checkpoint, task.kind, len(task.labels), s.classifier_dropout).train()


def _fresh_student(preset: str, dropout: float, teacher, task, tokenizer) -> ftmodel.FinetuneModel:
    """A freshly initialised OBERT encoder of `preset` (the teacher's vocabulary, positions, position kind and
    norm placement), with a fresh head. Weaker than a pretrained student; for quick experiments."""
    from ..model import ModelConfig, OBertModel

    t = teacher.encoder.config
    shape = ModelConfig(
        preset=preset,
        max_positions=t.max_position_embeddings,
        layer_norm=getattr(t, "layer_norm", "post"),
        position=getattr(t, "position", "absolute"),
    )
    encoder = OBertModel(shape.to_hf(t.vocab_size, tokenizer.pad_token_id or 0), add_pooling_layer=False)
    return ftmodel.FinetuneModel(encoder, task.kind, len(task.labels), dropout).train()


def _head_info(model: ftmodel.FinetuneModel) -> dict:
    """What finetuning.model.load needs to rebuild a Multi-Sample Dropout head (kept from the teacher)."""
    if not model.msd_samples:
        return {"msd_k": 0, "msd_p": 0.0}
    return {"msd_k": model.head.k, "msd_p": model.head.dropout.p}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _score(model, task, tokenizer, max_length: int) -> tuple[float, float]:
    """(dev metric in [0, 1], seconds per dev example) — accuracy, or span F1 for tagging."""
    from ..finetuning.steps import predict

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    pred, gold = predict(model, task, tokenizer, task.eval, max_length)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / max(1, len(task.eval))
    if task.kind == "tagging":
        from ..finetuning.ner import span_f1

        return float(span_f1(gold, pred)["f1"]), seconds
    return float((np.array(pred) == np.array(gold)).mean()), seconds


def _seconds_per_example(model, task, tokenizer, max_length: int) -> float:
    """Inference time per dev example (batches of 32, as `predict` runs them), after one untimed warm-up batch
    (first calls pay for allocation and kernel selection)."""
    from ..finetuning.steps import predict

    predict(model, task, tokenizer, task.eval[:32], max_length)
    return _score(model, task, tokenizer, max_length)[1]


def _step(cfg: DistillConfig, engine, teacher, batch: dict) -> dict[str, float]:
    """One optimiser step on α·KD + (1 − α)·CE; tagging scores only the labelled tokens."""
    from ..finetuning.steps import to_device

    device = next(engine.module.parameters()).device
    batch = to_device(batch, device)
    with torch.no_grad():
        t_logits = teacher(batch).logits
    s_logits = engine.module(batch).logits
    labels = batch["labels"]
    s_logits, t_logits, labels = (
        s_logits.reshape(-1, s_logits.shape[-1]),
        t_logits.reshape(-1, t_logits.shape[-1]),
        labels.reshape(-1),
    )
    keep = labels != -100
    parts = task_distillation_loss(
        s_logits[keep], t_logits[keep], labels[keep], cfg.kd.alpha, cfg.kd.temperature, cfg.kd.t_squared
    )
    engine.backward(parts["loss"])
    engine.step()
    return {k: float(v.detach()) for k, v in parts.items()}


def _train(cfg: DistillConfig, task, tokenizer, teacher, engine, out: Path, progress: bool, state: ResumeState):
    """Epochs of shuffled batches (epoch e's order seeded by (seed, e), so a resumed run continues with the very
    batches the killed one would have taken), a dev score after each, best kept; `state` is where to start."""
    from ..finetuning.encoding import encode

    n, size = len(task.train), cfg.train.batch_size
    per_epoch, every = -(-n // size), cfg.train.resume_every
    bar = tqdm(total=cfg.train.epochs * per_epoch, initial=state.step, desc=f"distil {cfg.data.task}",
               disable=not progress)  # fmt: skip
    with StepLog(out / "steps.csv", STEP_COLUMNS, keep_until=state.step if state.step else None) as log:
        while state.epoch < cfg.train.epochs:
            epoch = state.epoch
            order = np.random.default_rng([cfg.train.seed, epoch]).permutation(n)
            engine.train(True)
            teacher.eval()
            for b in range(state.batch_in_epoch, per_epoch):
                rows = [task.train[i] for i in order[b * size : (b + 1) * size]]
                t0 = time.perf_counter()
                record = _step(cfg, engine, teacher, encode(task.kind, tokenizer, rows, cfg.max_length))
                state.step_seconds += time.perf_counter() - t0
                state.step, state.batch_in_epoch = state.step + 1, b + 1
                log.append({"step": state.step, "epoch": epoch + 1, **record})
                bar.update(1)
                if every and state.step % every == 0 and b + 1 < per_epoch:
                    save_task_point(out, engine, state)
            _end_epoch(cfg, task, tokenizer, engine, out, state, [r for r in log.rows if r["epoch"] == epoch + 1])
            if state.epoch < cfg.train.epochs:
                save_task_point(out, engine, state)
        steps = [r["loss"] for r in log.rows]
    bar.close()
    best = {"metric": state.best_metric, "epoch": state.best_epoch}
    best["seconds_per_step"] = state.step_seconds / max(1, state.step)
    return pd.DataFrame(state.history), steps, best


def _end_epoch(cfg: DistillConfig, task, tokenizer, engine, out: Path, state: ResumeState, records: list[dict]):
    """Score the student on dev; the epoch's history row (mean losses of its steps); the best student kept."""
    metric, _ = _score(engine.module, task, tokenizer, cfg.max_length)
    epoch = state.epoch + 1
    row = {"epoch": epoch, **{f"train_{k}": float(np.mean([r[k] for r in records])) for k in ("loss", "kd", "ce")}}
    state.history.append({**row, "eval_metric": metric})
    state.epoch, state.batch_in_epoch = epoch, 0
    if metric > state.best_metric:
        state.best_metric, state.best_epoch = metric, epoch
        extra = {"task": cfg.data.task, "epoch": epoch, "eval_metric": metric, **_head_info(engine.module),
                 "teacher": cfg.teacher.checkpoint, "distill": cfgmod.to_dict(cfg)}  # fmt: skip
        ftmodel.save(engine.module, tokenizer, out / "student", task.labels, extra)
    write_text_atomic(out / "history.csv", pd.DataFrame(state.history).to_csv(index=False))


def _finish(cfg, task, history, steps, best, teacher_metric, sizes, speeds, out: Path) -> DistillResult:
    from ..finetuning.trainer import data_files  # the task's train and eval files, as fine-tuning hashes them

    metrics = {
        "student_metric": best["metric"],
        "teacher_metric": teacher_metric,
        "retention": best["metric"] / teacher_metric if teacher_metric > 0 else None,
        "metric": "span_f1" if task.kind == "tagging" else "accuracy",
        "best_epoch": best["epoch"],
        "steps": len(steps),
        "seconds_per_step": best["seconds_per_step"],
        "train_loss": float(history["train_loss"].iloc[-1]),
        "first_epoch_loss": float(history["train_loss"].iloc[0]),
        **sizes,
        **speeds,
        "n_train": len(task.train),
        "n_eval": len(task.eval),
    }
    write_text_atomic(out / FINISHED, json.dumps(metrics, ensure_ascii=False, indent=2))
    remove_points(out)
    append_result(
        cfg.results_table or out / "results.csv",
        f"distill/{cfg.data.task}",
        cfg.train.seed,
        hash_files(data_files(cfg)),
        cfgmod.to_dict(cfg),
        {k: metrics[k] for k in ("student_metric", "teacher_metric", "retention", "student_params", "steps")},
    )
    return DistillResult(metrics=metrics, history=history, step_losses=steps, output_dir=out)
