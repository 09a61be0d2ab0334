"""Staged pretraining through deepspeed.initialize: one engine per stage, warm start from the previous stage.

run() reads like nanoGPT's train.py or cramming's main_training_process: validate and resume; load the
data; for each stage build the engine; for each step train, log and maybe write a resume point; save the
stage. What the run writes into its output folder is run_dir.RunDir's protocol.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import config as cfgmod
from ..corpus import load_shards
from ..masking import KnowledgeSegments, MaskingCollator, SynonymTable, corpus_words
from ..model import build_masked_lm, count_parameters, load_masked_lm
from ..results import append_result
from . import aux_tasks
from .build_locks import clear_stale_build_locks
from .engine import build_engine, save_stage, single_process_env, sum_over_ranks
from .guards import TrainingDiverged, TrainingGuard, loss_scale
from .plan import PretrainConfig, SpeedConfig, StageConfig, validate
from .preflight import check_corpus, check_stage_sizes, load_tokenizer, stage_rows
from .resume import check_resume, mark_stage_done, read_rng_states, resume_point, save_resume, set_rng_states
from .run_dir import METRIC_COLUMNS, RunDir, RunStatus, board
from .run_lock import RunLock
from .stop import StopRequest, StopRun
from .throughput import mfu, model_flops_per_token, peak_flops

BOARD_KEYS = ("loss", "mlm_accuracy", "lr", "tokens_per_s", "loss_scale", "mfu")  # metrics sent to TensorBoard


@dataclass
class PretrainResult:
    output_dir: Path
    checkpoints: list[Path]
    metrics: pd.DataFrame
    parameters: int
    status: str = "finished"  # or "interrupted" (a resume point was written; run again with resume=True)


@dataclass
class _Run:
    """One call of run(): its settings, its data once loaded, and its progress (what a stopped run returns)."""

    cfg: PretrainConfig
    speed: SpeedConfig
    accumulation: list[int]  # micro-batches per optimiser step, per stage
    run_dir: RunDir
    corpus_dir: Path
    rank: int
    point: dict | None  # the resume point resumed from
    status: RunStatus
    stop: StopRequest
    progress: bool
    tokenizer: Any = None
    rows: list[dict] = field(default_factory=list)
    data_hash: str = ""
    resumed_rng: dict | None = None
    board: Any = None
    checkpoints: list[Path] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    parameters: int = 0
    global_step: int = 0
    aux_sources: list = field(default_factory=list)  # each aux task's examples (none: plain MLM)

    @property
    def first_stage(self) -> int:
        return self.point["stage"] if self.point else 0

    def result(self, status: str = "finished") -> PretrainResult:
        return PretrainResult(
            self.run_dir.root, self.checkpoints, pd.DataFrame(self.records), self.parameters, status=status
        )


@dataclass
class _Stage:
    """One stage being trained: its engine, masking collator and endless batches."""

    index: int
    config: StageConfig
    accumulation: int
    engine: Any
    optimizer: Any  # our client optimiser, or None when DeepSpeed built its own
    collator: MaskingCollator
    batches: Any
    guard: TrainingGuard
    flops_per_token: float
    peak: float | None  # peak FLOP/s of the GPU at this precision (None on CPU: no MFU)
    start_step: int
    bar: Any
    aux: Any = None  # {task: batch} per micro-batch, beside `batches` (None: plain MLM)


def run(
    cfg: PretrainConfig | dict | str | None = None,
    speed: SpeedConfig | dict | None = None,
    progress: bool = True,
    resume: bool = False,
) -> PretrainResult:
    """Train every stage of the plan; a HF checkpoint (+ DeepSpeed state, resolved plan) after each stage.

    resume=True continues a stopped or killed run in `output_dir` from its latest resume point, at the
    same step with the same data order and RNG states (stages already finished are not rerun).
    One run per output_dir: a second one gets LiveRunError while the first holds `<output_dir>/run.lock`.
    SIGINT/SIGTERM end the run at once before the first step, else after the step with a resume point
    (see pretraining.stop); the result's status is then "interrupted".
    """
    cfg = cfgmod.load(PretrainConfig, cfg)
    speed = cfgmod.load(SpeedConfig, speed)
    accumulation = validate(cfg, speed, torch.cuda.is_available())
    run_dir = RunDir(cfg.output_dir)
    if resume and resume_point(run_dir.root) is None:
        raise FileNotFoundError(f"resume: no resume point under {run_dir.resume}; start without --resume")
    corpus_dir = check_corpus(cfg.corpus_dir)
    rank = int(os.environ.get("RANK", "0"))  # the launcher's; a single process is rank 0
    with RunLock(run_dir.root) if rank == 0 else contextlib.nullcontext():  # rank 0 holds the folder for the run
        point = check_resume(run_dir.root, cfg, speed) if resume else None
        status = RunStatus(run_dir, sum(st.steps for st in cfg.stages), enabled=rank == 0)
        status.data["global_step"] = point["global_step"] if point else 0
        abort = functools.partial(status.update, status="interrupted")
        with StopRequest(speed.stop_grace_s, on_abort=lambda message: abort(message=message)) as stop:
            state = _Run(cfg, speed, accumulation, run_dir, corpus_dir, rank, point, status, stop, progress)
            try:
                return _train(state)
            except StopRun as exc:
                return _stopped(state, exc)


def _train(run: _Run) -> PretrainResult:
    """run()'s work once the folder is locked and the stop handler installed."""
    _load_data(run)
    _prepare_run_dir(run)
    model = _stage_model(run, run.first_stage)
    run.parameters = count_parameters(model)
    clear_stale_build_locks()  # a build killed earlier must not block DeepSpeed's op loading forever
    with board(run.run_dir, run.rank, purge_step=run.global_step + 1 if run.point else None) as run.board:
        try:
            for si in range(run.first_stage, len(run.cfg.stages)):
                run.stop.check()  # a signal that came while the previous stage was saved
                stage = _start_stage(run, si, model if si == run.first_stage else _stage_model(run, si))
                model = None  # the engine holds it now
                for step in stage.bar:  # tqdm over range(start_step, steps)
                    record = _train_step(run, stage, step)
                    _log_step(run, stage, step, record)
                    if _maybe_save_resume_point(run, stage, step):
                        return run.result("interrupted")
                _finish_stage(run, stage)
                if _stop_after_stage(run, si):
                    return run.result("interrupted")
        except TrainingDiverged as exc:  # the last stage checkpoint and resume point stay as they were
            run.status.update(status="diverged", message=str(exc))
            raise
        except StopRun:
            raise
        except BaseException as exc:
            run.status.update(status="failed", message=f"{type(exc).__name__}: {exc}")
            raise
    run.status.update(status="finished", message=f"{len(run.checkpoints)} stage checkpoints")
    return run.result()


def _load_data(run: _Run) -> None:
    """Tokenizer and rows of the corpus (checked against every stage), the resumed RNG states, the data hash."""
    run.tokenizer = load_tokenizer(run.corpus_dir)
    run.rows = load_shards(run.corpus_dir).to_pylist()
    check_stage_sizes(run.cfg, run.rows, run.speed.data_parallel_size)
    run.aux_sources = aux_tasks.load_sources(run.cfg, run.rows, run.tokenizer, run.speed.data_parallel_size)
    point = run.point
    run.resumed_rng = read_rng_states(Path(point["path"]), run.rank) if point and point["stage_step"] else None
    stats = run.corpus_dir / "stats.json"
    run.data_hash = json.loads(stats.read_text()).get("data_hash", "") if stats.exists() else ""


def _prepare_run_dir(run: _Run) -> None:
    """The distributed env, then the run folder: the plan and speed settings, the metrics kept on resume."""
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    single_process_env()
    if int(os.environ["WORLD_SIZE"]) != run.speed.data_parallel_size:
        raise cfgmod.ConfigError(
            f"speed.data_parallel_size: {run.speed.data_parallel_size} but the launcher started "
            f"{os.environ['WORLD_SIZE']} processes; make them equal"
        )
    run.run_dir.checkpoints.mkdir(parents=True, exist_ok=True)
    if run.rank == 0:
        cfgmod.save(run.cfg, run.run_dir.plan_json)
        cfgmod.save(run.speed, run.run_dir.speed_json)
        run.records += run.run_dir.reset(keep_until_step=run.point["global_step"] if run.point else None)
    run.global_step = run.point["global_step"] if run.point else 0
    run.status.update(global_step=run.global_step)
    finished = run.cfg.stages[: run.first_stage]  # stages a resumed run does not train again
    run.checkpoints += [run.run_dir.stage_checkpoint(i, st.name) for i, st in enumerate(finished)]


def _stage_model(run: _Run, si: int):
    """Stage si's starting weights: fresh for the first stage (or warm_start false), else the previous stage's
    (with aux tasks: the masked LM inside the multi-task module, its heads and s_i carried the same way)."""
    if si > 0 and run.cfg.stages[si].warm_start:  # architecture and weights from the checkpoint
        lm = load_masked_lm(run.checkpoints[si - 1], run.cfg.model)
        return aux_tasks.wrap(run.cfg, lm, run.checkpoints[si - 1])
    lm = build_masked_lm(run.cfg.model, len(run.tokenizer), run.tokenizer.pad_token_id, seed=run.cfg.seed + si)
    return aux_tasks.wrap(run.cfg, lm)


def _start_stage(run: _Run, si: int, model) -> _Stage:
    """Stage si's engine (a fresh optimiser and schedule), collator and batches; resumed mid-stage if so."""
    cfg, stage, accum = run.cfg, run.cfg.stages[si], run.accumulation[si]
    start_step = run.point["stage_step"] if run.point and si == run.first_stage else 0
    synonyms = None
    if stage.mask.synonym.enabled and stage.mask.synonym.source == "embeddings":
        # neighbours in the input embeddings the stage starts from (the previous stage's, when warm-started)
        synonyms = SynonymTable.from_embeddings(
            model.get_input_embeddings().weight.detach().float().cpu().numpy(),
            corpus_words(run.rows),
            stage.mask.synonym.top_k,
            stage.mask.synonym.temperature,
        )
    torch.manual_seed(cfg.seed + si)
    engine, optimizer = build_engine(model, stage, run.speed, accum)
    flops_per_token = model_flops_per_token(run.parameters, cfg.model.layers, cfg.model.hidden, stage.seq_len)
    peak = peak_flops(torch.cuda.get_device_name(), run.speed.precision) if torch.cuda.is_available() else None
    knowledge = KnowledgeSegments.from_corpus(run.corpus_dir, run.tokenizer) if stage.mask.knowledge.enabled else None
    collator = MaskingCollator(
        run.tokenizer, stage.mask, stage.seq_len, seed=cfg.seed * 1000 + si, knowledge=knowledge, synonyms=synonyms
    )
    if start_step:
        engine.load_checkpoint(run.point["path"] + "/deepspeed", tag="resume")
        set_rng_states(run.resumed_rng, collator)
    batches = _batches(
        stage_rows(run.rows, stage),
        stage.micro_batch,
        collator,
        seed=cfg.seed * 1000 + si,
        rank=run.rank,
        world=run.speed.data_parallel_size,
        start=start_step * accum,
    )
    aux = aux_tasks.stage_stream(
        cfg, run.aux_sources, run.tokenizer, si, run.rank, run.speed.data_parallel_size, start_step * accum
    )
    engine.train()
    bar = tqdm(
        range(start_step, stage.steps),
        desc=f"stage {si + 1}/{len(cfg.stages)} {stage.name}",
        disable=not run.progress or run.rank != 0,
        initial=start_step,
        total=stage.steps,
    )
    run.stop.defer(True)  # from here a signal waits for the end of the step (and a resume point)
    return _Stage(
        si,
        stage,
        accum,
        engine,
        optimizer,
        collator,
        batches,
        TrainingGuard(),
        flops_per_token,
        peak,
        start_step,
        bar,
        aux,
    )


def _train_step(run: _Run, stage: _Stage, step: int) -> dict:
    """One optimiser step over `accumulation` micro-batches; its metrics row, summed over all ranks.

    TrainingDiverged (guards) before anything of the step is logged or saved.
    """
    engine, t0 = stage.engine, time.perf_counter()
    losses, correct, targets, tokens, task_values = [], 0, 0, 0, []
    lr = float(engine.optimizer.param_groups[0]["lr"])  # the rate this step's update uses
    stage.collator.set_step(step)  # a mask schedule counts this stage's optimiser steps
    for _ in range(stage.accumulation):
        batch = next(stage.batches)
        inputs = batch if stage.aux is None else {"mlm": batch, "aux": next(stage.aux)}
        loss, n_correct, n_targets, n_tokens, values = _micro_step(
            engine, inputs, batch, stage.guard, run.global_step + 1
        )
        losses.append(loss)
        task_values.append(values)
        correct, targets, tokens = correct + n_correct, targets + n_targets, tokens + n_tokens
    run.global_step += 1
    # over all ranks: the guard and the metrics see the whole global batch, not rank 0's share
    loss_sum, n_loss, correct, targets, tokens, *task_sums = sum_over_ranks(
        [float(np.sum(losses)), len(losses), correct, targets, tokens, *np.sum(task_values, axis=0)], engine.device
    )
    dt = time.perf_counter() - t0
    st = stage.config
    record = {
        "global_step": run.global_step,
        "stage": stage.index + 1,
        "stage_name": st.name,
        "stage_step": step + 1,
        "seq_len": st.seq_len,
        "global_batch": st.global_batch,
        "strategy": st.mask.label,
        "loss": loss_sum / n_loss,
        "mlm_accuracy": correct / max(1, targets),
        "lr": lr,
        "tokens": int(tokens),
        "tokens_per_s": tokens / dt,
        "loss_scale": loss_scale(engine),
        "mfu": mfu(tokens / dt, stage.flops_per_token, stage.peak, devices=run.speed.data_parallel_size)
        if stage.peak
        else None,
    }
    if task_sums:  # aux tasks: per-task losses, weights and s_i, and the total backpropagated
        record.update(aux_tasks.step_metrics(run.cfg, np.asarray(task_sums) / n_loss))
    stage.guard.check(run.global_step, record.get("loss/total", record["loss"]), record["loss_scale"])
    return record


def _micro_step(
    engine, inputs: dict, batch: dict, guard: TrainingGuard, global_step: int
) -> tuple[float, int, int, int, list[float]]:
    """Forward, backward and engine.step on one micro-batch (`inputs`: the MLM `batch`, or it and the aux
    batches): (MLM loss, correct predictions, MLM targets, real tokens, aux_tasks.step_values or [])."""
    outputs = engine(**inputs)
    engine.backward(outputs.loss)
    try:
        engine.step()  # the optimiser steps only at the accumulation boundary
    except Exception as exc:  # ZeRO 1-3 raise a bare Exception when the loss scale hits its floor
        diverged = guard.from_deepspeed_error(global_step, exc)
        if diverged is None:
            raise
        raise diverged from exc
    with torch.no_grad():
        mask = batch["labels"] != -100  # [B, T]
        correct = int((outputs.logits.argmax(-1)[mask] == batch["labels"][mask]).sum())
    if "mlm" not in inputs:
        return outputs.loss.item(), correct, int(mask.sum()), int(batch["attention_mask"].sum()), []
    values = aux_tasks.step_values(outputs)
    return outputs.mlm_loss.item(), correct, int(mask.sum()), int(batch["attention_mask"].sum()), values


def _log_step(run: _Run, stage: _Stage, step: int, record: dict) -> None:
    """The step's row into the result, metrics.csv and TensorBoard (rank 0), run.json and the progress bar."""
    run.records.append(record)
    if run.rank == 0:
        run.run_dir.append_metrics(record)
        for key in BOARD_KEYS:
            if record[key] is not None:
                run.board.add_scalar(f"train/{key}", record[key], run.global_step)
        for key in [k for k in record if k not in METRIC_COLUMNS]:  # aux tasks: multitask/loss/<task>, ...
            run.board.add_scalar(f"multitask/{key}", record[key], run.global_step)
    run.status.update(global_step=run.global_step, stage=stage.index + 1)
    if step % run.speed.log_every == 0:
        stage.bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['mlm_accuracy']:.3f}")


def _maybe_save_resume_point(run: _Run, stage: _Stage, step: int) -> bool:
    """A resume point every checkpoint_every steps and when a stop was asked for (not after a stage's last step:
    the stage checkpoint follows). True when the run stops here."""
    stop = run.stop
    last = step + 1 == stage.config.steps
    due = run.speed.checkpoint_every and (step + 1) % run.speed.checkpoint_every == 0
    stop.agree(stage.engine.device)  # every rank stops after the same step
    if stop.signal is not None:
        stop.honour()  # acted on now: the watchdog stands down while the resume point is written
    if last or not (due or stop.signal is not None):
        return False
    state = {"stage": stage.index, "stage_step": step + 1, "global_step": run.global_step}
    path = save_resume(stage.engine, run.run_dir, state, stage.collator, run.rank)
    if stop.signal is None:
        return False
    run.status.update(
        status="interrupted",
        message=f"stopped by signal {stop.signal} after step {run.global_step}; "
        f"resume point {path}: resume with --resume",
    )
    stage.bar.close()
    return True


def _finish_stage(run: _Run, stage: _Stage) -> None:
    """Save the stage checkpoint, free the engine, and (rank 0) point the next resume at the next stage."""
    stage.bar.close()
    run.checkpoints.append(
        save_stage(stage.engine, run.tokenizer, run.cfg, run.speed, stage.index, run.run_dir, run.rank)
    )
    run.stop.agree(stage.engine.device)  # a signal during the save: every rank decides the same
    stage.engine.destroy()  # free this stage's optimiser state before the next stage builds its own
    stage.engine = stage.optimizer = stage.batches = stage.collator = None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if run.rank == 0:
        _record_stage(run, stage.index)


def _record_stage(run: _Run, si: int) -> None:
    """Rank 0 after stage si's checkpoint: latest.json points at the next stage, a results row for this one."""
    mark_stage_done(run.run_dir, si + 1, run.global_step, finished=si + 1 == len(run.cfg.stages))
    stage = run.cfg.stages[si]
    stage_metrics = pd.DataFrame([r for r in run.records if r["stage"] == si + 1])
    append_result(
        run.cfg.results_table or run.run_dir.root / "results.csv",
        f"pretrain/{stage.name}",
        run.cfg.seed,
        run.data_hash,
        {"model": cfgmod.to_dict(run.cfg.model), "stage": cfgmod.to_dict(stage)},
        {
            "final_loss": float(stage_metrics["loss"].tail(5).mean()),
            "final_mlm_accuracy": float(stage_metrics["mlm_accuracy"].tail(5).mean()),
            "tokens_per_s": float(stage_metrics["tokens_per_s"].median()),
        },
    )


def _stop_after_stage(run: _Run, si: int) -> bool:
    """A signal during stage si or its save, with stages left: the run stops here (True); resume starts the next."""
    more = si + 1 < len(run.cfg.stages)
    run.stop.defer(not more)  # the next stage's start-up writes nothing: stop there at once
    if run.stop.signal is None or not more:
        return False
    run.stop.honour()
    run.status.update(
        status="interrupted", message=f"stopped by signal {run.stop.signal} after stage {si + 1}; resume with --resume"
    )
    return True


def _stopped(run: _Run, exc: StopRun) -> PretrainResult:
    """A stop that ended the run at once (StopRun): run.json says where it can resume from."""
    latest = resume_point(run.run_dir.root)
    where = (
        f"resume point at step {latest['global_step']}: resume with --resume"
        if latest and not latest.get("finished")
        else "no resume point: start again"
    )
    run.status.update(status="interrupted", message=f"{exc}; {where}")
    return run.result("interrupted")


def _batches(
    rows: list[dict],
    micro_batch: int,
    collator: MaskingCollator,
    seed: int,
    rank: int = 0,
    world: int = 1,
    start: int = 0,
):
    """Endless micro-batches from micro-batch index `start`: epoch e is permutation (seed, e), same on every rank.

    Each epoch's order depends only on (seed, epoch), so a resumed run jumps straight to the batch it
    stopped at instead of replaying the data.
    """
    per_epoch = (len(rows) // world) // micro_batch  # the same on every rank, so ranks change epoch together
    if per_epoch == 0:
        raise ValueError(f"rank {rank} gets {len(rows[rank::world])} rows, fewer than one micro-batch ({micro_batch})")
    epoch, offset = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(rows))[rank::world]
        for k in range(offset, per_epoch):
            yield collator([rows[i] for i in order[k * micro_batch : (k + 1) * micro_batch]])
        epoch, offset = epoch + 1, 0
