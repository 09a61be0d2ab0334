"""Pretraining-stage distillation settings: the `pretrain` section of a DistillConfig with `stage: pretrain`.

The student learns the teacher's masked-LM distribution and hidden states on a corpus (TinyBERT's general
distillation, Jiao et al. 2020; TextBrewer, Yang et al. 2020); the hard MLM loss is optional. `train` is a
pretraining stage (pretraining.plan.StageConfig: sequence length, batch, steps, schedule, mask), so the
masking and the DeepSpeed schedule are the pretraining stage's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import require
from ..pretraining.plan import StageConfig


@dataclass
class LossWeights:
    """loss = kd·KD(T) + hidden·MSE(hidden) + mlm·CE(true tokens) + attention·MSE(attention scores).

    Defaults: TinyBERT's general distillation sums its layer losses unweighted and uses no hard labels, hence
    kd = hidden = 1, mlm = 0; attention off because it needs equal head counts (and absolute positions here)."""

    kd: float = 1.0  # MLM-logit KD at the masked positions (Hinton et al. 2015)
    hidden: float = 1.0  # hidden-state MSE over the layer map (TinyBERT eq. 8)
    mlm: float = 0.0  # the student's own MLM cross-entropy on the true tokens
    attention: float = 0.0  # pre-softmax attention-score MSE (TinyBERT eq. 7)

    def __post_init__(self):
        for name in ("kd", "hidden", "mlm", "attention"):
            value = getattr(self, name)
            require(value >= 0, name, f"{value} is negative; a loss weight must be >= 0 (0 turns the term off)")
        require(
            self.kd + self.hidden + self.mlm + self.attention > 0,
            "kd / hidden / mlm / attention",
            "all weights are 0, so there is nothing to train on; give at least one a weight > 0",
        )


def _default_train() -> StageConfig:
    # the tiny plan's first stage (pretraining/plans/tiny.yaml): 64 tokens, 16 sequences per step, lr 1e-3
    # (tiny encoders are stable at 1e-3; ~1e-4 for base-size students), 10% warm-up
    return StageConfig(name="distill", seq_len=64, global_batch=16, micro_batch=8, steps=100, lr=1e-3, warmup_steps=10)


@dataclass
class PretrainDistillConfig:
    """What the pretraining stage reads beside the teacher, student and kd sections."""

    corpus_dir: str = "runs/corpus"  # the output of `obert preprocess` (tokenizer/ and shards/), as pretraining
    train: StageConfig = field(default_factory=_default_train)  # keys of a pretraining stage (docs/pretraining)
    weights: LossWeights = field(default_factory=LossWeights)
    # (student, teacher) layer pairs, the embedding output being layer 0; null: TinyBERT's uniform map
    # (12 -> 3 layers: (0, 0), (1, 4), (2, 8), (3, 12)), which needs teacher layers a multiple of student layers
    layer_map: list[list[int]] | None = None
    zero_stage: Literal[0, 1, 2, 3] = 2  # DeepSpeed ZeRO stage of the student (the teacher stays outside)
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"  # fp16/bf16 need a GPU (the teacher stays fp32)
    deepspeed_config: str | None = None  # a JSON of extra DeepSpeed keys (env/deepspeed/*.json), as pretraining
    seed: int = 0
    # a resume point (student, projection, optimiser, schedule, RNG states, step) every N optimiser steps; a rerun
    # of the same config continues from the latest (docs/distillation.md). 0: none, a stopped run starts again
    checkpoint_every: int = 50

    def __post_init__(self):
        for i, pair in enumerate(self.layer_map or []):
            require(
                len(pair) == 2,
                f"layer_map[{i}]",
                f"{pair} is not a (student, teacher) pair; write each entry as [student_layer, teacher_layer]",
            )
        require(self.seed >= 0, "seed", f"{self.seed} must be >= 0 (numpy seeds the masking from it)")
        require(
            self.checkpoint_every >= 0,
            "checkpoint_every",
            f"{self.checkpoint_every} steps is impossible; use N >= 1 for a resume point every N optimiser steps, "
            "or 0 for none",
        )
