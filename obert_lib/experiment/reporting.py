"""The experiment's report, rebuilt from what is on disk: one table of variants × tasks with intervals, paired
comparisons against the baseline, MLM loss curves side by side, and the compute each variant spent.

Zero-shot cells are accuracy % with the 95% bootstrap interval over the scored rows (one pretraining seed) or
mean ± std over pretraining seeds; fine-tuning cells are the dev metric × 100, mean ± std over all fine-tuning
runs of the variant. Comparisons reuse evaluation.compare_runs (paired bootstrap, McNemar) and the ablation's
summary (Δ, paired t, Wilcoxon). Written beside experiment_config.json: results.csv, results.md,
comparisons_zeroshot.csv, comparisons_finetune.csv, compute.csv and figures/<prefix>_*.png|svg.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..config import UserError, flatten
from ..paths import resolve_data_path
from ..results import write_text_atomic
from .config import ExperimentConfig, load_experiment
from .plans import PretrainSpec, state_dir, variant_plan
from .steps import ablation_config, zeroshot_dir, zeroshot_scored


@dataclass
class ExperimentReport:
    table: pd.DataFrame  # variants × tasks, each cell a value with its interval (text)
    results: pd.DataFrame  # results.csv: kind, variant, task, n_seeds, value, low, high, std, interval
    zeroshot_comparisons: pd.DataFrame  # evaluation.compare_runs per pretraining seed
    finetune_comparisons: pd.DataFrame  # the ablation summaries per pretraining seed
    curves: pd.DataFrame  # run, variant, seed, global_step, stage, tokens_seen, loss, mlm_accuracy
    compute: pd.DataFrame  # per run: steps, tokens, hours, device, device-hours
    figures: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what was not on disk (yet)


def report(
    cfg: str | Path | Mapping[str, Any] | ExperimentConfig,
    figures_dir: str | Path | None = None,
    prefix: str = "experiment",
) -> ExperimentReport:
    """Rebuild the report of an experiment from its output folder (nothing is trained or scored)."""
    cfg, _ = load_experiment(cfg)
    specs = [variant_plan(cfg, variant, seed) for seed in cfg.seeds for variant in cfg.variants]
    return report_from_specs(cfg, specs, figures_dir, prefix)


def report_from_specs(
    cfg: ExperimentConfig, specs: list[PretrainSpec], figures_dir: str | Path | None = None, prefix: str = "experiment"
) -> ExperimentReport:
    """The report of the runs `specs` (as resolved by plans.variant_plan); see the module docstring."""
    out = resolve_data_path(cfg.output_dir).resolve()
    if not out.is_dir():
        raise UserError(f"output_dir: {out} does not exist; run the experiment first (obert experiment run FILE)")
    missing: list[str] = []
    curves = pd.concat([_curve(s, missing) for s in specs] or [pd.DataFrame()], ignore_index=True)
    rows = _zeroshot_rows(cfg, specs, missing) if cfg.zeroshot.enabled else []
    zs_comparisons = _zeroshot_comparisons(cfg, specs, missing) if cfg.zeroshot.enabled else pd.DataFrame()
    ft_runs, ft_summary = _finetune_tables(cfg, specs, missing) if cfg.finetune.enabled else (pd.DataFrame(),) * 2
    rows += _finetune_rows(cfg, ft_runs)
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    compute = _compute(cfg, out, specs, ft_runs)
    rep = ExperimentReport(_wide(cfg, results), results, zs_comparisons, ft_summary, curves, compute, missing=missing)
    rep.files = _write(out, rep)
    rep.figures = _figures(rep, Path(figures_dir) if figures_dir else out / "figures", prefix)
    return rep


RESULT_COLUMNS = ["kind", "variant", "task", "n_seeds", "value", "low", "high", "std", "interval"]


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _curve(spec: PretrainSpec, missing: list[str]) -> pd.DataFrame:
    path = spec.output_dir / "metrics.csv"
    if not path.is_file():
        missing.append(f"pretraining {spec.name}: {path}")
        return pd.DataFrame()
    m = pd.read_csv(path)
    return pd.DataFrame(
        {
            "run": spec.name,
            "variant": spec.variant,
            "seed": spec.seed,
            "global_step": m["global_step"],
            "stage": m["stage"],
            "tokens_seen": m["tokens"].cumsum(),
            "loss": m["loss"],
            "mlm_accuracy": m["mlm_accuracy"],
        }
    )


def _zeroshot_rows(cfg: ExperimentConfig, specs: list[PretrainSpec], missing: list[str]) -> list[dict]:
    """Per variant and task (and the score): accuracy % with its bootstrap interval, or mean ± std over seeds."""
    found: dict[tuple[str, str], list[tuple[float, list | None]]] = {}
    for spec in specs:
        metrics = _read_json(zeroshot_dir(cfg, spec) / "metrics.json") or {}
        tasks = zeroshot_scored(cfg, spec)  # scores of these very settings only
        if not tasks:
            missing.append(f"zero-shot {spec.name}: {zeroshot_dir(cfg, spec)}")
            continue
        for task in cfg.zeroshot.tasks:
            if task in tasks and tasks[task].get("accuracy") is not None:
                found.setdefault((spec.variant, task), []).append((tasks[task]["accuracy"], tasks[task].get("ci95")))
            else:
                missing.append(f"zero-shot {spec.name}: task {task}")
        if set(tasks) == set(cfg.zeroshot.tasks) and metrics.get("score") is not None:  # the score of these tasks
            found.setdefault((spec.variant, "score"), []).append((metrics["score"], metrics.get("score_ci95")))
    rows = []
    for variant in cfg.variants:
        for task in [*cfg.zeroshot.tasks, "score"]:
            values = found.get((variant, task))
            if values:
                rows.append(_interval_row("zeroshot", variant, task, values))
    return rows


def _interval_row(kind: str, variant: str, task: str, values: list[tuple[float, list | None]]) -> dict:
    if len(values) == 1:
        value, ci = values[0]
        low, high = ci if ci else (math.nan, math.nan)
        return dict(kind=kind, variant=variant, task=task, n_seeds=1, value=value, low=low, high=high, std=math.nan,
                    interval="95% bootstrap over rows")  # fmt: skip
    points = np.array([v for v, _ in values], dtype=float)
    return dict(kind=kind, variant=variant, task=task, n_seeds=len(points), value=points.mean(), low=math.nan,
                high=math.nan, std=points.std(ddof=1), interval="mean ± std over pretraining seeds")  # fmt: skip


def _zeroshot_comparisons(cfg: ExperimentConfig, specs: list[PretrainSpec], missing: list[str]) -> pd.DataFrame:
    """Every variant against the baseline, per pretraining seed, on the rows both scored (compare_runs)."""
    from ..config import DataError
    from ..evaluation import compare_runs

    tables = []
    for seed in cfg.seeds:
        names = [cfg.baseline, *[v for v in cfg.variants if v != cfg.baseline]]
        by_variant = {s.variant: zeroshot_dir(cfg, s) for s in specs if s.seed == seed}
        dirs = [by_variant[v] for v in names if (by_variant[v] / "metrics.json").is_file()]
        if len(names) < 2 or len(dirs) < len(names):
            continue
        try:
            table = compare_runs(dirs, names=names, seed=seed)
        except DataError as exc:
            missing.append(f"zero-shot comparison seed {seed}: {exc}")
            continue
        tables.append(table.assign(pretrain_seed=seed))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _finetune_tables(
    cfg: ExperimentConfig, specs: list[PretrainSpec], missing: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fine-tuning runs of these checkpoints found done (done.json) and their ablation summary, per
    pretraining seed (column pretrain_seed); runs of earlier checkpoints in the same folders are not counted."""
    from ..finetuning import ablation
    from ..finetuning.ablation_stats import summarise_ablation
    from .config import ExperimentRuntime

    runs, summaries = [], []
    for seed in cfg.seeds:
        checkpoints = {s.variant: {"model.checkpoint": str(s.checkpoint)} for s in specs if s.seed == seed}
        rows = []
        for run in ablation.plan(ablation_config(cfg, ExperimentRuntime(), checkpoints, seed)):
            done = _read_json(run.done_file)
            if done is None or not isinstance(done.get("metrics"), dict):
                missing.append(f"fine-tuning {run.task}/{run.variant}/seed{run.seed} (pretraining seed {seed})")
                continue
            metrics = flatten(done["metrics"])
            rows.append(dict(metrics, task=run.task, variant=run.variant, seed=run.seed, status="done",
                             wall_seconds=done.get("wall_seconds", math.nan), run_dir=str(run.run_dir)))  # fmt: skip
        if rows:
            table = pd.DataFrame(rows)
            order = [(t, v) for t in dict.fromkeys(table["task"]) for v in cfg.variants]
            summary = summarise_ablation(table, cfg.baseline, metric=cfg.finetune.metric, order=order)
            runs.append(table.assign(pretrain_seed=seed))
            summaries.append(summary.assign(pretrain_seed=seed))
    join = lambda tables: pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()  # noqa: E731
    return join(runs), join(summaries)


def _finetune_rows(cfg: ExperimentConfig, runs: pd.DataFrame) -> list[dict]:
    """Per variant and task: the dev metric × 100, mean ± std over every fine-tuning run (seeds pooled)."""
    if runs.empty or cfg.finetune.metric not in runs:
        return []
    ok = runs[runs["status"] != "failed"]
    rows = []
    for variant in cfg.variants:
        for task in dict.fromkeys(ok["task"]):
            values = 100 * ok[(ok["variant"] == variant) & (ok["task"] == task)][cfg.finetune.metric].astype(float)
            if len(values):
                rows.append(dict(kind="finetune", variant=variant, task=task, n_seeds=len(values),
                                 value=values.mean(), low=math.nan, high=math.nan,
                                 std=values.std(ddof=1) if len(values) > 1 else math.nan,
                                 interval="mean ± std over fine-tuning runs"))  # fmt: skip
    return rows


def _wide(cfg: ExperimentConfig, results: pd.DataFrame) -> pd.DataFrame:
    """One row per variant, one column per (kind, task), each cell `value [low, high]` or `value ± std`."""
    columns = [f"zeroshot {t}" for t in [*cfg.zeroshot.tasks, "score"]] if cfg.zeroshot.enabled else []
    columns += [f"finetune {t}" for t in cfg.finetune.tasks] if cfg.finetune.enabled else []
    table = pd.DataFrame(index=pd.Index(list(cfg.variants), name="variant"), columns=columns, dtype=object)
    for row in results.itertuples():
        if not math.isnan(row.low):
            text = f"{row.value:.1f} [{row.low:.1f}, {row.high:.1f}]"
        elif not math.isnan(row.std):
            text = f"{row.value:.1f} ± {row.std:.1f}"
        else:
            text = f"{row.value:.1f}"
        table.loc[row.variant, f"{row.kind} {row.task}"] = text
    return table.fillna("-")


def _compute(cfg: ExperimentConfig, out: Path, specs: list[PretrainSpec], ft_runs: pd.DataFrame) -> pd.DataFrame:
    """Per pretraining run: steps, real tokens, padded positions, hours of optimiser steps (metrics.csv) and
    device-hours (hours x devices: GPUs, or the CPU threads torch used), zero-shot and fine-tuning hours."""
    rows = []
    for spec in specs:
        path = spec.output_dir / "metrics.csv"
        if not path.is_file():
            continue
        m = pd.read_csv(path)
        done = (_read_json(state_dir(out, spec) / "done.json") or {}).get("metrics", {})
        hours = float((m["tokens"] / m["tokens_per_s"]).sum()) / 3600
        devices = done.get("devices")
        device = done.get("device", "")
        zs = _read_json(zeroshot_dir(cfg, spec) / "metrics.json") or {}
        ft = (
            ft_runs[(ft_runs["variant"] == spec.variant) & (ft_runs["pretrain_seed"] == spec.seed)]
            if len(ft_runs)
            else ft_runs
        )
        rows.append(
            {
                "run": spec.name,
                "variant": spec.variant,
                "seed": spec.seed,
                "steps": int(m["global_step"].max()),
                "tokens": int(m["tokens"].sum()),
                "positions": int((m["global_batch"] * m["seq_len"]).sum()),
                "budget": cfg.tokens,
                "pretrain_hours": round(hours, 6),
                "device": device,
                "devices": devices,
                "device_hours": round(hours * devices, 6) if devices else math.nan,
                "unit": "GPU-hours" if device == "cuda" else "CPU-hours" if device == "cpu" else "",
                "zeroshot_hours": round(float(zs.get("seconds", math.nan)) / 3600, 6),
                "finetune_hours": round(float(ft["wall_seconds"].sum()) / 3600, 6) if len(ft) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A pipe table of `df` (index included when named), numbers formatted with `floatfmt`."""
    frame = df.reset_index() if df.index.name else df
    cells = [[_cell(v, floatfmt) for v in row] for row in frame.itertuples(index=False)]
    head = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


def _cell(value: Any, floatfmt: str) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else format(value, floatfmt)
    return str(value).replace("|", "\\|")


def _write(out: Path, rep: ExperimentReport) -> list[Path]:
    files = {
        "results.csv": rep.results.to_csv(index=False),
        "comparisons_zeroshot.csv": rep.zeroshot_comparisons.to_csv(index=False),
        "comparisons_finetune.csv": rep.finetune_comparisons.to_csv(index=False),
        "compute.csv": rep.compute.to_csv(index=False),
    }
    zs_cols = ["pretrain_seed", "task", "other", "accuracy_baseline", "accuracy_other", "diff", "diff_ci95_low",
               "diff_ci95_high", "p_bootstrap", "p_mcnemar"]  # fmt: skip
    ft_cols = ["pretrain_seed", "task", "variant", "n", "mean", "std", "delta", "p_t", "p_wilcoxon"]
    sections = [
        "# Experiment report\n\nBaseline: the first variant of the table. Zero-shot: accuracy % [95% bootstrap "
        "interval]; fine-tuning: dev metric x 100, mean ± std over runs.",
        "## Variants x tasks\n\n" + markdown_table(rep.table),
        "## Zero-shot: paired comparisons with the baseline (points)\n\n"
        + (markdown_table(rep.zeroshot_comparisons[zs_cols]) if len(rep.zeroshot_comparisons) else "none"),
        "## Fine-tuning: paired comparisons with the baseline (dev metric on its 0-1 scale, not x 100)\n\n"
        + (markdown_table(rep.finetune_comparisons[ft_cols]) if len(rep.finetune_comparisons) else "none"),
        "## Compute\n\n" + (markdown_table(rep.compute) if len(rep.compute) else "none"),
    ]
    if rep.missing:
        sections.append("## Not on disk yet\n\n" + "\n".join(f"- {m}" for m in rep.missing))
    files["results.md"] = "\n\n".join(sections) + "\n"
    return [write_text_atomic(out / name, text) for name, text in files.items()]


def _figures(rep: ExperimentReport, folder: Path, prefix: str) -> list[Path]:
    """Loss curves, the zero-shot differences and the fine-tuning bars (first pretraining seed) as PNG and SVG."""
    import matplotlib.pyplot as plt

    from ..evaluation import plot_comparison
    from ..finetuning.ablation_plots import plot_ablation_bars
    from ..reports import save_figure
    from .figures import plot_loss_curves

    paths = []
    drawings = [
        ("loss_curves", plot_loss_curves, rep.curves),
        ("zeroshot_diff", plot_comparison, _first_seed(rep.zeroshot_comparisons)),
        ("finetune_bars", plot_ablation_bars, _first_seed(rep.finetune_comparisons)),
    ]
    for name, draw, data in drawings:
        if len(data):
            fig = draw(data)
            paths += save_figure(fig, f"{prefix}_{name}", folder)
            plt.close(fig)
    return paths


def _first_seed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the first pretraining seed (a figure shows one seed's comparison)."""
    return table[table["pretrain_seed"] == table["pretrain_seed"].iloc[0]] if len(table) else table
