"""Fine-tuning on a FewCLUE task with switchable tricks, and ablations over tricks x seeds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import config as cfgmod
from .. import model as _registers_obert  # noqa: F401  (registers 'obert' with the Auto classes)
from ..config import DataError, require
from ..evaluation.fewclue import label_index, load_split, task_spec
from ..model.checkpoint_check import check_checkpoint, check_vocabulary, load_tokenizer
from ..paths import check_output_dir, resolve_data_path
from ..results import append_result, hash_files, summarise
from .tricks import FGM, rdrop_loss

TRICKS = ("none", "fgm", "rdrop")
# Single-sentence and sentence-pair tasks with fixed labels; the other FewCLUE tasks need their own encoders.
FINETUNE_TASKS = ("eprstmt", "bustm")


@dataclass
class FinetuneConfig:
    checkpoint: str = "runs/pretrain/checkpoints/stage-2-seq128"
    task: str = "eprstmt"
    data_dir: str = "sample:fewclue"
    train_split: str = "train_0"
    eval_split: str = "dev_0"
    trick: Literal["none", "fgm", "rdrop"] = "none"
    epochs: int = 3
    lr: float = 1e-3  # tiny encoders tolerate a high rate; use ~2e-5 for base-size models
    batch_size: int = 8
    max_length: int = 128
    seed: int = 0
    fgm_epsilon: float = 1.0  # the common default in the FGM literature for BERT word embeddings
    rdrop_alpha: float = 1.0
    output_dir: str = "runs/finetune"
    results_table: str | None = None  # default <output_dir>/results.csv

    def __post_init__(self):
        task_spec(self.task)
        require(
            self.task in FINETUNE_TASKS,
            "task",
            f"{self.task} is a FewCLUE task that fine-tuning cannot encode yet; use one of {list(FINETUNE_TASKS)}",
        )
        require(self.epochs >= 1, "epochs", "must be >= 1")
        require(self.batch_size >= 1, "batch_size", f"{self.batch_size} rows per step is impossible; use >= 1")
        require(
            self.max_length >= 8,
            "max_length",
            f"{self.max_length} tokens cannot hold [CLS], a text and [SEP]; use >= 8 (128 by default)",
        )
        require(self.lr > 0, "lr", "must be > 0")


@dataclass
class FinetuneResult:
    metrics: dict
    history: pd.DataFrame
    output_dir: Path


def _encode(tokenizer, task: str, rows: list[dict], max_length: int) -> dict[str, torch.Tensor]:
    spec = task_spec(task)
    texts = [[r[k] for k in spec.text_keys] for r in rows]
    if len(spec.text_keys) == 1:
        enc = tokenizer(
            [t[0] for t in texts], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
    else:
        enc = tokenizer(
            [t[0] for t in texts],
            [t[1] for t in texts],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
    enc["labels"] = torch.tensor([label_index(task, r) for r in rows])
    return dict(enc)


@torch.no_grad()
def evaluate(model, tokenizer, task: str, rows: list[dict], max_length: int, batch_size: int = 32) -> float:
    """Accuracy of `model` on labelled rows."""
    model.eval()
    correct = 0
    for start in range(0, len(rows), batch_size):
        batch = _encode(tokenizer, task, rows[start : start + batch_size], max_length)
        labels = batch.pop("labels")
        correct += int((model(**batch).logits.argmax(-1) == labels).sum())
    return correct / max(1, len(rows))


def run(cfg: FinetuneConfig | dict | str | None = None, progress: bool = True) -> FinetuneResult:
    """Fine-tune a pretrained checkpoint on one task with one trick; writes metrics, history and config."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    cfg = cfgmod.load(FinetuneConfig, cfg)
    spec = task_spec(cfg.task)
    ckpt = Path(cfg.checkpoint)
    check_output_dir(cfg.output_dir)
    model_config = check_checkpoint(ckpt, masked_lm=False)
    train_rows = load_split(cfg.task, cfg.data_dir, cfg.train_split)
    eval_rows = load_split(cfg.task, cfg.data_dir, cfg.eval_split)
    for split, rows in ((cfg.train_split, train_rows), (cfg.eval_split, eval_rows)):
        unlabelled = sum(1 for r in rows if r.get(spec.label_key) is None)
        if unlabelled:
            raise DataError(
                f"{split}: {unlabelled} of {len(rows)} rows of {cfg.task} have no label; "
                "fine-tuning and its evaluation need labelled splits"
            )
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(ckpt)
    check_vocabulary(ckpt, model_config, tokenizer)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the fresh classifier head is expected; its warning is noise here
    model = AutoModelForSequenceClassification.from_pretrained(ckpt, num_labels=len(spec.labels), local_files_only=True)
    hf_logging.set_verbosity(verbosity)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    fgm = FGM(model, cfg.fgm_epsilon) if cfg.trick == "fgm" else None
    rng = np.random.default_rng(cfg.seed)
    history = []
    t0 = time.perf_counter()
    for epoch in tqdm(range(cfg.epochs), desc=f"fine-tune {cfg.task} [{cfg.trick}]", disable=not progress):
        model.train()
        order = rng.permutation(len(train_rows))
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            batch = _encode(
                tokenizer, cfg.task, [train_rows[i] for i in order[start : start + cfg.batch_size]], cfg.max_length
            )
            labels = batch.pop("labels")
            optimizer.zero_grad()
            if cfg.trick == "rdrop":
                loss = rdrop_loss(model(**batch).logits, model(**batch).logits, labels, cfg.rdrop_alpha)
                loss.backward()
            else:
                loss = F.cross_entropy(model(**batch).logits, labels)
                loss.backward()
                if fgm is not None:
                    fgm.attack()
                    F.cross_entropy(model(**batch).logits, labels).backward()  # gradients accumulate
                    fgm.restore()
            optimizer.step()
            losses.append(loss.item())
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "eval_accuracy": evaluate(model, tokenizer, cfg.task, eval_rows, cfg.max_length),
            }
        )
    hist = pd.DataFrame(history)
    metrics = {
        "eval_accuracy": float(hist["eval_accuracy"].iloc[-1]),
        "train_loss": float(hist["train_loss"].iloc[-1]),
        "n_train": len(train_rows),
        "n_eval": len(eval_rows),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.save(cfg, out / "config.json")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    hist.to_csv(out / "history.csv", index=False)
    base = resolve_data_path(cfg.data_dir) / cfg.task
    append_result(
        cfg.results_table or out / "results.csv",
        f"finetune/{cfg.task}",
        cfg.seed,
        hash_files([base / f"{cfg.train_split}.json", base / f"{cfg.eval_split}.json"]),
        cfgmod.to_dict(cfg),
        {"eval_accuracy": metrics["eval_accuracy"], "train_loss": metrics["train_loss"]},
    )
    return FinetuneResult(metrics=metrics, history=hist, output_dir=out)


def run_ablation(
    base: FinetuneConfig | dict | str, variants: dict[str, dict], seeds: Sequence[int], progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every variant (a name -> dotted overrides of `base`) for every seed.

    Returns (one row per run, summary with mean/std/count of eval accuracy per variant).
    """
    base_cfg = cfgmod.load(FinetuneConfig, base)
    rows = []
    for name, overrides in variants.items():
        for seed in seeds:
            cfg = cfgmod.load(
                FinetuneConfig,
                base_cfg,
                **{
                    **overrides,
                    "seed": seed,
                    "output_dir": str(Path(base_cfg.output_dir) / f"{name}-seed{seed}"),
                    "results_table": base_cfg.results_table or str(Path(base_cfg.output_dir) / "results.csv"),
                },
            )
            result = run(cfg, progress=progress)
            rows.append({"variant": name, "seed": seed, **result.metrics})
    runs = pd.DataFrame(rows)
    return runs, summarise(runs, ["variant"], "eval_accuracy")


def plot_ablation(summary: pd.DataFrame):
    """Bar chart of mean eval accuracy per variant with one standard deviation as error bars."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(summary["variant"], summary["mean"], yerr=summary["std"], capsize=4, color="#5cb85c")
    ax.set(ylabel="eval accuracy 验证集准确率", ylim=(0, 1), title="微调技巧消融 fine-tuning ablation")
    fig.tight_layout()
    return fig
