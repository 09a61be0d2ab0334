"""ZeroCLUE-style zero-shot scoring: a cloze template per task, label words scored by the MLM head.

The verbalizer approach follows PET (Schick & Schütze 2021) as used in the FewCLUE baselines.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .. import config as cfgmod
from .. import model as _registers_obert  # noqa: F401  (registers 'obert' with the Auto classes)
from ..config import DataError, require
from ..model.checkpoint_check import check_checkpoint, check_vocabulary, load_tokenizer
from ..paths import check_output_dir, resolve_data_path
from ..results import append_result, hash_files, write_text_atomic
from .fewclue import label_index, load_split, task_spec
from .statistics import bootstrap_ci

# task -> (template with {mask} and the task's text fields, label -> label word)
TEMPLATES = {
    "eprstmt": ("{mask}满意。{sentence}", {"Negative": "不", "Positive": "很"}),
    "bustm": ("“{sentence1}”与“{sentence2}”的意思{mask}同。", {"0": "不", "1": "相"}),
}


@dataclass
class ZeroShotConfig:
    checkpoint: str = "runs/pretrain/checkpoints/stage-2-seq128"
    task: str = "eprstmt"
    data_dir: str = "sample:fewclue"
    split: str = "dev_0"
    max_length: int = 128
    batch_size: int = 16
    output_dir: str = "runs/zeroshot"
    results_table: str | None = None  # default <output_dir>/results.csv
    seed: int = 0
    template: str | None = None  # override the task's template
    verbalizer: dict[str, str] = field(default_factory=dict)  # override the task's label words

    def __post_init__(self):
        task_spec(self.task)
        require(
            self.max_length >= 16,
            "max_length",
            f"{self.max_length} is too short for a template; use >= 16 (128 by default)",
        )
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} rows per forward pass is impossible; use >= 1")


def build_cloze(
    tokenizer, template: str, row: dict, label_word_len: int, max_length: int
) -> tuple[list[int], list[int]]:
    """Token ids of the filled template (with [CLS]/[SEP]) and the positions of its [MASK] tokens.

    Text fields are truncated (longest first) so the template always fits in max_length.
    """
    before, _, after = template.partition("{mask}")
    pieces_before = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in _split_fields(before, row)]
    pieces_after = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in _split_fields(after, row)]
    budget = max_length - 2 - label_word_len
    while sum(map(len, pieces_before + pieces_after)) > budget:
        longest = max(pieces_before + pieces_after, key=len)
        longest.pop()
    ids = [tokenizer.cls_token_id] + sum(pieces_before, []) + [tokenizer.mask_token_id] * label_word_len
    positions = list(range(len(ids) - label_word_len, len(ids)))
    ids += sum(pieces_after, []) + [tokenizer.sep_token_id]
    return ids, positions


def _split_fields(fragment: str, row: dict) -> list[str]:
    """Fill a template fragment; each filled field and each literal becomes its own piece (truncation unit)."""
    import re

    parts = re.split(r"(\{\w+\})", fragment)
    out = []
    for p in parts:
        if not p:
            continue
        out.append(str(row[p[1:-1]]) if p.startswith("{") else p)
    return out


@torch.no_grad()
def score(
    model,
    tokenizer,
    rows: list[dict],
    template: str,
    verbalizer: dict[str, str],
    labels: tuple[str, ...],
    max_length: int,
    batch_size: int,
    progress: bool = True,
) -> np.ndarray:
    """Log-probability of each label word at the mask positions: float [n_rows, n_labels]."""
    words = [verbalizer[label] for label in labels]
    word_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in words]
    length = len(word_ids[0])
    if any(len(w) != length for w in word_ids):
        raise ValueError(f"verbalizer words {words} must tokenise to the same number of tokens")
    if any(tokenizer.unk_token_id in w for w in word_ids):
        raise ValueError(f"a verbalizer word of {words} is not in the vocabulary (tokenises to [UNK])")
    model.eval()
    out = np.zeros((len(rows), len(labels)))
    for start in tqdm(range(0, len(rows), batch_size), desc="zero-shot", disable=not progress):
        chunk = rows[start : start + batch_size]
        built = [build_cloze(tokenizer, template, r, length, max_length) for r in chunk]
        width = max(len(ids) for ids, _ in built)
        input_ids = torch.full((len(built), width), tokenizer.pad_token_id)  # [B, T]
        attention = torch.zeros((len(built), width), dtype=torch.long)  # [B, T]
        for i, (ids, _) in enumerate(built):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
        logp = torch.log_softmax(model(input_ids=input_ids, attention_mask=attention).logits, -1)  # [B, T, V]
        for i, (_, positions) in enumerate(built):
            for j, wid in enumerate(word_ids):
                out[start + i, j] = sum(float(logp[i, p, t]) for p, t in zip(positions, wid))
    return out


@dataclass
class ZeroShotResult:
    metrics: dict
    predictions: pd.DataFrame
    output_dir: Path


def run_dir(cfg: ZeroShotConfig) -> Path:
    """Where one run writes: <output_dir>/<task>/<split>/, so runs of other tasks and splits sharing an
    output folder never overwrite each other (their rows meet in <output_dir>/results.csv)."""
    return Path(cfg.output_dir) / cfg.task / cfg.split


def run(cfg: ZeroShotConfig | dict | str | None = None, progress: bool = True) -> ZeroShotResult:
    """Score a checkpoint zero-shot on one labelled FewCLUE split; writes metrics, predictions and config.

    Everything a user names is checked before the model loads: the checkpoint (an MLM, config.json that
    parses, a vocabulary covering its tokenizer) and the split (rows that all carry a label).
    """
    from transformers import AutoModelForMaskedLM

    cfg = cfgmod.load(ZeroShotConfig, cfg)
    spec = task_spec(cfg.task)
    template, verbalizer = TEMPLATES[cfg.task]
    template = cfg.template or template
    verbalizer = {**verbalizer, **cfg.verbalizer}
    ckpt = Path(cfg.checkpoint)
    check_output_dir(cfg.output_dir)
    model_config = check_checkpoint(ckpt, masked_lm=True)
    rows = load_split(cfg.task, cfg.data_dir, cfg.split)
    unlabelled = sum(1 for r in rows if r.get(spec.label_key) is None)
    if unlabelled:
        raise DataError(
            f"split: {cfg.split} of {cfg.task} has {unlabelled} of {len(rows)} rows without a label; "
            "zero-shot accuracy needs a labelled split (dev_0, dev_few_all, test_public)"
        )
    tokenizer = load_tokenizer(ckpt)
    check_vocabulary(ckpt, model_config, tokenizer)
    model = AutoModelForMaskedLM.from_pretrained(ckpt, local_files_only=True)
    t0 = time.perf_counter()
    scores = score(model, tokenizer, rows, template, verbalizer, spec.labels, cfg.max_length, cfg.batch_size, progress)
    gold = np.array([label_index(cfg.task, r) for r in rows])
    pred = scores.argmax(1)
    majority = np.bincount(gold, minlength=len(spec.labels)).max() / len(gold)
    metrics = {
        "accuracy": float((pred == gold).mean()),
        "ci95": list(bootstrap_ci(pred == gold, seed=cfg.seed)),  # percentile bootstrap over the rows
        "n": len(rows),
        "majority_baseline": float(majority),
        "predicted_share": {label: float((pred == i).mean()) for i, label in enumerate(spec.labels)},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    predictions = pd.DataFrame(
        {
            "id": [r.get("id", r.get("idx")) for r in rows],
            "gold": [spec.labels[g] for g in gold],
            "pred": [spec.labels[p] for p in pred],
            **{f"logp_{label}": scores[:, i] for i, label in enumerate(spec.labels)},
        }
    )
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    write_text_atomic(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=2))
    write_text_atomic(out / "predictions.csv", predictions.to_csv(index=False))
    split_file = resolve_data_path(cfg.data_dir) / cfg.task / f"{cfg.split}.json"
    table = cfg.results_table or Path(cfg.output_dir) / "results.csv"
    append_result(
        table,
        f"zeroshot/{cfg.task}",
        cfg.seed,
        hash_files([split_file]),
        cfgmod.to_dict(cfg),
        {"accuracy": metrics["accuracy"], "majority_baseline": metrics["majority_baseline"]},
    )
    return ZeroShotResult(metrics=metrics, predictions=predictions, output_dir=out)


def plot_zero_shot(result: ZeroShotResult, title: str = ""):
    """Accuracy (with its 95% bootstrap interval) against the majority-class baseline, and the share of each
    predicted label."""
    import matplotlib.pyplot as plt

    m = result.metrics
    low, high = m.get("ci95", (m["accuracy"], m["accuracy"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    axes[0].bar(
        ["零样本 zero-shot", "多数类 majority"],
        [m["accuracy"], m["majority_baseline"]],
        yerr=[[m["accuracy"] - low, 0], [high - m["accuracy"], 0]],
        capsize=4,
        color=["#428bca", "#999999"],
    )
    axes[0].set(ylim=(0, 1), ylabel="accuracy", title=title or "零样本准确率 zero-shot accuracy")
    shares = m["predicted_share"]
    axes[1].bar(list(shares), list(shares.values()), color="#f0ad4e")
    axes[1].set(ylim=(0, 1), title="预测标签占比 predicted label share")
    fig.tight_layout()
    return fig
