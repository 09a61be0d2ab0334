"""Each variant's pretraining plan: the base plan, the experiment's overrides, the variant's, the seed and the
token budget, checked by pretraining.validate before any work. A plan's folder is named by its hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as cfgmod
from ..config import ConfigError
from ..paths import resolve_data_path
from ..pretraining import PretrainConfig, SpeedConfig, load_plan, steps_for_tokens, validate
from .config import ExperimentConfig, ExperimentRuntime


@dataclass
class PretrainSpec:
    """One pretraining run of the experiment: a variant at a seed."""

    variant: str
    seed: int
    plan: PretrainConfig
    plan_hash: str  # sha256 hex of the canonical plan JSON without output_dir

    @property
    def name(self) -> str:
        return f"{self.variant}-seed{self.seed}"

    @property
    def output_dir(self) -> Path:
        return Path(self.plan.output_dir)

    @property
    def checkpoint(self) -> Path:
        """The last stage's checkpoint folder (it exists once the run has finished)."""
        from ..pretraining.run_dir import RunDir

        stages = self.plan.stages
        return RunDir(self.output_dir).stage_checkpoint(len(stages) - 1, stages[-1].name)


def corpus_dir(cfg: ExperimentConfig) -> Path:
    """The corpus every variant trains on: corpus.dir, or <output_dir>/corpus built from corpus.config."""
    if cfg.corpus.dir is not None:
        return resolve_data_path(cfg.corpus.dir).resolve()
    return (resolve_data_path(cfg.output_dir) / "corpus").resolve()


def corpus_config(cfg: ExperimentConfig, out: Path):
    """The CorpusConfig the experiment builds into <out>/corpus (FewCLUE unlabelled text as its input if asked)."""
    from .. import corpus

    overrides = {**cfg.corpus.overrides, "output_dir": str(out / "corpus")}
    if cfg.corpus.fewclue_unlabeled is not None:
        overrides["inputs"] = [str(out / "corpus_input" / "fewclue_unlabeled.jsonl")]
    return corpus.load_config(cfg.corpus.config, **overrides)  # a preset name, a YAML path or a mapping


def corpus_identity(cfg: ExperimentConfig) -> Any:
    """What makes the corpus this one: the resolved corpus config (built here, with the FewCLUE text it reads), or
    the data_hash in stats.json of a corpus.dir. Part of every plan hash: a rebuilt corpus retrains the variants."""
    if cfg.corpus.dir is None:
        out = resolve_data_path(cfg.output_dir).resolve()
        built = {k: v for k, v in cfgmod.to_dict(corpus_config(cfg, out)).items() if k != "output_dir"}
        text = cfg.corpus.fewclue_unlabeled
        return {"config": built, "fewclue_unlabeled": None if text is None else cfgmod.to_dict(text)}
    try:
        return json.loads((corpus_dir(cfg) / "stats.json").read_text(encoding="utf-8")).get("data_hash", "")
    except (OSError, ValueError):
        return ""  # check() refuses a corpus.dir without stats.json before any work


def plan_hash(plan: PretrainConfig, corpus: Any = None) -> str:
    """sha256 of the canonical JSON of a resolved plan without its output_dir (which is named after it) and of the
    corpus identity."""
    data = {k: v for k, v in cfgmod.to_dict(plan).items() if k != "output_dir"}
    if corpus is not None:
        data["corpus"] = corpus
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _scaled(value: int, new: int, old: int) -> int:
    return int(round(value * new / old))


def apply_budget(plan: dict[str, Any], tokens: int, where: str) -> dict[str, Any]:
    """`plan` (a resolved plan mapping) with its stages' lengths rescaled so that they train `tokens` in all.

    Each stage keeps its share of the plan's tokens (steps x global_batch x seq_len); its steps are
    ceil(share / (global_batch x seq_len)), so a run trains at least the budget and at most one step per stage
    more. Warm-up and mask-schedule points keep their place in the stage (scaled with its steps).
    """
    out = json.loads(json.dumps(plan))
    stages = out["stages"]
    sizes = [st["steps"] * st["global_batch"] * st["seq_len"] for st in stages]
    total = sum(sizes)
    for i, (st, size) in enumerate(zip(stages, sizes)):
        share = max(1, round(tokens * size / total))
        old, new = st["steps"], steps_for_tokens(share, st["global_batch"], st["seq_len"])
        st["tokens"], st["steps"] = share, new
        st["warmup_steps"] = min(_scaled(st["warmup_steps"], new, old), new - 1)
        points = [_scaled(e["from_step"], new, old) for e in st["mask"].get("schedule") or []]
        if any(b <= a for a, b in zip(points, points[1:])) or any(p >= new for p in points):
            raise ConfigError(
                f"{where}stages.{i}.mask.schedule: the budget of {tokens} tokens leaves stage {i} {new} steps, too "
                f"few for its {len(points)} schedule points (from_step scaled to {points}); raise tokens"
            )
        for entry, point in zip(st["mask"].get("schedule") or [], points):
            entry["from_step"] = point
    return out


def variant_plan(cfg: ExperimentConfig, variant: str, seed: int) -> PretrainSpec:
    """The resolved plan of `variant` at `seed`, in <output_dir>/pretrain/<variant>/seed<k>-<hash8>."""
    where = f"variants.{variant}: "
    overrides = dict(cfg.plan_overrides)
    if cfg.preset is not None:
        overrides["model.preset"] = cfg.preset
    try:
        base = cfgmod.to_dict(load_plan(cfg.plan, **overrides))
        data = cfgmod.apply_overrides(base, cfg.variants[variant])
        base_steps = [st["steps"] for st in base["stages"]]
        for i, st in enumerate(data.get("stages") or []):  # a stage given by tokens: steps follow from them again
            if isinstance(st, dict) and st.get("tokens") is not None and i < len(base_steps):
                if st.get("steps") == base_steps[i]:  # the base's resolved steps, not a variant's own
                    st["steps"] = None
        data.update(corpus_dir=str(corpus_dir(cfg)), output_dir="", seed=seed, results_table=None)
        plan = cfgmod.from_dict(PretrainConfig, data)
        if cfg.tokens is not None:
            plan = cfgmod.from_dict(PretrainConfig, apply_budget(cfgmod.to_dict(plan), cfg.tokens, where))
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(where) else where + message) from None
    digest = plan_hash(plan, corpus_identity(cfg))
    plan.output_dir = str(
        resolve_data_path(cfg.output_dir).resolve() / "pretrain" / variant / f"seed{seed}-{digest[:8]}"
    )
    return PretrainSpec(variant, seed, plan, digest)


def pretrain_specs(cfg: ExperimentConfig, runtime: ExperimentRuntime, cuda: bool | None = None) -> list[PretrainSpec]:
    """Every pretraining run (seeds outermost, then variants), each plan validated with the runtime's speed
    settings (cuda: whether a GPU will run it; None: this machine's answer)."""
    import dataclasses

    from ..pretraining.processes import world_size

    if cuda is None:
        import torch

        cuda = torch.cuda.is_available() or runtime.gpus is not None or runtime.hostfile is not None
    speed = cfgmod.from_dict(SpeedConfig, runtime.speed, prefix="runtime.speed.")
    if runtime.gpus is not None or runtime.hostfile is not None:  # as pretraining.launch sets it
        speed = dataclasses.replace(speed, data_parallel_size=world_size(runtime.gpus, runtime.hostfile))
    specs = []
    for seed in cfg.seeds:
        for variant in cfg.variants:
            spec = variant_plan(cfg, variant, seed)
            try:
                validate(spec.plan, speed, cuda)
            except ConfigError as exc:  # a speed setting is the runtime's, anything else the variant's plan
                where = "runtime." if str(exc).startswith("speed.") else f"variants.{variant}: "
                raise ConfigError(f"{where}{exc}") from None
            specs.append(spec)
    return specs


def state_dir(out: Path, spec: PretrainSpec) -> Path:
    """Where the engine writes done.json / error.json of one pretraining run (<out>/state/pretrain/...)."""
    return out / "state" / "pretrain" / spec.variant / spec.output_dir.name


def plan_table(specs: list[PretrainSpec]):
    """One row per stage of every run: sequence length, batch, steps, positions trained, mask strategy, folder."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "run": spec.name,
                "stage": f"{i + 1}: {st.name}",
                "seq_len": st.seq_len,
                "global_batch": st.global_batch,
                "steps": st.steps,
                "positions": st.stage_tokens,
                "warmup_steps": st.warmup_steps,
                "mask": st.mask.label,
                "folder": spec.output_dir.name,
            }
            for spec in specs
            for i, st in enumerate(spec.plan.stages)
        ]
    )
