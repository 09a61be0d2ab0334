"""Distillation configuration, one YAML per run: `stage`, then teacher, student, kd, and the stage's own
sections (task: data, max_length, train; pretrain: the `pretrain` section, distill.pretrain_config).

Unknown keys and impossible values are ConfigErrors naming the key, raised before any model is loaded
(config.load → from_dict; the checks that need the teacher's config follow in task.run / pretrain.run, still
before work). A section of the other stage is refused rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import require
from ..finetuning.config import DataConfig
from .pretrain_config import PretrainDistillConfig

DEFAULT_TEACHER = {"task": "runs/finetune/best", "pretrain": "runs/pretrain/checkpoints/stage-2-seq128"}


@dataclass
class TeacherConfig:
    # task: a model fine-tuned by `obert finetune` (its best/ folder); pretrain: any masked-LM checkpoint (a
    # pretraining stage folder, or a BERT-layout BertForMaskedLM folder). None: DEFAULT_TEACHER of the stage
    checkpoint: str | None = None


@dataclass
class StudentConfig:
    layers: int | None = 3  # the teacher truncated to k transformer layers (RBT3 keeps 3)
    pick: Literal["bottom", "uniform"] = "bottom"  # the bottom k (as RBT3), or every (L/k)-th (uniform layer map)
    checkpoint: str | None = None  # instead of truncation: a smaller pretrained checkpoint, with a fresh task head
    preset: str | None = None  # or: a freshly initialised encoder of a model preset (model.PRESETS, e.g. "small")
    classifier_dropout: float = 0.1  # task stage: the head's dropout while training (BERT's value)

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
    # task stage: loss = alpha·KD + (1 − alpha)·CE(hard labels), 0.5 weighs them equally (the pretrain stage
    # weighs its terms with pretrain.weights)
    alpha: float = 0.5

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
    # also a resume point every N optimiser steps (0: at each epoch's end only, as `obert finetune`); a rerun of
    # the same config continues from the latest (docs/distillation.md)
    resume_every: int = 0

    def __post_init__(self):
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(
            self.resume_every >= 0,
            "resume_every",
            f"{self.resume_every} steps is impossible; use N >= 1 for a resume point every N optimiser steps, "
            "or 0 for one at each epoch's end only",
        )
        require(self.lr > 0, "lr", "must be > 0")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} rows per step is impossible; use >= 1")
        require(self.engine == "deepspeed" or self.zero_stage == 0, "zero_stage", "ZeRO needs engine: deepspeed")


TASK_ONLY = "is read by stage task only"


@dataclass
class DistillConfig:
    # task: logit KD from a fine-tuned teacher on a task's training set (distill.task); pretrain: MLM-logit KD and
    # hidden-state MSE from a masked-LM teacher on a corpus (distill.pretrain)
    stage: Literal["task", "pretrain"] = "task"
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    data: DataConfig | None = None  # task stage (default: DataConfig())
    max_length: int | None = None  # task stage (default 128)
    kd: KDConfig = field(default_factory=KDConfig)
    train: TrainConfig | None = None  # task stage (default: TrainConfig())
    pretrain: PretrainDistillConfig | None = None  # pretrain stage (default: PretrainDistillConfig())
    output_dir: str = "runs/distill"
    results_table: str | None = None  # default <output_dir>/results.csv
    # start afresh in output_dir: replace a finished run or drop an unfinished one's resume points (otherwise a
    # rerun of the same config returns the finished result or resumes, and another config is refused)
    overwrite: bool = False

    def __post_init__(self):
        if self.teacher.checkpoint is None:
            self.teacher.checkpoint = DEFAULT_TEACHER[self.stage]
        if self.stage == "pretrain":
            self._check_pretrain()
            return
        require(
            self.pretrain is None,
            "pretrain",
            "is read by stage pretrain only; set stage: pretrain, or remove the section for a task-stage run",
        )
        self.data = self.data if self.data is not None else DataConfig()
        self.train = self.train if self.train is not None else TrainConfig()
        self.max_length = 128 if self.max_length is None else self.max_length
        require(self.max_length >= 8, "max_length", f"{self.max_length} tokens cannot hold [CLS], a text and [SEP]")

    def _check_pretrain(self) -> None:
        """Keys of the task stage are refused in a pretrain-stage config, each pointing at its counterpart."""
        for key, instead in (
            ("data", "pretrain.corpus_dir names the corpus"),
            ("max_length", "pretrain.train.seq_len sets the sequence length"),
            ("train", "pretrain.train holds steps, batch and lr, pretrain.zero_stage / precision the engine"),
        ):
            require(getattr(self, key) is None, key, f"{TASK_ONLY}; {instead} (remove {key}, or set stage: task)")
        require(
            self.kd.alpha == KDConfig.alpha,
            "kd.alpha",
            f"{TASK_ONLY}; the pretrain stage weighs its terms with pretrain.weights (kd, hidden, mlm, attention)",
        )
        require(
            self.student.classifier_dropout == StudentConfig.classifier_dropout,
            "student.classifier_dropout",
            f"{TASK_ONLY} (a masked-LM student has no task head); remove it",
        )
        self.pretrain = self.pretrain if self.pretrain is not None else PretrainDistillConfig()
