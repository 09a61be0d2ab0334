"""The experiment file: corpus, base plan, budget, seeds, pretraining variants, ZeroCLUE tasks and a fine-tuning
ablation, typed and checked before any work (`load_experiment`); speed-only settings live in `ExperimentRuntime`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from .. import config as cfgmod
from ..config import ConfigError, require

_NAME = re.compile(r"^\w[\w.+-]*$")  # a variant name is one folder name
# Keys the experiment sets in every variant's plan: a variant that sets them would break "same data, same budget".
RESERVED_PLAN_KEYS = ("corpus_dir", "output_dir", "seed", "results_table")


@dataclass
class FewclueText:
    """FewCLUE's unlabelled text as the corpus input (unified.top_n.unlabeled_corpus writes it as JSONL)."""

    data_dir: str = "shared:fewclue"
    tasks: list[str] = field(default_factory=lambda: ["tnews", "eprstmt", "chid", "bustm"])


@dataclass
class CorpusSection:
    """Either an existing preprocessed corpus (`dir`) or a corpus config the corpus stage builds (`config`)."""

    dir: str | None = None  # a folder written by `obert preprocess` (stats.json, shards/, tokenizer/)
    config: str | dict[str, Any] | None = None  # a corpus preset ('default', 'web'), a YAML path or a mapping
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted overrides of `config` (max_documents: 400)
    fewclue_unlabeled: FewclueText | None = None  # build the corpus inputs from FewCLUE's unlabeled.json files

    def __post_init__(self):
        if self.fewclue_unlabeled is not None and self.config is None:
            self.config = "default"
        require(
            (self.dir is None) != (self.config is None),
            "dir",
            "give exactly one of corpus.dir (an existing preprocessed corpus) or corpus.config (a corpus preset, "
            "YAML or mapping to build one), e.g. corpus: {config: default}",
        )
        require(
            self.dir is not None or "output_dir" not in self.overrides,
            "overrides.output_dir",
            "is set by the experiment (<output_dir>/corpus); remove it",
        )
        require(
            self.dir is None or not self.overrides,
            "overrides",
            "apply only to a corpus built from corpus.config; remove them or build the corpus here",
        )


@dataclass
class ZeroShotSection:
    """ZeroCLUE scoring of every pretrained variant (evaluation.run), with 95% bootstrap intervals per task."""

    enabled: bool = True
    data_dir: str = "sample:fewclue"  # 'shared:fewclue' for the real files
    split: str = "dev_0"  # a labelled split: intervals and paired comparisons need the gold labels
    tasks: str | list[str] = "all"  # the nine tasks, or names
    max_length: int | None = None
    batch_size: int = 16
    calibrate: bool = False

    def __post_init__(self):
        from ..evaluation.zeroclue import resolve_tasks

        self.tasks = resolve_tasks(self.tasks)
        require(self.split != "test", "split", "test is unlabelled (no intervals); use dev_0 or dev_few_all")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} is impossible; use >= 1")


@dataclass
class FinetuneSection:
    """A fine-tuning ablation (finetuning.ablation) whose variants are the pretrained checkpoints."""

    enabled: bool = True
    base: dict[str, Any] = field(default_factory=dict)  # a fine-tuning config mapping; model.checkpoint is set here
    base_config: str | None = None  # or a fine-tuning YAML (relative: beside the experiment file)
    tasks: list[str] | dict[str, dict[str, Any] | None] = field(default_factory=lambda: ["eprstmt"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    metric: str = "eval_metric"

    def __post_init__(self):
        require(
            not (self.base and self.base_config),
            "base_config",
            "give either finetune.base (a mapping) or finetune.base_config (a file), not both",
        )
        checkpoint = (self.base.get("model") or {}).get("checkpoint") or self.base.get("model.checkpoint")
        require(
            checkpoint is None,
            "base.model.checkpoint",
            "is set by the experiment (each variant's pretrained checkpoint); remove it",
        )
        require(len(self.tasks) > 0, "tasks", "no tasks; list at least one, e.g. [eprstmt]")
        require(len(self.seeds) > 0, "seeds", "no seeds; list at least one, e.g. [0, 1, 2]")


@dataclass
class ExperimentConfig:
    """One experiment: what changes the results. `variants` are dotted overrides of the base plan, applied as
    given (a value replaces the whole key: `stages.0.mask: {strategy: char}` drops the base stage's mixture)."""

    output_dir: str = "runs/experiment"
    corpus: CorpusSection = field(default_factory=lambda: CorpusSection(config="default"))
    plan: str = "tiny"  # the base plan: a preset of obert_lib/pretraining/plans or a plan YAML
    preset: str | None = None  # the model preset of every variant (model.preset), e.g. 100M; None: the plan's
    plan_overrides: dict[str, Any] = field(default_factory=dict)  # dotted overrides of the base plan, every variant
    tokens: int | None = None  # training tokens per variant (all stages); None: each plan's own stage lengths
    seeds: list[int] = field(default_factory=lambda: [0])  # pretraining seeds (init, data order, masks)
    variants: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    baseline: str | None = None  # the variant others are compared with; default: the first
    zeroshot: ZeroShotSection = field(default_factory=ZeroShotSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)

    def __post_init__(self):
        require(
            len(self.variants) > 0,
            "variants",
            "no variants; give at least one (two to compare), e.g. {char: {...}, obert: {...}}",
        )
        for name, over in self.variants.items():
            require(
                bool(_NAME.match(name)),
                f"variants.{name}",
                "is not usable as a folder name; use letters, digits, '_', '-', '.' or '+'",
            )
            self.variants[name] = dict(over or {})
            for key in self.variants[name]:
                require(
                    key.split(".")[0] not in RESERVED_PLAN_KEYS,
                    f"variants.{name}.{key}",
                    f"is set by the experiment ({', '.join(RESERVED_PLAN_KEYS)}); remove it",
                )
        for key in self.plan_overrides:
            require(
                key.split(".")[0] not in RESERVED_PLAN_KEYS,
                f"plan_overrides.{key}",
                f"is set by the experiment ({', '.join(RESERVED_PLAN_KEYS)}); remove it",
            )
        if self.baseline is None:
            self.baseline = next(iter(self.variants))
        require(
            self.baseline in self.variants,
            "baseline",
            f"{self.baseline!r} is not a variant; use one of {list(self.variants)}",
        )
        require(
            self.tokens is None or self.tokens >= 1,
            "tokens",
            f"{self.tokens} training tokens is impossible; give a budget >= 1 or null for the plans' own lengths",
        )
        require(len(self.seeds) > 0, "seeds", "no seeds; list at least one, e.g. seeds: [0]")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", f"{self.seeds} lists a seed twice; list each once")
        require(all(s >= 0 for s in self.seeds), "seeds", f"{self.seeds}: seeds must be >= 0 (the plan's seed is >= 0)")
        require(
            self.zeroshot.enabled or self.finetune.enabled,
            "zeroshot.enabled",
            "and finetune.enabled are both false: nothing would score the variants; enable one",
        )


@dataclass
class ExperimentRuntime:
    """Speed-only settings: how many variants train at once and where; DeepSpeed settings of every pretraining."""

    workers: int = 1  # variants (and fine-tuning runs) at once: local processes or Ray tasks; 1: one at a time
    executor: Literal["local", "ray"] = "local"  # the ablation runner's engines
    ray: dict[str, Any] = field(default_factory=dict)  # ablation.RayOptions per Ray task (num_gpus: 1, a GPU each)
    progress: bool = True
    speed: dict[str, Any] = field(default_factory=dict)  # pretraining.SpeedConfig keys (precision, zero_stage, ...)
    # Data-parallel pretraining of each variant through pretraining.launch (the DeepSpeed launcher): GPUs per host,
    # and a DeepSpeed hostfile for several hosts. Neither: one process, in this process (or the engine's worker).
    gpus: int | None = None
    hostfile: str | None = None

    def __post_init__(self):
        require(self.workers >= 1, "workers", f"{self.workers} processes is impossible; use >= 1")
        require(self.gpus is None or self.gpus >= 1, "gpus", f"{self.gpus} must be >= 1, or null for one process")
        require(
            self.workers == 1 or (self.gpus is None and self.hostfile is None),
            "workers",
            "must be 1 with gpus/hostfile: each variant's launch takes the GPUs it names, so variants go one at a time",
        )
        from ..finetuning.ablation import RayOptions
        from ..pretraining import SpeedConfig

        self.speed = cfgmod.to_dict(cfgmod.from_dict(SpeedConfig, self.speed, prefix="speed."))
        self.ray = cfgmod.to_dict(cfgmod.from_dict(RayOptions, self.ray, prefix="ray."))


def load_experiment(
    source: str | Path | Mapping[str, Any] | ExperimentConfig, **overrides: Any
) -> tuple[ExperimentConfig, ExperimentRuntime]:
    """The experiment and its runtime from a YAML path or mapping (its `runtime:` section is the runtime), with
    dotted overrides; relative finetune.base_config and corpus YAML paths are looked up beside the file first."""
    if isinstance(source, ExperimentConfig):
        data: dict[str, Any] = cfgmod.to_dict(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        data = cfgmod.read_yaml(path, what="experiment") or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"experiment file {path} must hold a mapping (key: value lines) at top level")
        data = _beside(dict(data), path.parent)
    else:
        data = dict(source)
    if overrides:
        data = cfgmod.apply_overrides(data, {k.replace("__", "."): v for k, v in overrides.items()})
    runtime = data.pop("runtime", None) or {}
    if not isinstance(runtime, Mapping):
        raise ConfigError(f"runtime: expected a mapping of speed-only settings, got {runtime!r}")
    cfg = cfgmod.from_dict(ExperimentConfig, data)
    _read_base_config(cfg)
    return cfg, cfgmod.from_dict(ExperimentRuntime, runtime, prefix="runtime.")


def _beside(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative file names in an experiment YAML, resolved beside it when such a file is there."""
    finetune, corpus = data.get("finetune"), data.get("corpus")
    for section, key in ((finetune, "base_config"), (corpus, "config")):
        if isinstance(section, dict) and isinstance(section.get(key), str) and not Path(section[key]).is_absolute():
            beside = folder / section[key]
            if beside.is_file():
                section[key] = str(beside)
    if isinstance(data.get("plan"), str) and (folder / data["plan"]).is_file():
        data["plan"] = str(folder / data["plan"])
    return data


def _read_base_config(cfg: ExperimentConfig) -> None:
    """finetune.base_config read into finetune.base, so the resolved config holds the whole fine-tuning base."""
    ft = cfg.finetune
    if ft.base_config is None:
        return
    data = cfgmod.read_yaml(ft.base_config, what="finetune.base_config") or {}
    require(isinstance(data, Mapping), "finetune.base_config", f"{ft.base_config} must hold a mapping at top level")
    ft.base, ft.base_config = dict(data), None
    ft.base.pop("output_dir", None)  # the ablation sets each run's folder
    if isinstance(ft.base.get("model"), dict):  # a reused fine-tuning YAML names its own checkpoint: replaced here
        ft.base["model"].pop("checkpoint", None)
