"""Staged pretraining through deepspeed.initialize: one engine per stage, warm start from the previous stage."""
from __future__ import annotations

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
from ..masking import KnowledgeSegments, MaskingCollator
from ..model import build_masked_lm, count_parameters
from ..results import append_result
from .plan import PretrainConfig, SpeedConfig, StageConfig, validate


@dataclass
class PretrainResult:
    output_dir: Path
    checkpoints: list[Path]
    metrics: pd.DataFrame
    parameters: int


def _single_process_env() -> None:
    """torch.distributed env for a run without a launcher (notebook cell, test): world of one."""
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)


def deepspeed_config(stage: StageConfig, speed: SpeedConfig, accumulation: int) -> dict:
    """The DeepSpeed config dict of one stage (batch keys always consistent by construction)."""
    extra = {}
    if speed.deepspeed_config:
        extra = json.loads(Path(speed.deepspeed_config).read_text())
        clash = {"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"} & set(extra)
        if clash:
            raise cfgmod.ConfigError(f"speed.deepspeed_config: remove {sorted(clash)}; batch sizes come from the stage plan")
    cfg = {
        "train_batch_size": stage.global_batch,
        "train_micro_batch_size_per_gpu": stage.micro_batch,
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": stage.gradient_clipping,
        # torch_adam: DeepSpeed's fused Adam is CUDA-only; torch's AdamW runs on CPU and GPU.
        "optimizer": {"type": "AdamW", "params": {"lr": stage.lr, "weight_decay": stage.weight_decay, "torch_adam": True}},
        "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_min_lr": 0.0, "warmup_max_lr": stage.lr,
                                                          "warmup_num_steps": stage.warmup_steps, "total_num_steps": stage.steps,
                                                          "warmup_type": "linear"}},
        "zero_optimization": {"stage": speed.zero_stage},
        "steps_per_print": 10**9,  # we log ourselves
        "wall_clock_breakdown": False,
    }
    if speed.precision == "fp16":
        cfg["fp16"] = {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    elif speed.precision == "bf16":
        cfg["bf16"] = {"enabled": True}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def _batches(rows: list[dict], micro_batch: int, collator: MaskingCollator, seed: int, rank: int = 0, world: int = 1):
    """Endless micro-batches: a fresh permutation each epoch (same on every rank), this rank's 1/world share."""
    rng = np.random.default_rng(seed)
    epoch = 0
    while True:
        order = rng.permutation(len(rows))[rank::world]
        for start in range(0, len(order) - micro_batch + 1, micro_batch):
            yield collator([rows[i] for i in order[start : start + micro_batch]])
        epoch += 1


def run(cfg: PretrainConfig | dict | str | None = None, speed: SpeedConfig | dict | None = None, progress: bool = True) -> PretrainResult:
    """Train every stage of the plan; a HF checkpoint (+ DeepSpeed state, resolved plan) after each stage."""
    import deepspeed
    from transformers import AutoTokenizer, BertForMaskedLM

    cfg = cfgmod.load(PretrainConfig, cfg)
    speed = cfgmod.load(SpeedConfig, speed)
    accumulation = validate(cfg, speed, torch.cuda.is_available())
    corpus_dir = Path(cfg.corpus_dir)
    tokenizer = AutoTokenizer.from_pretrained(corpus_dir / "tokenizer")
    rows = load_shards(corpus_dir).to_pylist()
    smallest = min(st.micro_batch for st in cfg.stages)
    if len(rows) < smallest:
        raise ValueError(f"corpus has {len(rows)} paragraphs, fewer than one micro-batch ({smallest})")
    data_hash = json.loads((corpus_dir / "stats.json").read_text()).get("data_hash", "") if (corpus_dir / "stats.json").exists() else ""

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    _single_process_env()
    if int(os.environ["WORLD_SIZE"]) != speed.data_parallel_size:
        raise cfgmod.ConfigError(f"speed.data_parallel_size: {speed.data_parallel_size} but the launcher started "
                                 f"{os.environ['WORLD_SIZE']} processes; make them equal")
    rank = int(os.environ["RANK"])
    out = Path(cfg.output_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    if rank == 0:
        cfgmod.save(cfg, out / "plan.json")
        cfgmod.save(speed, out / "speed.json")

    model = build_masked_lm(cfg.model, len(tokenizer), tokenizer.pad_token_id, seed=cfg.seed)
    n_params = count_parameters(model)
    records: list[dict] = []
    checkpoints: list[Path] = []
    global_step = 0
    for si, (stage, accum) in enumerate(zip(cfg.stages, accumulation)):
        if checkpoints:  # warm start: the previous stage's weights, a fresh optimiser and schedule
            model = BertForMaskedLM.from_pretrained(checkpoints[-1])
        torch.manual_seed(cfg.seed + si)
        engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                               config=deepspeed_config(stage, speed, accum))
        knowledge = KnowledgeSegments.from_corpus(corpus_dir, tokenizer) if stage.mask.knowledge.enabled else None
        collator = MaskingCollator(tokenizer, stage.mask, stage.seq_len, seed=cfg.seed * 1000 + si, knowledge=knowledge)
        batches = _batches(rows, stage.micro_batch, collator, seed=cfg.seed * 1000 + si, rank=rank, world=speed.data_parallel_size)
        engine.train()
        bar = tqdm(range(stage.steps), desc=f"stage {si + 1}/{len(cfg.stages)} {stage.name}", disable=not progress or rank != 0)
        for step in bar:
            t0 = time.perf_counter()
            losses, correct, targets, tokens = [], 0, 0, 0
            lr = float(engine.optimizer.param_groups[0]["lr"])  # the rate this step's update uses
            collator.set_step(step)  # a mask schedule counts this stage's optimiser steps
            for _ in range(accum):
                batch = next(batches)
                outputs = engine(**batch)
                engine.backward(outputs.loss)
                engine.step()
                losses.append(outputs.loss.item())
                with torch.no_grad():
                    mask = batch["labels"] != -100  # [B, T]
                    correct += int((outputs.logits.argmax(-1)[mask] == batch["labels"][mask]).sum())
                    targets += int(mask.sum())
                tokens += int(batch["attention_mask"].sum())
            global_step += 1
            dt = time.perf_counter() - t0
            rec = {"global_step": global_step, "stage": si + 1, "stage_name": stage.name, "stage_step": step + 1,
                   "seq_len": stage.seq_len, "global_batch": stage.global_batch, "strategy": stage.mask.label,
                   "loss": float(np.mean(losses)), "mlm_accuracy": correct / max(1, targets),
                   "lr": lr, "tokens_per_s": tokens / dt}
            records.append(rec)
            if step % speed.log_every == 0:
                bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['mlm_accuracy']:.3f}")
        model = engine.module
        checkpoints.append(_save_stage(engine, tokenizer, cfg, speed, si, out, rank))
        if rank != 0:
            continue
        stage_metrics = pd.DataFrame([r for r in records if r["stage"] == si + 1])
        append_result(cfg.results_table or out / "results.csv", f"pretrain/{stage.name}", cfg.seed, data_hash,
                      {"model": cfgmod.to_dict(cfg.model), "stage": cfgmod.to_dict(stage)},
                      {"final_loss": float(stage_metrics["loss"].tail(5).mean()),
                       "final_mlm_accuracy": float(stage_metrics["mlm_accuracy"].tail(5).mean()),
                       "tokens_per_s": float(stage_metrics["tokens_per_s"].median())})
    metrics = pd.DataFrame(records)
    if rank == 0:
        metrics.to_csv(out / "metrics.csv", index=False)
    return PretrainResult(output_dir=out, checkpoints=checkpoints, metrics=metrics, parameters=n_params)


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
    if rank != 0:
        if dist.is_initialized():
            dist.barrier()
        return final
    engine.module.save_pretrained(tmp, safe_serialization=True)
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
