"""DeepSpeed for one stage: the config dict, the engine, the sums over ranks and the stage checkpoint it writes."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import torch

from .. import config as cfgmod
from .optim import build_optimizer, param_groups
from .plan import PretrainConfig, SpeedConfig, StageConfig, deepspeed_extra, scheduler_config
from .run_dir import RunDir


def single_process_env() -> None:
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
    deepspeed.initialize as a client optimiser, so there is no "optimizer" entry here; build_engine adds one
    on CUDA for AdamW, where DeepSpeed's fused Adam takes our parameter groups.
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


def model_groups(model, weight_decay: float, trust_key: bool = False) -> list[dict]:
    """The optimiser's parameter groups: optim.param_groups, and for a multi-task model (one holding an
    UncertaintyWeighting as `weighting`) its s_i in a group of their own, never decayed (multitask.param_groups).
    Their own group also keeps them fp32 under fp16/bf16: ZeRO flattens each group into one buffer of one dtype."""
    from ..multitask.uncertainty import UncertaintyWeighting
    from ..multitask.uncertainty import param_groups as uncertainty_groups

    weighting = getattr(model, "weighting", None)
    if isinstance(weighting, UncertaintyWeighting):
        return uncertainty_groups(model, weighting, weight_decay, trust_key)
    return param_groups(model, weight_decay, trust_key)


def build_engine(model, stage: StageConfig, speed: SpeedConfig, accumulation: int):
    """deepspeed.initialize for one stage: (engine, our client optimiser or None when DeepSpeed builds its own)."""
    import deepspeed

    ds_config = deepspeed_config(stage, speed, accumulation)
    if torch.cuda.is_available() and stage.optimizer == "adamw":
        # DeepSpeed builds its fused CUDA Adam from this entry (FusedAdam, adam_w_mode), over our
        # parameter groups so biases and LayerNorm weights stay undecayed. Not run here (no GPU).
        ds_config["optimizer"] = {"type": "AdamW", "params": {"lr": stage.lr, "weight_decay": stage.weight_decay}}
        engine, _, _, _ = deepspeed.initialize(
            model=model, config=ds_config, model_parameters=model_groups(model, stage.weight_decay)
        )
        return engine, None
    groups = model_groups(model, stage.weight_decay, trust_key=stage.optimizer == "lamb")
    optimizer = build_optimizer(model, stage.optimizer, stage.lr, stage.weight_decay, groups=groups)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config)
    return engine, optimizer


def sum_over_ranks(values: list[float], device) -> list[float]:
    """Element-wise sums of `values` over all ranks (the values themselves in a single process)."""
    import torch.distributed as dist

    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def save_stage(
    engine, tokenizer, cfg: PretrainConfig, speed: SpeedConfig, index: int, run_dir: RunDir, rank: int = 0
) -> Path:
    """Write stage `index` atomically: build in a temp dir, then rename (a crash never leaves a half checkpoint).

    Every rank writes its DeepSpeed shard; rank 0 writes the HF weights, tokenizer and plan and renames.
    Under ZeRO-3 every weight is partitioned across ranks: deepspeed.zero.GatheredParameters (DeepSpeed's
    public API; a collective, every rank enters it) makes them whole on every rank for the save, so each GPU
    holds one full copy of the model's (16-bit under fp16/bf16) weights for that moment.
    """
    import deepspeed
    import torch.distributed as dist

    final = run_dir.stage_checkpoint(index, cfg.stages[index].name)
    tmp = final.with_name(final.name + ".tmp")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    engine.save_checkpoint(str(tmp / "deepspeed"), tag="final")
    zero3 = engine.zero_optimization_stage() == 3
    with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None, enabled=zero3):
        if rank == 0:
            engine.module.save_pretrained(tmp, safe_serialization=True)
    if rank != 0:
        if dist.is_initialized():
            dist.barrier()
        return final
    tokenizer.save_pretrained(tmp)
    cfgmod.save(cfg, tmp / "plan.json")
    cfgmod.save(speed, tmp / "speed.json")
    (tmp / "stage.json").write_text(json.dumps({"stage": index + 1, "name": cfg.stages[index].name}), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if dist.is_initialized():
        dist.barrier()
    return final
