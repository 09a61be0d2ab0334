"""Ablation runner: one YAML lists tasks × variants × seeds of a fine-tuning config; runs each resolved config
once (resumable by its hash), in N local processes or on Ray, and summarises with paired statistics.

The YAML::

    base: {model: {...}, train: {...}}   # a fine-tuning config mapping; or base_config: path/to/finetune.yaml
    tasks: [eprstmt, bustm]              # each sets data.task; or a mapping with per-task overrides:
                                         #   tasks: {tnews: {data.train_split: train_few_all}, eprstmt: {}}
    variants:                            # dotted overrides of the base; nested mappings are flattened
      baseline: {}
      fgm: {tricks.fgm.enabled: true}
    baseline: baseline                   # optional: default is the first variant
    seeds: [0, 1, 2]                     # each sets train.seed; runs of two variants pair by seed
    metric: eval_metric                  # the metrics key that the summary compares
    output_dir: runs/ablation
    executor: local                      # local (N processes) or ray; Slurm via submitit is not wired in
    workers: 1                           # local processes; on Ray, runs in flight at once
    ray: {address: null, num_cpus: 1, num_gpus: 0}   # null starts a local Ray instance; "auto" joins one

Each run's config is base → task overrides → variant overrides → data.task, train.seed; its folder is
<output_dir>/runs/<task>/<variant>/seed<k>-<hash8>, hash8 = the first 8 hex digits of sha256 over the canonical
JSON of that mapping (without output_dir, which is then set to the folder). A run whose folder holds done.json
(written after the run function returned; it holds the metrics) is not run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import pandas as pd

from .. import config as cfgmod
from ..config import ConfigError, require
from ..paths import check_output_dir
from ..results import write_text_atomic
from .ablation_stats import summarise_ablation

RESERVED = ("data.task", "train.seed", "output_dir")  # set by the runner for every run
_NAME = re.compile(r"^\w[\w.+-]*$")  # a task or variant name is one folder name


@dataclass
class RayOptions:
    address: str | None = None  # None: a local instance (unless one is already initialised); "auto": join a cluster
    num_cpus: float = 1.0  # resources of one run's Ray task
    num_gpus: float = 0.0


@dataclass
class AblationConfig:
    base: dict[str, Any] | None = None
    base_config: str | None = None  # a fine-tuning YAML, read into `base` (relative: to the ablation YAML)
    tasks: list[str] | dict[str, dict[str, Any] | None] = field(default_factory=list)
    variants: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    baseline: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    metric: str = "eval_metric"
    output_dir: str = "runs/ablation"
    executor: Literal["local", "ray"] = "local"
    workers: int = 1
    ray: RayOptions = field(default_factory=RayOptions)

    def __post_init__(self):
        require(
            self.base is None or self.base_config is None,
            "base_config",
            "give either base (a mapping) or base_config (a file), not both",
        )
        if self.base_config is not None:
            data = cfgmod.read_yaml(self.base_config, what="base_config") or {}
            require(isinstance(data, Mapping), "base_config", f"{self.base_config} must hold a mapping at top level")
            self.base, self.base_config = dict(data), None
        self.base = _nest(self.base or {})
        require(len(self.tasks) > 0, "tasks", "no tasks; list at least one, e.g. tasks: [eprstmt, bustm]")
        if isinstance(self.tasks, list):
            dup = [t for t in self.tasks if self.tasks.count(t) > 1]
            if dup:
                raise ConfigError(f"tasks: {dup[0]!r} is listed twice; list each task once")
            self.tasks = {t: {} for t in self.tasks}
        self.tasks = {name: _overrides(over, f"tasks.{name}") for name, over in self.tasks.items()}
        require(len(self.variants) > 0, "variants", "no variants; give at least one, e.g. variants: {baseline: {}}")
        self.variants = {name: _overrides(over, f"variants.{name}") for name, over in self.variants.items()}
        if self.baseline is None:
            self.baseline = next(iter(self.variants))
        require(
            self.baseline in self.variants,
            "baseline",
            f"{self.baseline!r} is not a variant; use one of {list(self.variants)}",
        )
        require(len(self.seeds) > 0, "seeds", "no seeds; list at least one, e.g. seeds: [0, 1, 2]")
        dup_seeds = [s for s in self.seeds if self.seeds.count(s) > 1]
        if dup_seeds:
            raise ConfigError(f"seeds: seed {dup_seeds[0]} is listed twice; list each seed once")
        require(bool(self.metric), "metric", "empty; name the metrics key to compare, e.g. eval_metric")
        require(self.workers >= 1, "workers", f"{self.workers} processes is impossible; use >= 1")
        require(self.ray.num_cpus >= 0, "ray.num_cpus", "must be >= 0")
        require(self.ray.num_gpus >= 0, "ray.num_gpus", "must be >= 0")


@dataclass
class RunSpec:
    task: str
    variant: str
    seed: int
    overrides: dict[str, Any]  # the dotted overrides of the base that make this run (task, variant, seed)
    config: dict[str, Any]  # the resolved fine-tuning config, output_dir set to run_dir
    config_hash: str  # sha256 hex of the canonical JSON of `config` without output_dir
    run_dir: Path

    @property
    def done_file(self) -> Path:
        return self.run_dir / "done.json"


@dataclass
class AblationResult:
    runs: pd.DataFrame  # one row per run, in plan order: task, variant, seed, status (ran|cached|failed), error, ...
    summary: pd.DataFrame  # one row per task × variant (ablation_stats.summarise_ablation)
    output_dir: Path
    config: AblationConfig | None = None


def _dotted(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}, 'c.d': 2} -> {'a.b': 1, 'c.d': 2}; lists and other values stay as they are."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, Mapping) and v:
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _nest(data: Mapping[str, Any]) -> dict[str, Any]:
    """A config mapping with any dotted top-level keys ('train.lr: 1e-4') expanded into its sections."""
    plain = {k: v for k, v in data.items() if "." not in str(k)}
    return cfgmod.apply_overrides(plain, {k: v for k, v in data.items() if "." in str(k)})


def _overrides(value: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    """A task's or variant's overrides as dotted keys; its name must be a folder name; reserved keys refused."""
    name = key.split(".", 1)[1]
    require(
        bool(_NAME.match(name)) and name not in (".", ".."),
        key,
        "is not usable as a folder name; use letters, digits, '_', '-', '.' or '+'",
    )
    over = _dotted(value or {})
    for reserved in RESERVED:
        require(
            reserved not in over, f"{key}.{reserved}", "is set by the ablation (tasks, seeds, output_dir); remove it"
        )
    return over


def load_ablation(source: str | Path | Mapping[str, Any] | AblationConfig, **overrides: Any) -> AblationConfig:
    """An AblationConfig from a YAML path, a mapping or an instance, with dotted overrides; a relative
    base_config is looked up beside the ablation YAML first, then from the working directory."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        data = cfgmod.read_yaml(path, what="ablation config") or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"ablation config file {path} must hold a mapping at top level")
        data = dict(data)
        base_config = data.get("base_config")
        if isinstance(base_config, str) and not Path(base_config).is_absolute():
            beside = path.parent / base_config
            if beside.is_file():
                data["base_config"] = str(beside)
        source = data
    return cfgmod.load(AblationConfig, source, **overrides)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces) of a run config without its output_dir."""
    data = {k: v for k, v in config.items() if k != "output_dir"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan(cfg: str | Path | Mapping[str, Any] | AblationConfig) -> list[RunSpec]:
    """Every run of the ablation, tasks outermost, then variants, then seeds."""
    cfg = load_ablation(cfg)
    out_dir = check_output_dir(cfg.output_dir)
    specs = []
    for task, task_over in cfg.tasks.items():
        for variant, variant_over in cfg.variants.items():
            for seed in cfg.seeds:
                overrides = {**task_over, **variant_over, "data.task": task, "train.seed": seed}
                config = cfgmod.apply_overrides(cfg.base, overrides)
                config.pop("output_dir", None)
                digest = config_hash(config)
                run_dir = out_dir / "runs" / task / variant / f"seed{seed}-{digest[:8]}"
                config["output_dir"] = str(run_dir)
                specs.append(RunSpec(task, variant, seed, overrides, config, digest, run_dir))
    return specs


def _jsonable(value: Any) -> Any:
    """Metrics as plain JSON data: numpy scalars and arrays become numbers and lists, other objects strings."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def _read_done(spec: RunSpec) -> dict | None:
    """The done.json of a finished run, or None (missing, or unreadable: a run killed mid-write reruns)."""
    try:
        done = json.loads(spec.done_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) and isinstance(done.get("metrics"), dict) else None


def _execute(config: dict, run_dir: str, meta: dict, run_fn: Callable) -> dict:
    """Run one config (in this process, a worker process or a Ray task); never raises for the run's own errors.

    Writes done.json with the metrics after run_fn returned, or error.json with the traceback when it raised.
    """
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        metrics = _jsonable(dict(run_fn(config, progress=False).metrics))
        if meta["metric"] not in metrics:
            raise ValueError(f"the run's metrics hold no {meta['metric']!r}; set metric: to one of {sorted(metrics)}")
    except (Exception, SystemExit) as exc:
        error = f"{type(exc).__name__}: {exc}"
        record = {**meta, "error": error, "traceback": traceback.format_exc()}
        write_text_atomic(folder / "error.json", json.dumps(record, ensure_ascii=False, indent=2))
        return {"status": "failed", "error": error, "wall_seconds": round(time.perf_counter() - t0, 3)}
    wall = round(time.perf_counter() - t0, 3)
    finished = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    done = {**meta, "metrics": metrics, "wall_seconds": wall, "finished": finished}
    write_text_atomic(folder / "done.json", json.dumps(done, ensure_ascii=False, indent=2))
    (folder / "error.json").unlink(missing_ok=True)
    return {"status": "ran", "metrics": metrics, "wall_seconds": wall}


def _failure(exc: BaseException) -> dict:
    """The record of a run whose worker failed outside run_fn (a dead process, an unpicklable function)."""
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "wall_seconds": math.nan}


@contextlib.contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    """Worker processes started inside inherit OMP/MKL_NUM_THREADS = cores // workers, unless already set:
    N processes each using every core would oversubscribe the CPU."""
    names = [n for n in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if n not in os.environ]
    for n in names:
        os.environ[n] = str(max(1, (os.cpu_count() or 1) // workers))
    try:
        yield
    finally:
        for n in names:
            os.environ.pop(n, None)


def run_local(jobs: list, workers: int, run_fn: Callable, on_done: Callable) -> None:
    """Run the jobs in this process (workers=1) or in `workers` spawned processes; a failure stays in its run.

    A job is (index, config, run_dir, meta): run_fn(config, progress=False) runs, done.json (its metrics, which
    must hold meta["metric"]) or error.json lands in run_dir, and on_done(job, record) gets the outcome.
    """
    if workers == 1:
        for job in jobs:
            on_done(job, _execute(*job[1:], run_fn))
        return
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor, as_completed

    try:
        pickle.dumps(run_fn)
    except Exception as exc:
        raise TypeError(
            f"run_fn {run_fn!r} cannot be sent to worker processes ({exc}); pass a module-level function or workers=1"
        ) from None
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: safe with CUDA and threads
    with _threads_per_worker(workers), ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(_execute, *job[1:], run_fn): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    record = future.result()
                except Exception as exc:  # BrokenProcessPool: a worker died (killed, out of memory)
                    record = _failure(exc)
                on_done(futures[future], record)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def run_ray(jobs: list, workers: int, run_fn: Callable, options: RayOptions, on_done: Callable) -> None:
    """Run the jobs as Ray tasks (num_cpus/num_gpus each, at most `workers` in flight, no retries).

    Uses the Ray instance already initialised in this process, else ray.init(address=options.address) and shuts
    it down afterwards. On a cluster, output_dir must be on storage that every node shares.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(_execute).options(num_cpus=options.num_cpus, num_gpus=options.num_gpus, max_retries=0)
        fn_ref = ray.put(run_fn)
        queue, running = list(jobs), {}
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                running[task.remote(*job[1:], fn_ref)] = job
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job = running.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # the task's worker died or could not load run_fn
                    record = _failure(exc)
                on_done(job, record)
    finally:
        if started:
            ray.shutdown()


def _row(spec: RunSpec, out_dir: Path, record: dict) -> dict:
    """One runs-table row: identity, status, error, the run folder relative to output_dir, the flat metrics."""
    row = {
        "task": spec.task,
        "variant": spec.variant,
        "seed": spec.seed,
        "status": record["status"],
        "error": record.get("error", ""),
        "hash": spec.config_hash[:8],
        "run_dir": spec.run_dir.relative_to(out_dir).as_posix(),
        "wall_seconds": record.get("wall_seconds", math.nan),
    }
    for key, value in cfgmod.flatten(record.get("metrics") or {}).items():
        row.setdefault(key, value)
    return row


def _default_run_fn() -> Callable:
    from .. import finetuning

    return finetuning.run


def run_ablation(
    cfg: str | Path | Mapping[str, Any] | AblationConfig,
    workers: int | None = None,
    executor: Literal["local", "ray"] | None = None,
    run_fn: Callable | None = None,
    progress: bool = True,
) -> AblationResult:
    """Run every task × variant × seed not yet done; write runs.csv, summary.csv and ablation_config.json.

    workers/executor default to the config's (1, 'local'). run_fn(config_mapping, progress=False) must return
    an object with .metrics holding cfg.metric and seconds_per_step; None means obert_lib.finetuning.run,
    looked up when a run is due. Runs get progress=False; one bar counts the runs. A run that raises is recorded
    (status 'failed', the exception in column error, error.json in its folder) and the others go on; a warning
    names the count. Rerunning retries only the runs without done.json.
    """
    cfg = load_ablation(cfg)
    workers = cfg.workers if workers is None else workers
    executor = cfg.executor if executor is None else executor
    require(isinstance(workers, int) and workers >= 1, "workers", f"{workers!r} processes is impossible; use >= 1")
    require(executor in ("local", "ray"), "executor", f"{executor!r} is not allowed; use one of ['local', 'ray']")
    cfg = dataclasses.replace(cfg, workers=workers, executor=executor)
    out_dir = check_output_dir(cfg.output_dir)
    specs = plan(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "ablation_config.json", json.dumps(cfgmod.to_dict(cfg), ensure_ascii=False, indent=2))

    rows: dict[int, dict] = {}
    jobs = []
    for i, spec in enumerate(specs):
        done = _read_done(spec)
        if done is not None:
            record = {"status": "cached", "metrics": done["metrics"], "wall_seconds": done.get("wall_seconds")}
            rows[i] = _row(spec, out_dir, record)
        else:
            meta = {
                "task": spec.task,
                "variant": spec.variant,
                "seed": spec.seed,
                "config_hash": spec.config_hash,
                "metric": cfg.metric,
            }
            jobs.append((i, spec.config, str(spec.run_dir), meta))

    from tqdm.auto import tqdm

    with tqdm(total=len(specs), initial=len(rows), desc="ablation", unit="run", disable=not progress) as bar:

        def on_done(job, record):
            rows[job[0]] = _row(specs[job[0]], out_dir, record)
            bar.set_postfix_str(f"{job[3]['task']}/{job[3]['variant']}/seed{job[3]['seed']} {record['status']}")
            bar.update(1)

        if jobs:
            run_fn = run_fn if run_fn is not None else _default_run_fn()
            if executor == "ray":
                run_ray(jobs, workers, run_fn, cfg.ray, on_done)
            else:
                run_local(jobs, workers, run_fn, on_done)

    runs = pd.DataFrame([rows[i] for i in range(len(specs))])
    order = [(t, v) for t in cfg.tasks for v in cfg.variants]
    summary = summarise_ablation(runs, cfg.baseline, metric=cfg.metric, order=order)
    for name, table in (("runs.csv", runs), ("summary.csv", summary)):
        write_text_atomic(out_dir / name, table.to_csv(index=False))
    failed = int((runs["status"] == "failed").sum())
    if failed:
        first = runs.loc[runs["status"] == "failed"].iloc[0]
        warnings.warn(
            f"{failed} of {len(runs)} ablation runs failed (first: {first['run_dir']}: {first['error']}); "
            f"see {out_dir / 'runs.csv'}; rerunning retries them",
            stacklevel=2,
        )
    return AblationResult(runs=runs, summary=summary, output_dir=out_dir, config=cfg)
