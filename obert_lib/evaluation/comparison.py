"""Compare zero-shot runs scored on the same rows: accuracy differences per task and for the score, with a
paired bootstrap interval and p-value (Koehn 2004) and the exact McNemar test (Dietterich 1998).

A run folder is what the zero-shot evaluator writes: <run>/metrics.json and <run>/<task>/scores.csv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ConfigError, DataError
from ..results import write_text_atomic
from .statistics import BOOTSTRAP_RESAMPLES, mcnemar_exact, paired_bootstrap, paired_bootstrap_score

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "task",
    "baseline",
    "other",
    "n",
    "accuracy_baseline",
    "accuracy_other",
    "diff",
    "diff_ci95_low",
    "diff_ci95_high",
    "p_bootstrap",
    "p_mcnemar",
]
_CORRECT = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def _read_metrics(run: Path) -> dict:
    path = run / "metrics.json"
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass run folders written by the zero-shot evaluator")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); rerun the zero-shot evaluation to rewrite it") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("tasks"), dict):
        raise DataError(f"{path}: has no 'tasks' mapping; pass run folders written by the zero-shot evaluator")
    for key in ("split", "data_dir"):
        if key not in metrics:
            raise DataError(f"{path}: has no '{key}' key; rerun the zero-shot evaluation to rewrite it")
    return metrics


def _read_scores(run: Path, task: str, metrics: dict) -> tuple[list[str], list[str], np.ndarray]:
    """(ids, gold, correct) of <run>/<task>/scores.csv in row order; DataError for an unusable file."""
    import pandas as pd

    if not isinstance(metrics["tasks"][task], dict):
        raise DataError(f"{run / 'metrics.json'}: tasks.{task} is not a mapping; rerun the zero-shot evaluation")
    if metrics["tasks"][task].get("accuracy") is None:
        raise DataError(
            f"{run / 'metrics.json'}: task {task} has accuracy null (an unlabelled split?); "
            f"compare runs scored on a labelled split such as dev_few_all"
        )
    path = run / task / "scores.csv"
    if not path.is_file():
        raise DataError(f"{path}: no such file; rerun the zero-shot evaluation of {run} to write it")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]}); rerun the evaluation") from None
    missing = [c for c in ("id", "gold", "correct") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: lacks the column(s) {', '.join(missing)}; rerun the zero-shot evaluation")
    if len(df) == 0:
        raise DataError(f"{path}: holds no scored rows; rerun the zero-shot evaluation of {task}")
    flags = df["correct"].str.strip().str.lower()
    bad = ~flags.isin(list(_CORRECT))
    if bad.any():
        line = int(np.argmax(bad.to_numpy())) + 2  # 1-based, after the header
        value = df["correct"].iloc[line - 2]
        if value.strip() == "":
            raise DataError(
                f"{path}, line {line}: 'correct' is empty (an unlabelled split?); "
                f"compare runs scored on a labelled split such as dev_few_all"
            )
        raise DataError(f"{path}, line {line}: 'correct' is {value!r}, expected 0 or 1; rerun the evaluation")
    n = metrics["tasks"][task].get("n")
    if n is not None and n != len(df):
        raise DataError(
            f"{path}: holds {len(df)} rows but metrics.json says n={n} (an interrupted run?); rerun the evaluation"
        )
    return df["id"].tolist(), df["gold"].tolist(), flags.map(_CORRECT).to_numpy(dtype=float)


def _names(runs: list[Path], names: list[str] | None) -> list[str]:
    if names is None:
        names = [r.name or str(r) for r in runs]
        return names if len(set(names)) == len(names) else [str(r) for r in runs]
    names = [str(n) for n in names]
    if len(names) != len(runs):
        raise ConfigError(f"names: {len(names)} names for {len(runs)} run folders; give one name per run or none")
    if len(set(names)) != len(names):
        raise ConfigError(f"names: {names} repeats a name; give each run its own name")
    return names


def compare_runs(
    run_dirs: list[str | Path], names: list[str] | None = None, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> pd.DataFrame:
    """Compare every run with the first (the baseline) on the tasks all runs scored, row by row.

    One row per (other run, task) in the baseline's task order, then one row task="score" per other run (the
    plain mean over those tasks; n = their rows together, no McNemar p). Columns: COLUMNS; accuracies, diff
    (other - baseline) and its 95% paired-bootstrap interval in points (0-100). Tasks missing from some run
    are left out and listed in df.attrs["left_out"]. Runs must share split and data_dir and, per task, the
    same rows (count, ids and gold labels in the same order); otherwise DataError.
    """
    import pandas as pd

    runs = [Path(r) for r in run_dirs]
    if len(runs) < 2:
        raise ConfigError(f"run_dirs: {len(runs)} run folder(s); give a baseline and at least one run to compare")
    names = _names(runs, names)
    metrics = [_read_metrics(r) for r in runs]
    base, base_metrics = runs[0], metrics[0]
    for run, m in zip(runs[1:], metrics[1:]):
        for key in ("split", "data_dir"):
            if str(m[key]) != str(base_metrics[key]):
                raise DataError(
                    f"{base} and {run} were scored with different {key} ({base_metrics[key]!r} vs {m[key]!r}); "
                    f"compare runs scored on the same data"
                )
    every = list(dict.fromkeys(t for m in metrics for t in m["tasks"]))
    tasks = [t for t in base_metrics["tasks"] if all(t in m["tasks"] for m in metrics)]
    if not tasks:
        raise DataError(f"{', '.join(map(str, runs))} share no task; compare runs scored on the same tasks")
    scores = [{t: _read_scores(r, t, m) for t in tasks} for r, m in zip(runs, metrics)]
    for run, other in zip(runs[1:], scores[1:]):
        for t in tasks:
            (ids_a, gold_a, _), (ids_b, gold_b, _) = scores[0][t], other[t]
            if len(ids_a) != len(ids_b):
                problem = f"a different number of rows ({len(ids_a)} vs {len(ids_b)})"
            elif ids_a != ids_b:
                line = next(i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y) + 2
                problem = f"different ids (scores.csv line {line}: {ids_a[line - 2]!r} vs {ids_b[line - 2]!r})"
            elif gold_a != gold_b:
                line = next(i for i, (x, y) in enumerate(zip(gold_a, gold_b)) if x != y) + 2
                problem = f"different gold labels (scores.csv line {line})"
            else:
                continue
            raise DataError(f"{base} and {run} scored task {t} on {problem}; compare runs scored on the same rows")

    rows = []
    for name, other in zip(names[1:], scores[1:]):
        a_by_task = {t: scores[0][t][2] for t in tasks}
        b_by_task = {t: other[t][2] for t in tasks}
        for t in tasks:
            a, b = a_by_task[t], b_by_task[t]
            boot = paired_bootstrap(a, b, resamples=resamples, seed=seed)
            rows.append(_row(t, names[0], name, len(a), a.mean(), b.mean(), boot, mcnemar_exact(a, b)["p_value"]))
        boot = paired_bootstrap_score(a_by_task, b_by_task, resamples=resamples, seed=seed)
        acc_a = float(np.mean([v.mean() for v in a_by_task.values()]))
        acc_b = float(np.mean([v.mean() for v in b_by_task.values()]))
        n = sum(len(v) for v in a_by_task.values())
        rows.append(_row("score", names[0], name, n, acc_a, acc_b, boot, float("nan")))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["left_out"] = [t for t in every if t not in tasks]
    return df


def _row(task, baseline, other, n, acc_a, acc_b, boot, p_mcnemar) -> dict:
    low, high = boot["ci95"]
    return {
        "task": task,
        "baseline": baseline,
        "other": other,
        "n": int(n),
        "accuracy_baseline": 100 * float(acc_a),
        "accuracy_other": 100 * float(acc_b),
        "diff": 100 * boot["diff"],
        "diff_ci95_low": 100 * low,
        "diff_ci95_high": 100 * high,
        "p_bootstrap": boot["p_value"],
        "p_mcnemar": p_mcnemar,
    }


def write_comparison(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the compare_runs table as CSV through a temporary file and a rename; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, df.to_csv(index=False))


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3g}"  # a bootstrap p of 0 only says p < 1 / resamples


def plot_comparison(df: pd.DataFrame):
    """Per task (and the score) the accuracy difference other - baseline with its 95% paired-bootstrap interval
    as a horizontal error bar, a zero line, and the bootstrap and McNemar p-values beside each bar."""
    import matplotlib.pyplot as plt

    from ..reports import setup_cjk_font

    setup_cjk_font()  # the titles are Chinese
    labels = list(dict.fromkeys(df["task"]))
    others = list(dict.fromkeys(df["other"]))
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(labels) * max(1, len(others))))
    step = 0.8 / max(1, len(others))
    for k, other in enumerate(others):
        part = df[df["other"] == other]
        y = np.array([labels.index(t) for t in part["task"]]) + (k - (len(others) - 1) / 2) * step
        diff = part["diff"].to_numpy(dtype=float)
        err = [diff - part["diff_ci95_low"].to_numpy(dtype=float), part["diff_ci95_high"].to_numpy(dtype=float) - diff]
        ax.errorbar(diff, y, xerr=err, fmt="o", capsize=3, label=f"{other} - {part['baseline'].iloc[0]}")
        for yy, high, pb, pm in zip(y, part["diff_ci95_high"], part["p_bootstrap"], part["p_mcnemar"]):
            text = f"p{_p(pb)}" + ("" if np.isnan(pm) else f" · McNemar {_p(pm)}")
            ax.annotate(text, (high, yy), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
    ax.axvline(0, color="k", lw=1, ls="--")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.margins(x=0.25)
    ax.set(
        xlabel="准确率差异 accuracy difference (points, 95% paired bootstrap)",
        title="与基线的差异 difference from the baseline",
    )
    if len(others) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
