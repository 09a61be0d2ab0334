"""Stage plans for curriculum pretraining and their validation before any work starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import ConfigError, require
from ..masking.strategies import MaskConfig
from ..model import ModelConfig
from ..multitask.config import AuxTaskConfig, check_tasks


@dataclass
class StageConfig:
    """One curriculum stage: sequence length, batch, length (steps or tokens), optimiser, schedule and mask strategy."""

    name: str = "stage"
    seq_len: int = 64
    global_batch: int = 16
    micro_batch: int = 8
    steps: int | None = None  # optimiser steps; or give `tokens` instead (neither: DEFAULT_STEPS)
    lr: float = 5e-4
    warmup_steps: int = 2  # DeepSpeed's warm-up schedulers use max(2, warmup_steps); their first step has lr 0
    weight_decay: float = 0.01
    gradient_clipping: float = 1.0
    mask: MaskConfig = field(default_factory=MaskConfig)
    optimizer: Literal["adamw", "lamb"] = "adamw"  # lamb: optim.Lamb, needs ZeRO stage 0 (see optim.py)
    tokens: int | None = None  # training tokens instead of steps: steps = ceil(tokens / (global_batch * seq_len))
    warm_start: bool = True  # start from the previous stage's weights (False: a fresh initialisation)
    lr_schedule: Literal["warmup_linear", "warmup_constant", "warmup_cosine"] = "warmup_linear"
    # none: one paragraph per sequence; consecutive / first_fit: masking.pack_rows joins whole paragraphs up to
    # seq_len (first_fit leaves the least padding; paragraphs of different documents then share a sequence)
    packing: Literal["none", "consecutive", "first_fit"] = "none"

    def __post_init__(self):
        require(self.seq_len >= 8, "seq_len", f"{self.seq_len} is too short; use >= 8")
        require(self.micro_batch >= 1, "micro_batch", "must be >= 1")
        require(
            self.global_batch >= self.micro_batch,
            "global_batch",
            f"{self.global_batch} < micro_batch {self.micro_batch}; raise it",
        )
        require(
            self.tokens is None or self.tokens >= 1,
            "tokens",
            f"{self.tokens} must be >= 1 (or leave it out and give steps)",
        )
        if self.tokens is not None:
            from_tokens = steps_for_tokens(self.tokens, self.global_batch, self.seq_len)
            # A resolved plan (plan.json) holds both; they must agree, otherwise exactly one may be given.
            require(
                self.steps is None or self.steps == from_tokens,
                "steps",
                f"{self.steps} and tokens ({self.tokens}, i.e. ceil(tokens / (global_batch {self.global_batch} x "
                f"seq_len {self.seq_len})) = {from_tokens} steps) are both given; give exactly one of steps or tokens",
            )
            self.steps = from_tokens
        elif self.steps is None:
            self.steps = DEFAULT_STEPS
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(
            0 <= self.warmup_steps < self.steps,
            "warmup_steps",
            f"{self.warmup_steps} must be within [0, steps={self.steps})",
        )

    @property
    def stage_tokens(self) -> int:
        """Tokens this stage trains on (steps x global_batch x seq_len, padding included)."""
        return self.steps * self.global_batch * self.seq_len


DEFAULT_STEPS = 20  # a stage that gives neither steps nor tokens (the CPU demo scale)


def steps_for_tokens(tokens: int, global_batch: int, seq_len: int) -> int:
    """Optimiser steps that cover `tokens`: ceil(tokens / (global_batch x seq_len))."""
    return -(-tokens // (global_batch * seq_len))


def _two_stage_default() -> list[StageConfig]:
    # Motian-style two stages scaled down: short sequences first, then longer ones warm-started.
    return [
        StageConfig(name="seq64", seq_len=64),
        StageConfig(name="seq128", seq_len=128, global_batch=8, micro_batch=4),
    ]


@dataclass
class PretrainConfig:
    """What changes the trained model; SpeedConfig holds what changes only speed."""

    corpus_dir: str = "runs/corpus"
    output_dir: str = "runs/pretrain"
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list[StageConfig] = field(default_factory=_two_stage_default)
    seed: int = 0
    results_table: str | None = None  # CSV to append one row per stage; default <output_dir>/results.csv
    # Auxiliary tasks trained beside MLM in every stage, weighted by learned uncertainty (docs/multitask.md);
    # none: plain MLM, exactly as without this setting
    aux_tasks: list[AuxTaskConfig] = field(default_factory=list)
    uncertainty: Literal["kendall", "liebel"] = "kendall"  # the weighting of MLM and the aux tasks' losses

    def __post_init__(self):
        require(len(self.stages) > 0, "stages", "give at least one stage")
        check_tasks(self.aux_tasks)


@dataclass
class SpeedConfig:
    """DeepSpeed and loader settings: they change throughput and memory, not the result."""

    zero_stage: int = 2
    data_parallel_size: int = 1  # processes; the launcher's WORLD_SIZE must agree
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    deepspeed_config: str | None = None  # a JSON of extra DeepSpeed keys (env/deepspeed/*.json)
    log_every: int = 1
    # Optimiser steps between resume checkpoints (0: only at stage ends and on interrupt). Each one is a full
    # DeepSpeed save (weights and optimiser state): weigh its time against what losing that many steps costs.
    checkpoint_every: int = 50
    # Seconds a stop (SIGINT/SIGTERM) may wait for the current step before the run ends at once (pretraining.stop).
    stop_grace_s: float = 120.0

    def __post_init__(self):
        require(
            self.zero_stage in (0, 1, 2, 3), "zero_stage", f"{self.zero_stage} is not a ZeRO stage; use 0, 1, 2 or 3"
        )
        require(self.data_parallel_size >= 1, "data_parallel_size", "must be >= 1")
        require(self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0 (0: stage ends and interrupts only)")
        require(
            self.stop_grace_s > 0, "stop_grace_s", f"{self.stop_grace_s} must be > 0 (seconds a stop waits for a step)"
        )


# Keys the plan derives for every stage; a speed-only DeepSpeed file must not hold them.
BATCH_KEYS = frozenset({"train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"})
# The speed-only DeepSpeed configs shipped with the repository (env/deepspeed/*.json).
DEEPSPEED_DIR = Path(__file__).resolve().parents[2] / "env" / "deepspeed"


def gradient_accumulation(stage: StageConfig, dp: int, index: int) -> int:
    """Accumulation steps so that global = micro x accumulation x data-parallel size, or a ConfigError."""
    per_step = stage.micro_batch * dp
    if stage.global_batch % per_step:
        lo = max(per_step, stage.global_batch // per_step * per_step)
        raise ConfigError(
            f"stages[{index}].global_batch: {stage.global_batch} is not micro_batch ({stage.micro_batch}) x "
            f"accumulation x data_parallel_size ({dp}); use {lo} or {lo + per_step}, or change micro_batch"
        )
    return stage.global_batch // per_step


def deepspeed_extra(speed: SpeedConfig) -> dict:
    """The speed-only DeepSpeed keys of `speed.deepspeed_config` ({} when none), read and checked."""
    if not speed.deepspeed_config:
        return {}
    path = Path(speed.deepspeed_config)
    if not path.is_file():
        raise ConfigError(
            f"speed.deepspeed_config: {path} does not exist; pass one of "
            f"{sorted(p.name for p in DEEPSPEED_DIR.glob('*.json'))} from {DEEPSPEED_DIR}"
        )
    try:
        extra = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"speed.deepspeed_config: {path} is not valid JSON ({exc}); fix the file") from None
    if not isinstance(extra, dict):
        raise ConfigError(f"speed.deepspeed_config: {path} must hold a JSON object of DeepSpeed keys")
    clash = sorted(BATCH_KEYS & set(extra))
    if clash:
        raise ConfigError(f"speed.deepspeed_config: remove {clash} from {path}; batch sizes come from the stage plan")
    return extra


def zero_stage(speed: SpeedConfig) -> int:
    """The ZeRO stage DeepSpeed will run: the deepspeed_config file's zero_optimization.stage (merged last by
    trainer.deepspeed_config) when it sets one, else speed.zero_stage."""
    stage = deepspeed_extra(speed).get("zero_optimization", {}).get("stage")
    return speed.zero_stage if stage is None else int(stage)


def validate(cfg: PretrainConfig, speed: SpeedConfig, cuda_available: bool) -> list[int]:
    """Check the whole plan before any work; returns the accumulation steps per stage."""
    accum = []
    zero = zero_stage(speed)
    for i, st in enumerate(cfg.stages):
        accum.append(gradient_accumulation(st, speed.data_parallel_size, i))
        if cfg.model.position == "absolute" and st.seq_len > cfg.model.max_positions:  # relative/rotary: no table
            raise ConfigError(
                f"stages[{i}].seq_len: {st.seq_len} exceeds model.max_positions ({cfg.model.max_positions}); "
                f"lower stages[{i}].seq_len to <= {cfg.model.max_positions} "
                f"or raise model.max_positions to >= {st.seq_len}"
            )
        if not 0 <= st.warmup_steps < st.steps:
            raise ConfigError(
                f"stages[{i}].warmup_steps: {st.warmup_steps} must be within [0, stages[{i}].steps={st.steps}) "
                f"for lr_schedule {st.lr_schedule}; lower warmup_steps or give more steps/tokens"
            )
        for j, entry in enumerate(st.mask.schedule):
            if entry.from_step >= st.steps:
                raise ConfigError(
                    f"stages[{i}].mask.schedule[{j}].from_step: {entry.from_step} is not below the stage's "
                    f"stages[{i}].steps ({st.steps}), so this mixture never applies; lower from_step below "
                    f"{st.steps} or remove the entry"
                )
        if st.optimizer == "lamb" and zero > 0:
            raise ConfigError(
                f"stages[{i}].optimizer: lamb computes a trust ratio per parameter tensor, but ZeRO stage {zero} "
                f"(speed.zero_stage / speed.deepspeed_config) hands the optimiser flat partitions mixing layers; "
                f"set speed.zero_stage=0 with a ZeRO-0 speed config (env/deepspeed/v100_fp16_zero0.json), "
                f"or use optimizer adamw"
            )
    if speed.precision in ("fp16", "bf16") and not cuda_available:
        raise ConfigError(f"speed.precision: {speed.precision} needs a CUDA GPU; use fp32 on CPU")
    import torch

    # cuda_available is also True for a launch onto other machines (gpus / hostfile) from a head node without
    # CUDA: the GPU's capability can only be read where one is, so the check runs there (on each rank).
    if speed.precision == "bf16" and cuda_available and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        if major < 8:  # bf16 tensor cores arrived with Ampere (compute capability 8.0); a V100 is 7.0
            raise ConfigError(
                f"speed.precision: bf16 needs an Ampere or newer GPU, this one has compute capability "
                f"{major}.{minor}; use fp16 (dynamic loss scaling) on V100"
            )
    names = [s.name for s in cfg.stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"stages[].name: names {names} repeat; give each stage its own name")
    _validate_aux_tasks(cfg)
    return accum


def _validate_aux_tasks(cfg: PretrainConfig) -> None:
    """Aux tasks' files exist and their pairs fit the model's positions (ConfigError naming the key)."""
    from ..paths import resolve_data_path

    for i, task in enumerate(cfg.aux_tasks):
        if task.path is not None and not resolve_data_path(task.path).is_file():
            raise ConfigError(
                f"aux_tasks[{i}].path: {resolve_data_path(task.path)} does not exist; give an existing JSONL "
                "file of pairs (docs/multitask.md)"
            )
        if cfg.model.position == "absolute" and (task.max_length or 0) > cfg.model.max_positions:
            raise ConfigError(
                f"aux_tasks[{i}].max_length: {task.max_length} exceeds model.max_positions "
                f"({cfg.model.max_positions}); lower it to <= {cfg.model.max_positions}"
            )


def scheduler_config(stage: StageConfig) -> dict:
    """The DeepSpeed "scheduler" entry of a stage (deepspeed.runtime.lr_schedules, stepped once per optimiser step).

    warmup_linear: WarmupDecayLR, linear warm-up from 0 to lr, then linear decay to 0 at `steps`.
    warmup_constant: WarmupLR, linear warm-up, then constant lr.
    warmup_cosine: WarmupCosineLR, linear warm-up, then cosine decay to cos_min_ratio x lr; it scales the
    optimiser's own lr (the client optimiser must be built with lr=stage.lr), it has no max-lr parameter.
    DeepSpeed warms up over max(2, warmup_num_steps) steps and rejects 0, hence max(1, warmup_steps).
    """
    warmup = max(1, stage.warmup_steps)
    if stage.lr_schedule == "warmup_linear":
        return {
            "type": "WarmupDecayLR",
            "params": {
                "warmup_min_lr": 0.0,
                "warmup_max_lr": stage.lr,
                "warmup_num_steps": warmup,
                "total_num_steps": stage.steps,
                "warmup_type": "linear",
            },
        }
    if stage.lr_schedule == "warmup_constant":
        return {
            "type": "WarmupLR",
            "params": {
                "warmup_min_lr": 0.0,
                "warmup_max_lr": stage.lr,
                "warmup_num_steps": warmup,
                "warmup_type": "linear",
            },
        }
    if stage.lr_schedule == "warmup_cosine":
        return {
            "type": "WarmupCosineLR",
            "params": {
                "total_num_steps": stage.steps,
                "warmup_min_ratio": 0.0,
                "warmup_num_steps": warmup,
                "cos_min_ratio": 0.0001,
                "warmup_type": "linear",
            },
        }
    raise ConfigError(
        f"lr_schedule: {stage.lr_schedule!r} is unknown; use warmup_linear, warmup_constant or warmup_cosine"
    )


PLANS_DIR = Path(__file__).parent / "plans"


def load_plan(plan: str = "tiny", **overrides) -> PretrainConfig:
    """A preset plan by name (obert_lib/pretraining/plans/<name>.yaml) or a YAML path, with dotted overrides.

    Overrides use '__' or '.' between keys and list indices, e.g. {"stages.0.steps": 5}.
    """
    from ..config import load

    path = PLANS_DIR / f"{plan}.yaml"
    if not path.is_file():
        path = Path(plan)
    if not path.is_file():
        presets = sorted(p.stem for p in PLANS_DIR.glob("*.yaml"))
        raise ConfigError(f"plan: {plan!r} is neither a preset {presets} nor an existing YAML file")
    return load(PretrainConfig, path, **overrides)
