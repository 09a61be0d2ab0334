"""Pretraining-stage distillation: `run(cfg) -> PretrainDistillResult`, a masked-LM teacher into a smaller student
on a corpus (TinyBERT's general distillation, Jiao et al. 2020, with Hinton et al. 2015's logit KD; TextBrewer).

Reads like a table of contents: check everything (pretrain_checks.check) and what an earlier run of the folder
left (distill.resume: a finished run of this config is returned, an unfinished one continued from its latest
resume point); load the teacher and the corpus; build the student (the teacher cut to k layers as RBT3, a fresh
preset, or a smaller checkpoint) and wrap it with the hidden-state projection into one module inside a DeepSpeed
engine (pretraining.engine.build_engine: the pretraining stage's optimiser, schedule and ZeRO); the teacher stays
frozen in eval mode outside it. Each step
masks a batch with the pretraining MaskingCollator and back-propagates distill.losses.pretrain_distillation_loss;
every `pretrain.checkpoint_every` steps a resume point (pretraining.resume.save_resume: engine, RNG states, step).
Writes into `output_dir`:
    config.json, metrics.csv, metrics.json   resolved config, one row per step, the final metrics
    student/                                 the student as a plain masked-LM folder (a pretraining stage's layout)
    checkpoints/resume/                      the latest resume point while the run is unfinished (then removed)
"""

from __future__ import annotations

import copy
import json
import logging
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
from ..results import append_result, write_text_atomic
from .attention import AttentionScores
from .config import DistillConfig
from .layer_map import uniform_layer_map
from .losses import HiddenStateMSE, attention_score_mse, pretrain_distillation_loss
from .pretrain_checks import Plan, check
from .resume import FINISHED, StepLog, latest, prior_run, read_step_log, remove_points

RUN_FILES = ("student", FINISHED, "metrics.csv", "config.json", "checkpoints")
COLUMNS = ("step", "loss", "kd", "hidden", "attention", "mlm", "teacher_mlm", "mlm_accuracy", "lr", "seconds")
PARTS = ("loss", "kd", "hidden", "attention", "mlm", "teacher_mlm")


@dataclass
class PretrainDistillResult:
    metrics: dict  # final losses (mean of the last steps), sizes, steps, seconds per step
    history: pd.DataFrame  # metrics.csv: one row per optimiser step
    output_dir: Path
    student_dir: Path  # the saved masked-LM student
    student: (
        nn.Module
    )  # the trained student in eval mode (under ZeRO-3, whose weights stay partitioned: the saved copy)


def run(cfg: DistillConfig | dict | str | None = None, progress: bool = True) -> PretrainDistillResult:
    """Distil `cfg.teacher.checkpoint` into a student on `cfg.pretrain.corpus_dir`; all checks come first.

    A rerun of the same config continues an unfinished run from its latest resume point, at the same step
    with the same batches and RNG states, and returns a finished run's result without training (distill.resume).
    """
    cfg = cfgmod.load(DistillConfig, cfg)
    if cfg.stage != "pretrain":
        raise ConfigError(f"stage: {cfg.stage!r} is not pretrain; distill.run dispatches each stage to its loop")
    plan = check(cfg)
    prior = prior_run(plan.out, cfg)
    if prior == "finished":
        return _finished(plan.out)
    p = cfg.pretrain
    teacher, rows = _load_teacher_and_rows(cfg, plan)
    torch.manual_seed(p.seed)
    module = DistillModule(build_student(cfg, teacher, plan), teacher, cfg, plan)
    engine = _engine(module, cfg, plan)
    teacher.to(engine.device).eval().requires_grad_(False)
    collator = _collator(cfg, plan, teacher, rows)
    start = _resume(engine, collator, plan.out) if prior == "resume" else 0
    out = _output(cfg, plan.out, fresh=prior == "fresh")
    batches = _batches(rows, p.train.micro_batch, collator, p.seed, start=start * plan.accumulation)
    bar = tqdm(range(start, p.train.steps), desc="distil (pretraining)", disable=not progress, initial=start,
               total=p.train.steps)  # fmt: skip
    with StepLog(out / "metrics.csv", COLUMNS, keep_until=start if start else None) as log:
        for step in bar:
            collator.set_step(step)  # a mask schedule counts optimiser steps
            log.append(_train_step(engine, teacher, module, batches, plan.accumulation, step))
            bar.set_postfix(loss=f"{log.rows[-1]['loss']:.3f}", kd=f"{log.rows[-1]['kd']:.3f}")
            _maybe_save_point(engine, collator, out, step + 1, p.checkpoint_every, p.train.steps)
        records = log.rows
    student_dir = _save_student(engine, plan.tokenizer, cfg, out)
    student = _in_memory(engine, student_dir)
    engine.destroy()
    return _finish(cfg, plan, records, teacher, student, out, student_dir)


def _resume(engine, collator, out: Path) -> int:
    """Engine state (student, projection, optimiser, schedule) and RNG states of the latest resume point; the
    optimiser steps it had taken."""
    from ..pretraining.resume import read_rng_states, set_rng_states

    point = latest(out)
    path, _ = engine.load_checkpoint(point["path"] + "/deepspeed", tag="resume")
    if path is None:
        raise FileNotFoundError(f"resume: {point['path']}/deepspeed holds no DeepSpeed state; set overwrite=true")
    set_rng_states(read_rng_states(Path(point["path"]), 0), collator)
    return int(point["global_step"])


def _maybe_save_point(engine, collator, out: Path, done: int, every: int, steps: int) -> None:
    """A resume point after every `every` optimiser steps (not after the last: the student is saved then)."""
    from ..pretraining.resume import save_resume
    from ..pretraining.run_dir import RunDir

    if every and done % every == 0 and done < steps:
        save_resume(engine, RunDir(out), {"stage": 0, "stage_step": done, "global_step": done}, collator, rank=0)


def _finished(out: Path) -> PretrainDistillResult:
    """The result of the finished run of this config in `out`, read from its files; nothing is trained."""
    from ..model import load_masked_lm

    metrics = json.loads((out / FINISHED).read_text(encoding="utf-8"))
    history = pd.DataFrame(read_step_log(out / "metrics.csv", COLUMNS), columns=list(COLUMNS))
    student_dir = out / "student"
    return PretrainDistillResult(metrics, history, out, student_dir, load_masked_lm(student_dir).eval())


def _load_teacher_and_rows(cfg: DistillConfig, plan: Plan):
    """The teacher (OBERT masked LM; a BERT-layout folder converts on load) and the corpus sequences."""
    from ..corpus import load_shards
    from ..model import load_masked_lm
    from ..pretraining.preflight import stage_rows

    train = cfg.pretrain.train
    rows = stage_rows(load_shards(plan.corpus_dir).to_pylist(), train)
    if len(rows) < train.micro_batch:
        raise ConfigError(
            f"pretrain.train.micro_batch: the corpus gives {len(rows)} sequences, fewer than one micro-batch "
            f"({train.micro_batch}); lower micro_batch (and global_batch) or use a larger corpus"
        )
    return load_masked_lm(plan.teacher_path), rows


def truncate(model: nn.Module, layers: int, pick: str = "bottom") -> nn.Module:
    """A copy of masked LM `model` keeping `layers` of its L transformer layers: the bottom k (as RBT3), or with
    pick="uniform" teacher layers L/k, 2L/k, ..., L. Embeddings and the MLM head (tied to them) are copied."""
    total = len(model.bert.encoder.layer)
    if pick == "uniform":
        keep = [t - 1 for _, t in uniform_layer_map(total, layers, include_embeddings=False)]
    else:
        keep = list(range(layers))
    student = copy.deepcopy(model)
    student.bert.encoder.layer = nn.ModuleList(student.bert.encoder.layer[i] for i in keep)
    student.config.num_hidden_layers = layers
    return student


def build_student(cfg: DistillConfig, teacher: nn.Module, plan: Plan) -> nn.Module:
    """The student masked LM in train mode: truncated teacher, fresh preset, or a smaller checkpoint."""
    from ..model import ModelConfig, OBertForMaskedLM, load_masked_lm

    s = cfg.student
    if s.layers is not None:
        student = truncate(teacher, s.layers, s.pick)
    elif s.preset is not None:  # the teacher's vocabulary, positions, position kind and norm placement
        t = teacher.config
        shape = ModelConfig(
            preset=s.preset,
            max_positions=t.max_position_embeddings,
            layer_norm=getattr(t, "layer_norm", "post"),
            position=getattr(t, "position", "absolute"),
        )
        student = OBertForMaskedLM(shape.to_hf(t.vocab_size, plan.tokenizer.pad_token_id or 0))
    else:
        student = load_masked_lm(s.checkpoint)
    return student.train().requires_grad_(True)


class DistillModule(nn.Module):
    """The student with the trainable hidden-state projection: what the DeepSpeed engine holds and steps.

    forward(batch, teacher logits / hidden states / attention scores) -> the loss parts (losses.py) plus the
    student's correct MLM predictions and target count (for mlm_accuracy)."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg: DistillConfig, plan: Plan):
        super().__init__()
        w = cfg.pretrain.weights
        self.student = student
        self.weights = {"kd": w.kd, "hidden": w.hidden, "mlm": w.mlm, "attention": w.attention}
        self.temperature, self.t_squared = cfg.kd.temperature, cfg.kd.t_squared
        self.layer_map = plan.layer_map
        self.hidden = None
        if w.hidden > 0:  # TinyBERT's W_h where the widths differ (trained with the student, not saved with it)
            t, s = plan.teacher, plan.student
            self.hidden = HiddenStateMSE(plan.layer_map, s.width, t.width, s.layers, t.layers)
        self.scores = self.teacher_scores = None
        if w.attention > 0:  # hooks on the mapped layers' query/key projections (attention.py)
            self.scores = AttentionScores(student, [s_idx for s_idx, _ in plan.layer_map])
            self.teacher_scores = AttentionScores(teacher, [t_idx for _, t_idx in plan.layer_map])

    @property
    def needs_states(self) -> bool:
        return self.hidden is not None

    def forward(self, input_ids, attention_mask, token_type_ids, labels, teacher_logits, teacher_states, t_scores):
        out = self.student(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           output_hidden_states=self.needs_states)  # fmt: skip
        hidden = self.hidden(out.hidden_states, teacher_states, attention_mask) if self.hidden else None
        attention = None
        if self.scores is not None:
            attention = attention_score_mse(self.scores.scores(), t_scores, self.layer_map, attention_mask)
        parts = pretrain_distillation_loss(out.logits, teacher_logits, labels, self.weights, self.temperature,
                                           self.t_squared, hidden=hidden, attention=attention)  # fmt: skip
        with torch.no_grad():
            masked = labels != -100
            parts["correct"] = (out.logits.argmax(-1)[masked] == labels[masked]).sum()
            parts["targets"] = masked.sum()
        return parts


def _engine(module: DistillModule, cfg: DistillConfig, plan: Plan):
    """deepspeed.initialize through the pretraining stage's helper (one process; ZeRO 0-3, fp32 on CPU)."""
    from ..pretraining.build_locks import clear_stale_build_locks
    from ..pretraining.engine import build_engine, single_process_env

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    single_process_env()
    clear_stale_build_locks()  # a build killed earlier must not block DeepSpeed's op loading forever
    if torch.cuda.is_available():
        module.cuda()
    engine, _ = build_engine(module, cfg.pretrain.train, plan.speed, plan.accumulation)
    engine.train()
    return engine


def _output(cfg: DistillConfig, out: Path, fresh: bool) -> Path:
    """A fresh run first removes what an earlier run (overwrite: true, or one stopped before its first resume
    point) left; then the resolved config is written."""
    for name in RUN_FILES if fresh else ():
        path = out / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    return out


def _collator(cfg: DistillConfig, plan: Plan, teacher: nn.Module, rows: list[dict]):
    """The pretraining MaskingCollator for `pretrain.train.mask`; embedding synonyms come from the teacher."""
    from ..masking import KnowledgeSegments, MaskingCollator, SynonymTable, corpus_words

    mask, p = cfg.pretrain.train.mask, cfg.pretrain
    synonyms = knowledge = None
    if mask.synonym.enabled and mask.synonym.source == "embeddings":
        table = teacher.get_input_embeddings().weight.detach().float().cpu().numpy()
        synonyms = SynonymTable.from_embeddings(table, corpus_words(rows), mask.synonym.top_k, mask.synonym.temperature)
    if mask.knowledge.enabled:
        knowledge = KnowledgeSegments.from_corpus(plan.corpus_dir, plan.tokenizer)
    return MaskingCollator(plan.tokenizer, mask, p.train.seq_len, seed=p.seed, knowledge=knowledge, synonyms=synonyms)


def _batches(rows: list[dict], micro_batch: int, collator, seed: int, start: int = 0):
    """Endless micro-batches from micro-batch index `start`; epoch e visits the rows in permutation (seed, e), so
    a resumed run jumps to the batch it stopped at (the collator's own RNG state comes from the resume point)."""
    per_epoch = len(rows) // micro_batch
    epoch, offset = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(rows))
        for k in range(offset, per_epoch):
            yield collator([rows[i] for i in order[k * micro_batch : (k + 1) * micro_batch]])
        epoch, offset = epoch + 1, 0


def _teacher_outputs(teacher: nn.Module, module: DistillModule, batch: dict) -> dict:
    """The frozen teacher's logits, hidden states and attention scores on the masked batch."""
    with torch.no_grad():
        out = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      token_type_ids=batch["token_type_ids"], output_hidden_states=module.needs_states)  # fmt: skip
        scores = module.teacher_scores.scores() if module.teacher_scores is not None else None
        flat = out.logits.float().reshape(-1, out.logits.shape[-1])
        teacher_mlm = nn.functional.cross_entropy(flat, batch["labels"].reshape(-1), ignore_index=-100)
    return {"teacher_logits": out.logits, "teacher_states": out.hidden_states, "t_scores": scores,
            "teacher_mlm": float(teacher_mlm)}  # fmt: skip


def _train_step(engine, teacher: nn.Module, module: DistillModule, batches, accumulation: int, step: int) -> dict:
    """One optimiser step over `accumulation` micro-batches: the mean of each loss part, lr, MLM accuracy."""
    t0 = time.perf_counter()
    lr = float(engine.optimizer.param_groups[0]["lr"])  # the rate this step's update uses
    sums: dict[str, float] = {}
    correct = targets = 0
    for _ in range(accumulation):
        batch = {k: v.to(engine.device) for k, v in next(batches).items()}
        inputs = _teacher_outputs(teacher, module, batch)
        teacher_mlm = inputs.pop("teacher_mlm")
        parts = engine(**batch, **inputs)
        engine.backward(parts["loss"])
        engine.step()  # the optimiser steps at the accumulation boundary
        correct, targets = correct + int(parts.pop("correct")), targets + int(parts.pop("targets"))
        for name, value in {**parts, "teacher_mlm": teacher_mlm}.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach() if torch.is_tensor(value) else value)
    if not np.isfinite(sums["loss"]):
        raise FloatingPointError(f"distillation loss is {sums['loss']} at step {step + 1}; lower pretrain.train.lr")
    record = {name: sums[name] / accumulation if name in sums else None for name in PARTS}
    record.update(step=step + 1, mlm_accuracy=correct / max(1, targets), lr=lr, seconds=time.perf_counter() - t0)
    return record


def _save_student(engine, tokenizer, cfg: DistillConfig, out: Path) -> Path:
    """The student alone (no projection) as a masked-LM folder: HF weights, config and tokenizer, atomically;
    under ZeRO-3 its partitioned weights are gathered first (deepspeed.zero.GatheredParameters)."""
    import deepspeed

    final, tmp = out / "student", out / "student.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    student = engine.module.student
    zero3 = engine.zero_optimization_stage() == 3
    with deepspeed.zero.GatheredParameters(list(student.parameters()), modifier_rank=None, enabled=zero3):
        student.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "distill.json").write_text(json.dumps(cfgmod.to_dict(cfg), ensure_ascii=False, indent=2), "utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _in_memory(engine, student_dir: Path) -> nn.Module:
    """The trained student for the caller; ZeRO-3 leaves the engine's copy partitioned, so it is reloaded."""
    from ..model import load_masked_lm

    if engine.zero_optimization_stage() == 3:
        return load_masked_lm(student_dir).eval()
    return engine.module.student.eval()


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _finish(cfg: DistillConfig, plan: Plan, records: list[dict], teacher, student, out: Path, student_dir: Path):
    """metrics.json (the run's marker of being finished) and one results-table row."""
    history = pd.DataFrame(records, columns=list(COLUMNS))
    tail = history.tail(min(5, len(history)))  # the last 5 steps: one step's loss is noisy
    metrics = {
        **{f"final_{name}": _mean(tail[name]) for name in PARTS},
        "first_loss": _mean(history["loss"].head(min(5, len(history)))),
        "final_mlm_accuracy": _mean(tail["mlm_accuracy"]),
        "steps": len(history),
        "seconds_per_step": _mean(history["seconds"]),
        "teacher_params": _count(teacher),
        "student_params": _count(student),
        "teacher_layers": plan.teacher.layers,
        "student_layers": plan.student.layers,
        "layer_map": [list(pair) for pair in plan.layer_map] if plan.layer_map else None,
    }
    write_text_atomic(out / FINISHED, json.dumps(metrics, ensure_ascii=False, indent=2))
    remove_points(out)
    stats = plan.corpus_dir / "stats.json"
    data_hash = json.loads(stats.read_text(encoding="utf-8")).get("data_hash", "") if stats.is_file() else ""
    keys = ("final_loss", "final_kd", "final_hidden", "final_mlm", "final_teacher_mlm", "student_params", "steps")
    append_result(cfg.results_table or out / "results.csv", "distill/pretrain", cfg.pretrain.seed, data_hash,
                  cfgmod.to_dict(cfg), {k: metrics[k] for k in keys})  # fmt: skip
    return PretrainDistillResult(metrics, history, out, student_dir, student)


def _mean(values: pd.Series) -> float | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else None
