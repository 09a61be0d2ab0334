"""Staged pretraining through deepspeed.initialize: one engine per stage, warm start from the previous stage."""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import config as cfgmod
from ..corpus import load_shards
from ..masking import KnowledgeSegments, MaskingCollator, SynonymTable, corpus_words
from ..model import build_masked_lm, count_parameters, load_masked_lm
from ..results import append_result
from .guards import TrainingDiverged, TrainingGuard, loss_scale
from .optim import build_optimizer, param_groups
from .build_locks import clear_stale_build_locks
from .plan import PretrainConfig, SpeedConfig, StageConfig, deepspeed_extra, scheduler_config, validate
from .preflight import check_corpus, check_stage_sizes, load_tokenizer, stage_rows
from .resume import (check_resume, read_rng_states, resume_dir, resume_point, save_resume, set_rng_states,
                     write_json_atomic)
from .run_lock import RunLock
from .stop import StopRequest, StopRun
from .throughput import mfu, model_flops_per_token, peak_flops


@dataclass
class PretrainResult:
    output_dir: Path
    checkpoints: list[Path]
    metrics: pd.DataFrame
    parameters: int
    status: str = "finished"  # or "interrupted" (a resume point was written; run again with resume=True)


def _single_process_env() -> None:
    """torch.distributed env for a run without a launcher (notebook cell, test): world of one."""
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)


def deepspeed_config(stage: StageConfig, speed: SpeedConfig, accumulation: int) -> dict:
    """The DeepSpeed config dict of one stage (batch keys always consistent by construction).

    The optimiser is ours (pretraining.optim: AdamW or LAMB, no decay on biases/LayerNorm), passed to
    deepspeed.initialize as a client optimiser, so there is no "optimizer" entry here; run() adds one on
    CUDA for AdamW, where DeepSpeed's fused Adam takes our parameter groups.
    """
    cfg = {
        "train_batch_size": stage.global_batch,
        "train_micro_batch_size_per_gpu": stage.micro_batch,
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": stage.gradient_clipping,
        "scheduler": scheduler_config(stage),
        "zero_optimization": {"stage": speed.zero_stage},
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
    }
    if speed.precision == "fp16":  # dynamic loss scaling (loss_scale 0) from 2^16, DeepSpeed's defaults otherwise
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    elif speed.precision == "bf16":
        cfg["bf16"] = {"enabled": True}
    for key, value in deepspeed_extra(speed).items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def _batches(rows: list[dict], micro_batch: int, collator: MaskingCollator, seed: int, rank: int = 0, world: int = 1,
             start: int = 0):
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


def _sum_over_ranks(values: list[float], device) -> list[float]:
    """Element-wise sums of `values` over all ranks (the values themselves in a single process)."""
    import torch.distributed as dist

    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


class RunStatus:
    """<output_dir>/run.json: pid, status (running/finished/interrupted/failed/diverged), progress; rank 0 writes it."""

    def __init__(self, out: Path, total_steps: int, enabled: bool):
        self.path, self.enabled = out / "run.json", enabled
        self.data = {"pid": os.getpid(), "host": socket.gethostname(), "status": "running", "global_step": 0, "total_steps": total_steps, "stage": 0,
                     "started": _now(), "message": ""}

    def update(self, **fields) -> None:
        self.data.update(fields, updated=_now())
        if self.enabled:
            write_json_atomic(self.path, self.data)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


METRIC_COLUMNS = ["global_step", "stage", "stage_name", "stage_step", "seq_len", "global_batch", "strategy", "loss",
                  "mlm_accuracy", "lr", "tokens", "tokens_per_s", "loss_scale", "mfu"]


def _append_metrics(path: Path, record: dict) -> None:
    """One row per optimiser step, flushed at once (a live view or a resumed run reads it)."""
    new = not path.exists()
    with open(path, "a", encoding="utf-8") as fh:
        pd.DataFrame([record], columns=METRIC_COLUMNS).to_csv(fh, header=new, index=False)


class _NoBoard:
    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _board(out: Path, rank: int, purge_step: int | None = None):
    """A TensorBoard writer on rank 0 (`tensorboard --logdir <output_dir>/tensorboard`); others write nothing.

    purge_step: on resume, TensorBoard hides what a killed run logged from that step on.
    """
    if rank != 0:
        return _NoBoard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"), flush_secs=10, purge_step=purge_step)


def run(cfg: PretrainConfig | dict | str | None = None, speed: SpeedConfig | dict | None = None, progress: bool = True,
        resume: bool = False) -> PretrainResult:
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
    out = Path(cfg.output_dir)
    if resume and resume_point(out) is None:
        raise FileNotFoundError(f"resume: no resume point under {out}/checkpoints/resume; start without --resume")
    corpus_dir = check_corpus(cfg.corpus_dir)
    rank = int(os.environ.get("RANK", "0"))  # the launcher's; a single process is rank 0
    with RunLock(out) if rank == 0 else contextlib.nullcontext():  # rank 0 holds the folder for the whole run
        point = check_resume(out, cfg, speed) if resume else None
        status = RunStatus(out, sum(st.steps for st in cfg.stages), enabled=rank == 0)
        status.data["global_step"] = point["global_step"] if point else 0
        progress_so_far = {"checkpoints": [], "records": [], "parameters": 0}
        abort = functools.partial(status.update, status="interrupted")
        with StopRequest(speed.stop_grace_s, on_abort=lambda message: abort(message=message)) as stop:
            try:
                return _train(cfg, speed, accumulation, out, corpus_dir, rank, point, status, stop, progress,
                              progress_so_far)
            except StopRun as exc:
                latest = resume_point(out)
                where = (f"resume point at step {latest['global_step']}: resume with --resume" if latest
                         and not latest.get("finished") else "no resume point: start again")
                status.update(status="interrupted", message=f"{exc}; {where}")
                return PretrainResult(out, progress_so_far["checkpoints"], pd.DataFrame(progress_so_far["records"]),
                                      progress_so_far["parameters"], status="interrupted")


def _clear_earlier_run(out: Path, point: dict | None, metrics_path: Path) -> list[dict]:
    """Rank 0, before training: keep the metrics up to the resume point, or clear an earlier run's files."""
    if point is not None and metrics_path.exists():  # keep the rows up to the resume point, drop any after it
        kept = pd.read_csv(metrics_path)
        kept = kept[kept["global_step"] <= point["global_step"]]
        kept.to_csv(metrics_path.with_name("metrics.csv.tmp"), index=False)
        os.replace(metrics_path.with_name("metrics.csv.tmp"), metrics_path)  # a new file: live readers start over
        return kept.to_dict("records")
    if point is None:  # a fresh run: nothing of an earlier run in this directory may mix into it
        if resume_dir(out).exists() or metrics_path.exists():
            logging.getLogger(__name__).warning("starting afresh in %s: removing the earlier run's metrics, resume "
                                                "points and TensorBoard events (resume=True continues it instead)", out)
        metrics_path.unlink(missing_ok=True)
        shutil.rmtree(resume_dir(out), ignore_errors=True)
        shutil.rmtree(out / "tensorboard", ignore_errors=True)
    return []


def _train(cfg: PretrainConfig, speed: SpeedConfig, accumulation: list[int], out: Path, corpus_dir: Path, rank: int,
           point: dict | None, status: RunStatus, stop: StopRequest, progress: bool, so_far: dict) -> PretrainResult:
    """run()'s work once the folder is locked and the stop handler installed; `so_far` follows its progress."""
    import deepspeed

    tokenizer = load_tokenizer(corpus_dir)
    rows = load_shards(corpus_dir).to_pylist()
    check_stage_sizes(cfg, rows, speed.data_parallel_size)
    resumed_rng = read_rng_states(Path(point["path"]), rank) if point and point["stage_step"] else None
    stats = corpus_dir / "stats.json"
    data_hash = json.loads(stats.read_text()).get("data_hash", "") if stats.exists() else ""

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    _single_process_env()
    if int(os.environ["WORLD_SIZE"]) != speed.data_parallel_size:
        raise cfgmod.ConfigError(f"speed.data_parallel_size: {speed.data_parallel_size} but the launcher started "
                                 f"{os.environ['WORLD_SIZE']} processes; make them equal")
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.csv"
    records: list[dict] = so_far["records"]
    if rank == 0:
        cfgmod.save(cfg, out / "plan.json")
        cfgmod.save(speed, out / "speed.json")
        records += _clear_earlier_run(out, point, metrics_path)
    status.update(global_step=point["global_step"] if point else 0)

    first_stage = point["stage"] if point else 0
    checkpoints = so_far["checkpoints"]
    checkpoints += [out / "checkpoints" / f"stage-{i + 1}-{st.name}" for i, st in enumerate(cfg.stages[:first_stage])]

    def stage_model(si: int):
        """Stage si's starting weights: fresh for the first stage (or warm_start false), else the previous stage's."""
        if si > 0 and cfg.stages[si].warm_start:  # architecture and weights from the checkpoint
            return load_masked_lm(checkpoints[si - 1], cfg.model)
        return build_masked_lm(cfg.model, len(tokenizer), tokenizer.pad_token_id, seed=cfg.seed + si)

    model = stage_model(first_stage)
    n_params = so_far["parameters"] = count_parameters(model)
    global_step = point["global_step"] if point else 0
    clear_stale_build_locks()  # a build killed earlier must not block DeepSpeed's op loading forever
    with _board(out, rank, purge_step=global_step + 1 if point else None) as board:
        try:
            for si in range(first_stage, len(cfg.stages)):
                stop.check()  # a signal that came while the previous stage was saved
                stage, accum = cfg.stages[si], accumulation[si]
                start_step = point["stage_step"] if point and si == first_stage else 0
                if si > first_stage:  # a fresh optimiser and schedule each stage
                    model = stage_model(si)
                synonyms = None
                if stage.mask.synonym.enabled and stage.mask.synonym.source == "embeddings":
                    # neighbours in the input embeddings the stage starts from (the previous stage's, when warm-started)
                    synonyms = SynonymTable.from_embeddings(
                        model.get_input_embeddings().weight.detach().float().cpu().numpy(), corpus_words(rows),
                        stage.mask.synonym.top_k, stage.mask.synonym.temperature)
                torch.manual_seed(cfg.seed + si)
                ds_config, optimizer = deepspeed_config(stage, speed, accum), None
                if torch.cuda.is_available() and stage.optimizer == "adamw":
                    # DeepSpeed builds its fused CUDA Adam from this entry (FusedAdam, adam_w_mode), over our
                    # parameter groups so biases and LayerNorm weights stay undecayed. Not run here (no GPU).
                    ds_config["optimizer"] = {"type": "AdamW", "params": {"lr": stage.lr, "weight_decay": stage.weight_decay}}
                    engine, _, _, _ = deepspeed.initialize(model=model, config=ds_config,
                                                           model_parameters=param_groups(model, stage.weight_decay))
                else:
                    optimizer = build_optimizer(model, stage.optimizer, stage.lr, stage.weight_decay)
                    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
                guard = TrainingGuard()
                flops_per_token = model_flops_per_token(n_params, cfg.model.layers, cfg.model.hidden, stage.seq_len)
                peak = peak_flops(torch.cuda.get_device_name(), speed.precision) if torch.cuda.is_available() else None
                knowledge = KnowledgeSegments.from_corpus(corpus_dir, tokenizer) if stage.mask.knowledge.enabled else None
                collator = MaskingCollator(tokenizer, stage.mask, stage.seq_len, seed=cfg.seed * 1000 + si, knowledge=knowledge,
                                           synonyms=synonyms)
                if start_step:
                    engine.load_checkpoint(point["path"] + "/deepspeed", tag="resume")
                    set_rng_states(resumed_rng, collator)
                batches = _batches(stage_rows(rows, stage), stage.micro_batch, collator, seed=cfg.seed * 1000 + si,
                                   rank=rank, world=speed.data_parallel_size, start=start_step * accum)
                engine.train()
                bar = tqdm(range(start_step, stage.steps), desc=f"stage {si + 1}/{len(cfg.stages)} {stage.name}",
                           disable=not progress or rank != 0, initial=start_step, total=stage.steps)
                stop.defer(True)  # from here a signal waits for the end of the step (and a resume point)
                for step in bar:
                    t0 = time.perf_counter()
                    losses, correct, targets, tokens = [], 0, 0, 0
                    lr = float(engine.optimizer.param_groups[0]["lr"])  # the rate this step's update uses
                    collator.set_step(step)  # a mask schedule counts this stage's optimiser steps
                    for _ in range(accum):
                        batch = next(batches)
                        outputs = engine(**batch)
                        engine.backward(outputs.loss)
                        try:
                            engine.step()
                        except Exception as exc:  # ZeRO 1-3 raise a bare Exception when the loss scale hits its floor
                            diverged = guard.from_deepspeed_error(global_step + 1, exc)
                            if diverged is None:
                                raise
                            raise diverged from exc
                        losses.append(outputs.loss.item())
                        with torch.no_grad():
                            mask = batch["labels"] != -100  # [B, T]
                            correct += int((outputs.logits.argmax(-1)[mask] == batch["labels"][mask]).sum())
                            targets += int(mask.sum())
                        tokens += int(batch["attention_mask"].sum())
                    global_step += 1
                    # over all ranks: the guard and the metrics see the whole global batch, not rank 0's share
                    loss_sum, n_loss, correct, targets, tokens = _sum_over_ranks(
                        [float(np.sum(losses)), len(losses), correct, targets, tokens], engine.device)
                    dt = time.perf_counter() - t0
                    rec = {"global_step": global_step, "stage": si + 1, "stage_name": stage.name, "stage_step": step + 1,
                           "seq_len": stage.seq_len, "global_batch": stage.global_batch, "strategy": stage.mask.label,
                           "loss": loss_sum / n_loss, "mlm_accuracy": correct / max(1, targets),
                           "lr": lr, "tokens": int(tokens), "tokens_per_s": tokens / dt, "loss_scale": loss_scale(engine),
                           "mfu": mfu(tokens / dt, flops_per_token, peak, devices=speed.data_parallel_size) if peak else None}
                    guard.check(global_step, rec["loss"], rec["loss_scale"])  # TrainingDiverged before any save
                    records.append(rec)
                    if rank == 0:
                        _append_metrics(metrics_path, rec)
                        for key in ("loss", "mlm_accuracy", "lr", "tokens_per_s", "loss_scale", "mfu"):
                            if rec[key] is not None:
                                board.add_scalar(f"train/{key}", rec[key], global_step)
                    status.update(global_step=global_step, stage=si + 1)
                    if step % speed.log_every == 0:
                        bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['mlm_accuracy']:.3f}")
                    last = step + 1 == stage.steps
                    due = speed.checkpoint_every and (step + 1) % speed.checkpoint_every == 0
                    stop.agree(engine.device)  # every rank stops after the same step
                    if stop.signal is not None:
                        stop.honour()  # acted on now: the watchdog stands down while the resume point is written
                    if (due or stop.signal is not None) and not last:
                        state = {"stage": si, "stage_step": step + 1, "global_step": global_step}
                        path = save_resume(engine, out, state, collator, rank)
                        if stop.signal is not None:
                            status.update(status="interrupted", message=f"stopped by signal {stop.signal} after step "
                                          f"{global_step}; resume point {path}: resume with --resume")
                            bar.close()
                            return PretrainResult(out, checkpoints, pd.DataFrame(records), n_params,
                                                  status="interrupted")
                bar.close()
                checkpoints.append(_save_stage(engine, tokenizer, cfg, speed, si, out, rank))
                stop.agree(engine.device)  # a signal during the save: every rank decides the same
                engine.destroy()  # free this stage's optimiser state before the next stage builds its own
                del engine, optimizer, batches, collator
                model = None
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if rank == 0:  # the next resume starts the next stage from this checkpoint, or there is none
                    _stage_done(cfg, out, si, global_step, records, data_hash)
                stop.defer(si + 1 == len(cfg.stages))  # the next stage's start-up writes nothing: stop there at once
                if stop.signal is not None and si + 1 < len(cfg.stages):
                    stop.honour()
                    status.update(status="interrupted",
                                  message=f"stopped by signal {stop.signal} after stage {si + 1}; resume with --resume")
                    return PretrainResult(out, checkpoints, pd.DataFrame(records), n_params, status="interrupted")
        except TrainingDiverged as exc:  # the last stage checkpoint and resume point stay as they were
            status.update(status="diverged", message=str(exc))
            raise
        except StopRun:
            raise
        except BaseException as exc:
            status.update(status="failed", message=f"{type(exc).__name__}: {exc}")
            raise
    status.update(status="finished", message=f"{len(checkpoints)} stage checkpoints")
    return PretrainResult(output_dir=out, checkpoints=checkpoints, metrics=pd.DataFrame(records), parameters=n_params)


def _stage_done(cfg: PretrainConfig, out: Path, si: int, global_step: int, records: list[dict], data_hash: str) -> None:
    """Rank 0 after stage si's checkpoint: latest.json points at the next stage, a results row for this one."""
    root = resume_dir(out)
    root.mkdir(parents=True, exist_ok=True)
    finished = si + 1 == len(cfg.stages)
    write_json_atomic(root / "latest.json", {"path": "", "stage": si + 1, "stage_step": 0, "global_step": global_step,
                                             "finished": finished})
    for old in root.glob("step-*"):  # mid-stage points of a finished stage are not needed any more
        shutil.rmtree(old, ignore_errors=True)
    stage = cfg.stages[si]
    stage_metrics = pd.DataFrame([r for r in records if r["stage"] == si + 1])
    append_result(cfg.results_table or out / "results.csv", f"pretrain/{stage.name}", cfg.seed, data_hash,
                  {"model": cfgmod.to_dict(cfg.model), "stage": cfgmod.to_dict(stage)},
                  {"final_loss": float(stage_metrics["loss"].tail(5).mean()),
                   "final_mlm_accuracy": float(stage_metrics["mlm_accuracy"].tail(5).mean()),
                   "tokens_per_s": float(stage_metrics["tokens_per_s"].median())})


def _save_stage(engine, tokenizer, cfg: PretrainConfig, speed: SpeedConfig, index: int, out: Path, rank: int = 0) -> Path:
    """Write stage `index` atomically: build in a temp dir, then rename (a crash never leaves a half checkpoint).

    Every rank writes its DeepSpeed shard; rank 0 writes the HF weights, tokenizer and plan and renames.
    """
    import torch.distributed as dist

    final = out / "checkpoints" / f"stage-{index + 1}-{cfg.stages[index].name}"
    tmp = final.with_name(final.name + ".tmp")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    engine.save_checkpoint(str(tmp / "deepspeed"), tag="final")
    # ZeRO-3 partitions every weight across ranks: gather full ones (a collective: every rank calls it)
    full_state = engine._zero3_consolidated_16bit_state_dict() if engine.zero_optimization_stage() == 3 else None
    if rank != 0:
        if dist.is_initialized():
            dist.barrier()
        return final
    engine.module.save_pretrained(tmp, safe_serialization=True, state_dict=full_state)
    tokenizer.save_pretrained(tmp)
    cfgmod.save(cfg, tmp / "plan.json")
    cfgmod.save(speed, tmp / "speed.json")
    (tmp / "stage.json").write_text(json.dumps({"stage": index + 1, "name": cfg.stages[index].name}), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if dist.is_initialized():
        dist.barrier()
    return final


def plot_losses(metrics: pd.DataFrame):
    """MLM loss and accuracy over global steps, one colour per stage."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for (stage, name), part in metrics.groupby(["stage", "stage_name"]):
        axes[0].plot(part["global_step"], part["loss"], label=f"{stage}: {name}")
        axes[1].plot(part["global_step"], part["mlm_accuracy"], label=f"{stage}: {name}")
    axes[0].set(title="MLM 损失 loss", xlabel="step")
    axes[1].set(title="MLM 准确率 accuracy", xlabel="step")
    axes[0].legend()
    fig.tight_layout()
    return fig


def plan_table(cfg: PretrainConfig | dict | str, speed: SpeedConfig | dict | None = None) -> pd.DataFrame:
    """The stage plan as a table, with the accumulation each stage needs (validated)."""
    cfg = cfgmod.load(PretrainConfig, cfg)
    speed = cfgmod.load(SpeedConfig, speed)
    accum = validate(cfg, speed, torch.cuda.is_available())
    return pd.DataFrame([{"stage": s.name, "seq_len": s.seq_len, "global_batch": s.global_batch, "micro_batch": s.micro_batch,
                          "accumulation": a, "steps": s.steps, "lr": s.lr, "strategy": s.mask.label,
                          "tokens": s.steps * s.global_batch * s.seq_len} for s, a in zip(cfg.stages, accum)])


def latest_checkpoint(output_dir: str | Path) -> Path:
    """The last completed stage checkpoint of a pretraining output directory."""
    stages = sorted((Path(output_dir) / "checkpoints").glob("stage-*"), key=lambda p: int(p.name.split("-")[1]))
    stages = [p for p in stages if not p.name.endswith(".tmp") and (p / "config.json").is_file()]
    if not stages:
        raise FileNotFoundError(f"no completed stage checkpoint under {output_dir}/checkpoints: run pretraining first")
    return stages[-1]
