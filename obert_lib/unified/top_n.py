"""Top-N fine-tuning against full fine-tuning (issue 17): the pretraining text, the accuracy table over seeds,
compute against N and T, and their figures (notebook 06, docs/unified.md).

The accuracy comparison is an ablation (finetuning.ablation) whose variants are `model.freeze_layers`
overrides: `full` (0) and `top<N>` (L − N); `accuracy_table` reads its runs and summary into one row per
task × variant with N, mean ± std over seeds, Δ against full and the paired tests. `compute_grid` counts
FLOPs of the shared backbone against T separate models (unified.flops, meta device: exact and instant).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..config import ConfigError, DataError
from ..jsonlines import json_objects
from ..paths import resolve_data_path
from . import flops

# FewCLUE's unlabelled files and the field that holds their text (chid: a passage with #idiom# blanks).
UNLABELED_FIELDS = {"tnews": "sentence", "eprstmt": "sentence", "chid": "content", "bustm": "sentence1"}
SENTENCES_PER_DOCUMENT = 10  # short texts (titles, reviews) grouped so that a document has paragraphs to mask
_BLANK = re.compile(r"#idiom\d*#")


def unlabeled_corpus(data_dir: str | Path, output: str | Path, tasks: Sequence[str] = tuple(UNLABELED_FIELDS)) -> dict:
    """Write FewCLUE's unlabelled text as a JSONL corpus for `obert preprocess` ({"id", "text"} per line; short
    texts ten to a document, one per line; chid's #idiom# blanks removed). No labelled or test text is used.
    Returns {"documents", "texts", "bytes", "path"}."""
    root = resolve_data_path(data_dir)
    unknown = [t for t in tasks if t not in UNLABELED_FIELDS]
    if unknown:
        raise ConfigError(f"tasks: {unknown} ship no unlabeled.json; use some of {list(UNLABELED_FIELDS)}")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    documents = texts = 0
    with open(out, "w", encoding="utf-8") as fh:
        for task in tasks:
            path = root / task / "unlabeled.json"
            if not path.is_file():
                raise DataError(f"{path}: missing (FewCLUE's unlabelled {task} text)")
            field = UNLABELED_FIELDS[task]
            rows = [_BLANK.sub("", str(row.get(field, ""))).strip() for _, row in json_objects(path)]
            rows = [r for r in rows if r]
            per = 1 if task == "chid" else SENTENCES_PER_DOCUMENT
            for i in range(0, len(rows), per):
                doc = {"id": f"{task}-{i}", "text": "\n".join(rows[i : i + per])}
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
                documents += 1
            texts += len(rows)
    return {"documents": documents, "texts": texts, "bytes": out.stat().st_size, "path": str(out)}


def checkpoint_layers(checkpoint: str | Path) -> int:
    """L, the encoder layers of a pretrained or fine-tuned checkpoint (its config.json)."""
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        raise ConfigError(f"checkpoint: {path} is missing; give a pretrained checkpoint folder")
    return int(json.loads(path.read_text(encoding="utf-8"))["num_hidden_layers"])


def ablation_config(base: dict, tasks, tops: Sequence[int], layers: int, seeds: Sequence[int] = (0, 1, 2),
                    output_dir: str = "runs/top_n/ablation", workers: int = 1) -> dict:  # fmt: skip
    """A finetuning.ablation mapping: variant `full` (the baseline, nothing frozen) and `top<N>` for each N in
    `tops` (model.freeze_layers = L − N), over `tasks` (a list, or a mapping of per-task overrides) and seeds."""
    bad = [n for n in tops if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < layers]
    if bad or not tops:
        raise ConfigError(f"tops: {bad or tops!r} must be integers in [0, {layers - 1}] (N = {layers} is `full`)")
    variants = {"full": {}, **{f"top{n}": {"model.freeze_layers": layers - n} for n in sorted(tops, reverse=True)}}
    return {"base": base, "tasks": tasks, "variants": variants, "baseline": "full", "seeds": list(seeds),
            "output_dir": str(output_dir), "workers": workers}  # fmt: skip


def task_checkpoints(output_dir: str | Path, variant: str, seed: int) -> dict[str, Path]:
    """{task: its fine-tuned `best/`} for one variant and seed of a finished ablation (runs.csv)."""
    out = Path(output_dir)
    if not (out / "runs.csv").is_file():
        raise DataError(f"{out / 'runs.csv'}: missing; run the ablation first")
    runs = pd.read_csv(out / "runs.csv")
    mine = runs[(runs["variant"] == variant) & (runs["seed"] == seed) & (runs["status"] != "failed")]
    if mine.empty:
        raise ConfigError(f"variant/seed: no finished run of {variant!r} with seed {seed} in {out / 'runs.csv'}")
    return {str(r.task): out / r.run_dir / "best" for r in mine.itertuples()}


def max_difference(dirs: dict[str, str | Path], texts: Sequence[str]) -> dict[str, float]:
    """Largest |logit difference| per task between the UnifiedModel over `dirs` and each task model run alone
    (finetuning.model.load), on `texts` encoded once by the unified model's tokenizer."""
    import torch

    from ..finetuning import model as ftmodel
    from .model import UnifiedModel

    unified = UnifiedModel.from_checkpoints(dirs)
    enc = unified.tokenizer(list(texts), truncation=True, max_length=unified.max_length, padding="longest",
                            return_token_type_ids=True, return_tensors="pt")  # fmt: skip
    batch = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        shared = unified(**batch)
        alone = {name: ftmodel.load(folder)[0].eval()(batch).logits for name, folder in dirs.items()}
    return {name: float((shared[name] - alone[name]).abs().max()) for name in dirs}


def trained_layers(freeze_layers: int, layers: int) -> int:
    """N, the encoder layers a run trains: L − freeze_layers (full fine-tuning: N = L)."""
    return layers - int(freeze_layers)


def accuracy_table(output_dir: str | Path, layers: int) -> pd.DataFrame:
    """One row per task × variant of a top-N ablation's summary.csv, with N (trained layers, read from each
    variant's model.freeze_layers in ablation_config.json) beside mean, std, n, Δ against the baseline and the
    paired t / Wilcoxon p-values; sorted by task, then N from L down."""
    out = Path(output_dir)
    for name in ("summary.csv", "ablation_config.json"):
        if not (out / name).is_file():
            raise DataError(f"{out / name}: missing; run the ablation first (finetuning.ablation.run_ablation)")
    config = json.loads((out / "ablation_config.json").read_text(encoding="utf-8"))
    summary = pd.read_csv(out / "summary.csv")
    frozen = {name: _frozen(overrides or {}) for name, overrides in config["variants"].items()}
    summary.insert(2, "N", [trained_layers(frozen[v], layers) for v in summary["variant"]])
    if (summary["N"] < 0).any():
        raise ConfigError(f"layers: {layers} is fewer than a variant's model.freeze_layers ({max(frozen.values())})")
    columns = ["task", "variant", "N", "n", "mean", "std", "delta", "p_t", "p_wilcoxon", "seconds_per_step"]
    table = summary[columns].sort_values(["task", "N"], ascending=[True, False], kind="stable")
    return table.reset_index(drop=True)


def _frozen(overrides: dict) -> int:
    if "model.freeze_layers" in overrides:
        return int(overrides["model.freeze_layers"])
    return int((overrides.get("model") or {}).get("freeze_layers", 0))


def format_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """The accuracy table as report text: task, N, dev accuracy mean ± std (%), Δ (points), paired t p."""
    rows = []
    for r in table.itertuples():
        delta = "" if r.delta == 0 else f"{100 * r.delta:+.1f}"
        rows.append({"task": r.task, "variant": r.variant, "N trained": r.N, "seeds": r.n,
                     "dev accuracy %": f"{100 * r.mean:.1f} ± {100 * r.std:.1f}", "Δ vs full": delta,
                     "paired t p": "" if pd.isna(r.p_t) else f"{r.p_t:.3f}"})  # fmt: skip
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (numbers right-aligned), e.g. format_accuracy's for a report."""
    cols = [str(c) for c in table.columns]
    right = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---:" if r else "---" for r in right) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def plot_accuracy_vs_top(table: pd.DataFrame, layers: int):
    """Dev accuracy (mean ± std over seeds) against the trained layers N, one line per task; N = L is full."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for task, rows in table.groupby("task", sort=False):
        rows = rows.sort_values("N")
        ax.errorbar(rows["N"], 100 * rows["mean"], yerr=100 * rows["std"].fillna(0), marker="o", capsize=3,
                    label=task)  # fmt: skip
    ax.set_xlabel(f"trained top layers N (N = {layers}: full fine-tuning)")
    ax.set_ylabel("dev accuracy (%)")
    ax.set_xticks(sorted(set(table["N"])))
    ax.set_title("Top-N against full fine-tuning (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def compute_grid(shape: tuple[int, int, int, int] = (12, 768, 12, 3072), tasks: Sequence[int] = (1, 2, 3, 5, 10),
                 tops: Sequence[int] = (1, 3, 6), seq_len: int = 128) -> pd.DataFrame:  # fmt: skip
    """Counted FLOPs of the shared backbone over T separate models for every T × N (N <= L), one batch of
    1 × seq_len tokens: columns L, T, N, shared_gflop, separate_gflop, measured, layers (exact layer-count ratio
    (L − N + T·N) / (T·L)) and theory (OBERT's (L + T·N) / (T·L))."""
    layers = shape[0]
    rows = []
    for t in tasks:
        for n in [n for n in tops if n <= layers]:
            m = flops.measured(shape, t, n, 1, seq_len)
            rows.append({"L": layers, "T": t, "N": n, "shared_gflop": m["shared"] / 1e9,
                         "separate_gflop": m["separate"] / 1e9, "measured": m["shared"] / m["separate"],
                         "layers": flops.exact_ratio(layers, t, n),
                         "theory": flops.theory_ratio(layers, t, n)})  # fmt: skip
    return pd.DataFrame(rows)


def plot_compute(grid: pd.DataFrame):
    """Measured shared/separate FLOPs against T, one line per N, OBERT's theory dashed beside each."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for n, rows in grid.groupby("N"):
        line = ax.plot(rows["T"], rows["measured"], marker="o", label=f"N = {n} measured")[0]
        ax.plot(rows["T"], rows["theory"], linestyle="--", color=line.get_color(), alpha=0.6,
                label=f"N = {n} (L + T·N)/(T·L)")  # fmt: skip
    ax.set_xlabel("tasks T")
    ax.set_ylabel("shared / separate FLOPs")
    ax.set_title(f"One backbone for T tasks, L = {int(grid['L'].iloc[0])} (OBERT: 0.27 at T = 10, N = 3)")
    ax.set_xticks(sorted(set(grid["T"])))
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
