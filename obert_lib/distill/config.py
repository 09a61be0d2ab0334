"""Task-stage distillation configuration: teacher, student, data, kd, train. One YAML per run.

Unknown keys and impossible values are ConfigErrors naming the key, raised before any model is loaded
(config.load → from_dict; the checks that need the teacher's config follow in task.run, still before work).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import require
from ..finetuning.config import DataConfig


@dataclass
class TeacherConfig:
    checkpoint: str = "runs/finetune/best"  # a model fine-tuned by `obert finetune` (its best/ folder)


@dataclass
class StudentConfig:
    layers: int | None = 3  # the teacher truncated to k transformer layers (RBT3 keeps 3)
    pick: Literal["bottom", "uniform"] = "bottom"  # the bottom k (as RBT3), or every (L/k)-th (uniform layer map)
    checkpoint: str | None = None  # instead of truncation: a smaller pretrained checkpoint, with a fresh task head
    preset: str | None = None  # or: a freshly initialised encoder of a model preset (model.PRESETS, e.g. "small")
    classifier_dropout: float = 0.1  # the head's dropout while training (BERT's value)

    def __post_init__(self):
        from ..model.configuration import PRESETS

        given = [name for name in ("layers", "checkpoint", "preset") if getattr(self, name) is not None]
        require(
            len(given) == 1,
            "layers / checkpoint / preset",
            f"give exactly one (got {given or 'none'}): layers=k truncates the teacher, checkpoint=DIR starts from a "
            "smaller pretrained model, preset=NAME from a fresh one (set layers: null with the other two)",
        )
        require(self.preset is None or self.preset in PRESETS, "preset", f"{self.preset!r}: use one of {list(PRESETS)}")
        require(self.layers is None or self.layers >= 1, "layers", "must be >= 1 transformer layer")
        require(0 <= self.classifier_dropout < 1, "classifier_dropout", "must lie in [0, 1)")


@dataclass
class KDConfig:
    # 4: soft enough that the teacher's non-argmax classes carry signal; 1 is the teacher's plain softmax
    temperature: float = 4.0
    # Hinton et al. 2015 multiply the KD term by T² so its gradients keep their size as T changes; TextBrewer
    # and TinyBERT leave it out (distill.losses)
    t_squared: bool = True
    alpha: float = 0.5  # loss = alpha·KD + (1 − alpha)·CE(hard labels): 0.5 weighs them equally

    def __post_init__(self):
        require(
            self.temperature >= 1,
            "temperature",
            f"{self.temperature}: use T >= 1 (T < 1 sharpens beyond the teacher's softmax and turns masked choices "
            "into -inf)",
        )
        require(0 <= self.alpha <= 1, "alpha", "must lie in [0, 1] (1: KD only, 0: hard labels only)")


@dataclass
class TrainConfig:
    epochs: int = 3
    lr: float = 1e-3  # tiny encoders tolerate a high rate; use ~5e-5 for base-size students
    weight_decay: float = 0.01
    batch_size: int = 8
    seed: int = 0
    engine: Literal["torch", "deepspeed"] = "torch"
    zero_stage: Literal[0, 2] = 0  # DeepSpeed only
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"  # fp16/bf16 need a GPU and DeepSpeed
    gradient_clipping: float = 1.0

    def __post_init__(self):
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} rows per step is impossible; use >= 1")
        require(self.engine == "deepspeed" or self.zero_stage == 0, "zero_stage", "ZeRO needs engine: deepspeed")


@dataclass
class DistillConfig:
    # "task": logit KD from a fine-tuned teacher on a task's training set. The pretraining-stage variant (MLM
    # logits + hidden-state MSE, distill.losses has its losses) is not built yet.
    stage: Literal["task"] = "task"
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    max_length: int = 128
    kd: KDConfig = field(default_factory=KDConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/distill"
    results_table: str | None = None  # default <output_dir>/results.csv
    overwrite: bool = False  # replace a finished run in output_dir (otherwise refused)

    def __post_init__(self):
        require(self.max_length >= 8, "max_length", f"{self.max_length} tokens cannot hold [CLS], a text and [SEP]")
