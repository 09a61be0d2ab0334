"""Task-stage distillation: `run(cfg) -> DistillResult`, a fine-tuned teacher's logits into a smaller student.

Reads like a table of contents: check the config, the teacher and the task; build the student (the teacher
truncated to k layers, as RBT3 is, or a smaller pretrained checkpoint with a fresh head); score the teacher on
dev once; then epochs of steps, each loss = α·KD(T) + (1 − α)·CE (distill.losses.task_distillation_loss) with
the teacher frozen in eval mode; the best student by dev metric kept; one results row. Writes into `output_dir`:
    config.json, history.csv, metrics.json   resolved config, one row per epoch, the final metrics
    student/                                 the best student (finetuning.model.save layout: fine-tune it, serve it)
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
from ..model.checkpoint_check import check_checkpoint, load_tokenizer
from ..paths import check_output_dir
from ..results import append_result, hash_files, write_text_atomic
from .config import DistillConfig
from .layer_map import uniform_layer_map
from .losses import task_distillation_loss

RUN_FILES = ("student", "metrics.json", "history.csv", "config.json")


@dataclass
class DistillResult:
    metrics: dict  # student_metric, teacher_metric, retention, sizes, speeds, steps, train_loss ...
    history: pd.DataFrame  # one row per epoch: train loss, its KD and CE parts, dev metric
    step_losses: list[float]  # the training loss of every step, in order
    output_dir: Path


def run(cfg: DistillConfig | dict | str | None = None, progress: bool = True) -> DistillResult:
    """Distil `cfg.teacher.checkpoint` into a student on `cfg.data.task`; every named thing is checked first."""
    from ..finetuning.examples import load_task

    cfg = cfgmod.load(DistillConfig, cfg)
    if cfg.stage != "task":
        raise ConfigError(f"stage: {cfg.stage!r} is not task; distill.run dispatches each stage to its loop")
    out = check_output_dir(cfg.output_dir)
    _refuse_finished(out, cfg)
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
    for name in RUN_FILES:
        path = out / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    history, steps, best = _train(cfg, task, tokenizer, teacher, engine, out, progress)
    sizes = {"teacher_params": _count(teacher), "student_params": _count(engine.module)}
    best_student, _ = ftmodel.load(out / "student")
    teacher_seconds = _seconds_per_example(teacher, task, tokenizer, cfg.max_length)
    student_seconds = _seconds_per_example(best_student.to(device), task, tokenizer, cfg.max_length)
    speeds = {"teacher_eval_seconds": teacher_seconds, "student_eval_seconds": student_seconds}
    return _finish(cfg, task, history, steps, best, teacher_metric, sizes, speeds, out)


def _refuse_finished(out: Path, cfg: DistillConfig) -> None:
    if (out / "metrics.json").is_file() and not cfg.overwrite:
        raise ConfigError(
            f"output_dir: {out} holds a finished distillation run; give another folder or set overwrite=true"
        )


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


def _train(cfg: DistillConfig, task, tokenizer, teacher, engine, out: Path, progress: bool):
    """Epochs of shuffled batches (epoch e's order seeded by (seed, e)), a dev score after each, best kept."""
    from ..finetuning.encoding import encode

    n, size = len(task.train), cfg.train.batch_size
    per_epoch = -(-n // size)
    bar = tqdm(total=cfg.train.epochs * per_epoch, desc=f"distil {cfg.data.task}", disable=not progress)
    history, steps, seconds = [], [], 0.0
    best = {"metric": -1.0, "epoch": 0}
    for epoch in range(cfg.train.epochs):
        order = np.random.default_rng([cfg.train.seed, epoch]).permutation(n)
        engine.train(True)
        teacher.eval()
        records = []
        for b in range(per_epoch):
            rows = [task.train[i] for i in order[b * size : (b + 1) * size]]
            t0 = time.perf_counter()
            records.append(_step(cfg, engine, teacher, encode(task.kind, tokenizer, rows, cfg.max_length)))
            seconds += time.perf_counter() - t0
            steps.append(records[-1]["loss"])
            bar.update(1)
        metric, _ = _score(engine.module, task, tokenizer, cfg.max_length)
        row = {"epoch": epoch + 1, **{f"train_{k}": float(np.mean([r[k] for r in records])) for k in records[0]}}
        history.append({**row, "eval_metric": metric})
        if metric > best["metric"]:
            best = {"metric": metric, "epoch": epoch + 1}
            extra = {"task": cfg.data.task, "epoch": epoch + 1, "eval_metric": metric, **_head_info(engine.module),
                     "teacher": cfg.teacher.checkpoint, "distill": cfgmod.to_dict(cfg)}  # fmt: skip
            ftmodel.save(engine.module, tokenizer, out / "student", task.labels, extra)
        write_text_atomic(out / "history.csv", pd.DataFrame(history).to_csv(index=False))
    bar.close()
    best["seconds_per_step"] = seconds / max(1, len(steps))
    return pd.DataFrame(history), steps, best


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
    write_text_atomic(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=2))
    append_result(
        cfg.results_table or out / "results.csv",
        f"distill/{cfg.data.task}",
        cfg.train.seed,
        hash_files(data_files(cfg)),
        cfgmod.to_dict(cfg),
        {k: metrics[k] for k in ("student_metric", "teacher_metric", "retention", "student_params", "steps")},
    )
    return DistillResult(metrics=metrics, history=history, step_losses=steps, output_dir=out)
