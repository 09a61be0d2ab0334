"""Stage plans for curriculum pretraining and their validation before any work starts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import ConfigError, require
from ..masking.strategies import MaskConfig
from ..model import ModelConfig


@dataclass
class StageConfig:
    """One curriculum stage: sequence length, batch, steps, optimiser schedule and mask strategy."""

    name: str = "stage"
    seq_len: int = 64
    global_batch: int = 16
    micro_batch: int = 8
    steps: int = 20
    lr: float = 5e-4
    warmup_steps: int = 2  # DeepSpeed's WarmupLR uses max(2, warmup_steps); its first step has lr 0
    weight_decay: float = 0.01
    gradient_clipping: float = 1.0
    mask: MaskConfig = field(default_factory=MaskConfig)

    def __post_init__(self):
        require(self.seq_len >= 8, "seq_len", f"{self.seq_len} is too short; use >= 8")
        require(self.micro_batch >= 1, "micro_batch", "must be >= 1")
        require(self.global_batch >= self.micro_batch, "global_batch", f"{self.global_batch} < micro_batch {self.micro_batch}; raise it")
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(0 <= self.warmup_steps < self.steps, "warmup_steps", f"{self.warmup_steps} must be within [0, steps={self.steps})")


def _two_stage_default() -> list[StageConfig]:
    # Motian-style two stages scaled down: short sequences first, then longer ones warm-started.
    return [StageConfig(name="seq64", seq_len=64), StageConfig(name="seq128", seq_len=128, global_batch=8, micro_batch=4)]


@dataclass
class PretrainConfig:
    """What changes the trained model; SpeedConfig holds what changes only speed."""

    corpus_dir: str = "runs/corpus"
    output_dir: str = "runs/pretrain"
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list[StageConfig] = field(default_factory=_two_stage_default)
    seed: int = 0
    results_table: str | None = None  # CSV to append one row per stage; default <output_dir>/results.csv

    def __post_init__(self):
        require(len(self.stages) > 0, "stages", "give at least one stage")


@dataclass
class SpeedConfig:
    """DeepSpeed and loader settings: they change throughput and memory, not the result."""

    zero_stage: int = 2
    data_parallel_size: int = 1  # processes; the launcher's WORLD_SIZE must agree
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    deepspeed_config: str | None = None  # a JSON of extra DeepSpeed keys (env/deepspeed/*.json)
    log_every: int = 1
    # Optimiser steps between resume checkpoints (0: only at stage ends and on interrupt). A tiny CPU
    # step takes ~0.1 s and a save ~0.2 s; on a cluster, pick what losing that many steps costs.
    checkpoint_every: int = 50

    def __post_init__(self):
        require(self.zero_stage in (0, 1, 2, 3), "zero_stage", f"{self.zero_stage} is not a ZeRO stage; use 0, 1, 2 or 3")
        require(self.data_parallel_size >= 1, "data_parallel_size", "must be >= 1")
        require(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0 (0: stage ends and interrupts only)")


def gradient_accumulation(stage: StageConfig, dp: int, index: int) -> int:
    """Accumulation steps so that global = micro x accumulation x data-parallel size, or a ConfigError."""
    per_step = stage.micro_batch * dp
    if stage.global_batch % per_step:
        lo = max(per_step, stage.global_batch // per_step * per_step)
        raise ConfigError(
            f"stages[{index}].global_batch: {stage.global_batch} is not micro_batch ({stage.micro_batch}) x "
            f"accumulation x data_parallel_size ({dp}); use {lo} or {lo + per_step}, or change micro_batch")
    return stage.global_batch // per_step


def validate(cfg: PretrainConfig, speed: SpeedConfig, cuda_available: bool) -> list[int]:
    """Check the whole plan before any work; returns the accumulation steps per stage."""
    accum = []
    for i, st in enumerate(cfg.stages):
        accum.append(gradient_accumulation(st, speed.data_parallel_size, i))
        if st.seq_len > cfg.model.max_positions:
            raise ConfigError(f"stages[{i}].seq_len: {st.seq_len} exceeds model.max_positions ({cfg.model.max_positions}); "
                              f"lower seq_len or raise max_positions")
    if speed.precision in ("fp16", "bf16") and not cuda_available:
        raise ConfigError(f"speed.precision: {speed.precision} needs a CUDA GPU; use fp32 on CPU")
    names = [s.name for s in cfg.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stages[].name: names {names} repeat; give each stage its own name")
    return accum


PLANS_DIR = __import__("pathlib").Path(__file__).parent / "plans"


def load_plan(plan: str = "tiny", **overrides) -> PretrainConfig:
    """A preset plan by name (obert_lib/pretraining/plans/<name>.yaml) or a YAML path, with dotted overrides.

    Overrides use '__' or '.' between keys and list indices, e.g. {"stages.0.steps": 5}.
    """
    from ..config import load

    path = PLANS_DIR / f"{plan}.yaml"
    if not path.is_file():
        path = __import__("pathlib").Path(plan)
    if not path.is_file():
        presets = sorted(p.stem for p in PLANS_DIR.glob("*.yaml"))
        raise ConfigError(f"plan: {plan!r} is neither a preset {presets} nor an existing YAML file")
    return load(PretrainConfig, path, **overrides)
