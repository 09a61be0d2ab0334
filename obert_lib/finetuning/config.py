"""Fine-tuning configuration, split by concern: data, model, tricks, train. One YAML per experiment.

Trick defaults are the literature's: FGM ε = 1.0 (Miyato et al. 2017 as used for BERT); PGD K = 3, α = 0.3,
ε = 1.0 (the common BERT settings of Madry et al. 2018's method); R-Drop α = 1.0 (Liang et al. 2021 use 0.1-5
by task); NoisyTune λ = 0.15 (Wu et al. 2022); Multi-Sample Dropout k = 5 (Inoue 2019).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..config import require


@dataclass
class DataConfig:
    task: str = "eprstmt"  # a FewCLUE task, "kgclue_ner", "conll" (BIO files) or "custom" (JSONL/CSV + fields)
    data_dir: str = "sample:fewclue"
    train_split: str = "train_0"
    eval_split: str = "dev_0"
    format: Literal["jsonl", "csv"] = "jsonl"  # custom data only
    text_field: str = "text"  # custom data: the text, the optional second text and the label
    pair_field: str | None = None
    label_field: str = "label"
    id_field: str = "id"  # custom data: the id field (else the line number)
    labels: list[str] | None = None  # custom data: the label set (None: the labels seen in train)

    def __post_init__(self):
        self.source()  # unknown task or format: a ConfigError naming the key, before any work

    def source(self):
        """The examples loader's view of this section (finetuning.examples.DataSource)."""
        from .examples import DataSource

        return DataSource(
            task=self.task,
            data_dir=self.data_dir,
            format=self.format,
            text_field=self.text_field,
            pair_field=self.pair_field,
            label_field=self.label_field,
            id_field=self.id_field,
            labels=self.labels,
        )


@dataclass
class ModelConfig:
    checkpoint: str = "runs/pretrain/checkpoints/stage-2-seq128"  # ours or a BERT-layout checkpoint
    max_length: int = 128
    freeze_layers: int = 0  # embeddings and the bottom N encoder layers frozen (0: nothing frozen)
    classifier_dropout: float = 0.1

    def __post_init__(self):
        require(
            self.max_length >= 8,
            "max_length",
            f"{self.max_length} tokens cannot hold [CLS], a text and [SEP]; use >= 8 (128 by default)",
        )
        require(self.freeze_layers >= 0, "freeze_layers", "must be >= 0 (0 freezes nothing)")
        require(0 <= self.classifier_dropout < 1, "classifier_dropout", "must lie in [0, 1)")


@dataclass
class FGMConfig:
    enabled: bool = False
    epsilon: float = 1.0


@dataclass
class PGDConfig:
    enabled: bool = False
    steps: int = 3
    alpha: float = 0.3
    epsilon: float = 1.0


@dataclass
class RDropConfig:
    enabled: bool = False
    alpha: float = 1.0


@dataclass
class NoisyTuneConfig:
    enabled: bool = False
    lam: float = 0.15


@dataclass
class MultiSampleDropoutConfig:
    enabled: bool = False
    k: int = 5
    p: float = 0.5  # Inoue 2019 uses dropout 0.5 on each sample


@dataclass
class LexicalConfig:
    enabled: bool = False
    kind: Literal["boundary", "pos"] = "boundary"  # word-boundary B/I or POS tags from the corpus stage's segmenter
    weight: float = 0.1  # loss = task loss + weight * tagging loss


@dataclass
class TricksConfig:
    fgm: FGMConfig = field(default_factory=FGMConfig)
    pgd: PGDConfig = field(default_factory=PGDConfig)
    rdrop: RDropConfig = field(default_factory=RDropConfig)
    noisytune: NoisyTuneConfig = field(default_factory=NoisyTuneConfig)
    msd: MultiSampleDropoutConfig = field(default_factory=MultiSampleDropoutConfig)
    lexical: LexicalConfig = field(default_factory=LexicalConfig)

    def __post_init__(self):
        require(
            not (self.fgm.enabled and self.pgd.enabled),
            "fgm.enabled / pgd.enabled",
            "both perturb the embeddings; enable one of them",
        )
        require(
            not (self.rdrop.enabled and (self.fgm.enabled or self.pgd.enabled)),
            "rdrop.enabled",
            "R-Drop's two passes and an adversarial perturbation of the same embeddings are not combined here; "
            "enable R-Drop or FGM/PGD",
        )
        require(self.fgm.epsilon > 0, "fgm.epsilon", "must be > 0 (1.0 is the usual value)")
        require(self.pgd.steps >= 1, "pgd.steps", "must be >= 1 (3 is the usual value)")
        require(self.pgd.alpha > 0 and self.pgd.epsilon > 0, "pgd.alpha/epsilon", "must be > 0")
        require(self.rdrop.alpha >= 0, "rdrop.alpha", "must be >= 0")
        require(self.noisytune.lam > 0, "noisytune.lam", "must be > 0 (0.15 is the paper's value)")
        require(self.msd.k >= 1, "msd.k", "must be >= 1 dropout samples (5 is the paper's value)")
        require(0 <= self.msd.p < 1, "msd.p", "must lie in [0, 1)")
        require(self.lexical.weight > 0, "lexical.weight", "must be > 0")

    def enabled(self) -> list[str]:
        """Names of the switched-on tricks, in a fixed order."""
        return [name for name in ("fgm", "pgd", "rdrop", "noisytune", "msd", "lexical") if getattr(self, name).enabled]


@dataclass
class TrainConfig:
    epochs: int = 3
    lr: float = 1e-3  # tiny encoders tolerate a high rate; use ~2e-5 for base-size models
    weight_decay: float = 0.01
    batch_size: int = 8
    seed: int = 0
    patience: int = 0  # early stopping: stop after this many evaluations without a better dev metric (0: never)
    engine: Literal["torch", "deepspeed"] = "torch"
    zero_stage: Literal[0, 2] = 0  # DeepSpeed only
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"  # fp16/bf16 need a GPU
    gradient_clipping: float = 1.0
    resume_every: int = 0  # also write a resume point every N optimiser steps (0: at each epoch's end only)

    def __post_init__(self):
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} rows per step is impossible; use >= 1")
        require(self.patience >= 0, "patience", "must be >= 0 (0 turns early stopping off)")
        require(self.resume_every >= 0, "resume_every", "must be >= 0")
        require(
            self.engine == "deepspeed" or self.zero_stage == 0,
            "zero_stage",
            "ZeRO needs engine: deepspeed",
        )


@dataclass
class FinetuneConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tricks: TricksConfig = field(default_factory=TricksConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/finetune"
    results_table: str | None = None  # default <output_dir>/results.csv
    overwrite: bool = False  # replace a finished run in output_dir (otherwise refused)
