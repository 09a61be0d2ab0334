"""`obert bench finetune`: optimiser steps/s of `obert finetune` (finetuning.run) vs transformers' Trainer, and the
cost of each trick relative to no trick, in one table.

Both sides fine-tune the same checkpoint on the same examples: a randomly initialised BertForMaskedLM of a model
preset's shape over a BERT vocab.txt (default the shared 21,128-token Chinese one), saved once. Ours is
`finetuning.run(cfg)` as a user runs it (FinetuneModel: the encoder, [CLS] -> dropout -> linear); the
alternative is the standard HF recipe: `AutoModelForSequenceClassification` (BertForSequenceClassification,
which adds BERT's pooler, one H x H dense + tanh, before its dropout -> linear) trained by `Trainer` on the
examples tokenised one by one (truncation at max_length) and padded per batch by DataCollatorWithPadding, as
ours pads per batch. Matched settings: batch size, max_length, epochs (hence steps), seed, fp32 on CPU,
dropout 0.1, AdamW (torch.optim.AdamW, for-each-parameter: Trainer's `optim="adamw_torch"`; its default on
torch >= 2.8 is the fused kernel, not what ours runs), lr constant (ours has no schedule: Trainer's
`lr_scheduler_type="constant"`, no warm-up), weight decay 0.01 on matrices only (both leave biases and
LayerNorm out), gradient clipping at norm 1.0, no gradient accumulation; no evaluation, logging or saving
inside Trainer's steps.

What is timed, the same on both sides: the wall time of each optimiser step from the batch on the host to the
gradients freed (forward, backward, clipping, optimiser step, zero_grad; Trainer also its scheduler step and
step bookkeeping). Building the batch (ours: `encoding.encode`; Trainer: its DataLoader and collator) is
outside on both sides; so are model loading and ours' per-epoch evaluation. Ours reports it as
`seconds_per_step`; Trainer's is measured by a TrainerCallback (on_step_begin -> on_step_end). A row's figure
is the mean over the run's steps, and the median of `repeats` runs; the runs are interleaved with the row order
rotated each repeat, after one untimed 1-epoch warm-up run of each side. The two sides shuffle differently (ours
a permutation seeded by (seed, epoch), Trainer its RandomSampler), so their batches differ in padded width:
the `padded len` column, the mean width of a batch, shows by how much.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..paths import shared_data_dir

TRAINER = "Trainer"
TRICKS = ("fgm", "pgd", "rdrop", "msd", "noisytune", "lexical")
# The expected cost per step relative to no trick: FGM and R-Drop one more forward+backward, PGD K+1
# forwards (K = 3 by default), Multi-Sample Dropout k cheap head passes, NoisyTune nothing per step (once,
# before training). The lexical task has no stated expectation (a second head plus segmenting every batch).
EXPECTED = {"none": "1", "fgm": "2", "pgd": "K+1 = 4", "rdrop": "2", "msd": "~1", "noisytune": "1", "lexical": "-"}


@dataclass
class FinetuneRow:
    """One row of the table: the seconds per step of each timed run, the steps per run, the mean batch width."""

    name: str
    step_seconds: list[float] = field(default_factory=list)  # one mean per timed run
    steps: int = 0
    padded_len: float = float("nan")

    @property
    def seconds(self) -> float:
        return statistics.median(self.step_seconds)

    @property
    def steps_per_s(self) -> float:
        return 1.0 / self.seconds


def _default_data() -> tuple[Path, str]:
    """The shared FewCLUE data with its train_few_all split when present, else the sample data's train_0."""
    shared = shared_data_dir() / "fewclue"
    return (shared, "train_few_all") if shared.is_dir() else (Path("sample:fewclue"), "train_0")


def _ours(cfg: dict, out: Path, trick: str | None, epochs: int) -> tuple[float, int]:
    from .. import finetuning

    tricks = {trick: {"enabled": True}} if trick else {}
    run_cfg = {**cfg, "tricks": tricks, "output_dir": str(out), "overwrite": True}
    run_cfg["train"] = {**cfg["train"], "epochs": epochs}
    result = finetuning.run(run_cfg, progress=False)
    shutil.rmtree(out, ignore_errors=True)
    return result.metrics["seconds_per_step"], result.metrics["steps"]


def _ours_widths(task, tokenizer, cfg: dict) -> float:
    """Mean padded width of ours' batches: the order finetuning.trainer._train draws, encoded as it encodes."""
    from ..finetuning.encoding import encode

    t, n = cfg["train"], len(task.train)
    widths = []
    for epoch in range(t["epochs"]):
        order = np.random.default_rng([t["seed"], epoch]).permutation(n)
        for b in range(0, n, t["batch_size"]):
            rows = [task.train[i] for i in order[b : b + t["batch_size"]]]
            widths.append(encode(task.kind, tokenizer, rows, cfg["model"]["max_length"])["input_ids"].shape[1])
    return float(np.mean(widths))


def _trainer(ckpt: Path, task, cfg: dict, out: Path, epochs: int) -> tuple[float, int, float]:
    """Trainer on the same examples; (mean seconds per step, steps, mean padded width of a batch)."""
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    class StepClock(TrainerCallback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.t0)

    t, max_length = cfg["train"], cfg["model"]["max_length"]
    tokenizer = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    rows = [
        {**tokenizer(ex.text, ex.pair, truncation=True, max_length=max_length), "labels": int(ex.label)}
        for ex in task.train
    ]
    pad, widths = DataCollatorWithPadding(tokenizer), []

    def collate(features):  # the default collator, recording each batch's width (outside the timed step)
        batch = pad(features)
        widths.append(batch["input_ids"].shape[1])
        return batch

    set_seed(t["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(ckpt, num_labels=len(task.labels))
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=t["batch_size"],
        num_train_epochs=epochs,
        learning_rate=t["lr"],
        weight_decay=t["weight_decay"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=t["gradient_clipping"],
        optim="adamw_torch",
        seed=t["seed"],
        use_cpu=True,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )
    clock = StepClock()
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate, callbacks=[clock]
    )
    trainer.remove_callback(PrinterCallback)  # its end-of-training metrics line, printed after the last step
    trainer.train()
    shutil.rmtree(out, ignore_errors=True)
    return float(np.mean(clock.seconds)), len(clock.seconds), float(np.mean(widths))


def run(
    vocab: str | Path | None = None,
    preset: str = "small",
    max_length: int = 128,
    batch_size: int = 16,
    epochs: int = 3,
    threads: int | None = None,
    seed: int = 0,
    repeats: int = 3,
    tricks: tuple[str, ...] = TRICKS,
    task: str = "eprstmt",
    data_dir: str | Path | None = None,
    train_split: str | None = None,
    eval_split: str = "dev_0",
    lr: float = 5e-5,  # Trainer's default learning rate; speed does not depend on it
) -> list[FinetuneRow]:
    """Time Trainer, ours and ours with each trick; print one table and `ratio: <ours steps/s / Trainer's>`."""
    from transformers.utils import logging as hf_logging

    from ..corpus.tokenizer import load_saved_tokenizer
    from ..finetuning.examples import DataSource, load_task
    from .zeroshot import _checkpoint

    unknown = [t for t in tricks if t not in TRICKS]
    if unknown or repeats < 1 or epochs < 1:
        raise ConfigError(f"tricks {unknown} not in {list(TRICKS)}, or repeats {repeats} / epochs {epochs} < 1")
    vocab = Path(vocab) if vocab else shared_data_dir() / "vocab" / "bert-base-chinese-vocab.txt"
    if not vocab.is_file():
        raise FileNotFoundError(f"{vocab} does not exist (see ../shared/data/README.md); pass --vocab")
    default_dir, default_split = _default_data()
    data_dir, train_split = str(data_dir or default_dir), train_split or default_split
    saved_threads, verbosity = torch.get_num_threads(), hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    tmp = Path(tempfile.mkdtemp(prefix="obert-bench-finetune-"))
    try:
        hf_logging.set_verbosity_error()  # Trainer's start-up notes, the fresh classifier/pooler weights
        hf_logging.disable_progress_bar()  # from_pretrained's 'Loading weights' bar on both sides
        if threads:
            torch.set_num_threads(threads)
        ckpt = tmp / "bert"
        model = _checkpoint(ckpt, vocab, preset, seed)
        data = {"task": task, "data_dir": data_dir, "train_split": train_split, "eval_split": eval_split}
        cfg = {
            "data": data,
            "model": {"checkpoint": str(ckpt), "max_length": max_length, "classifier_dropout": 0.1},
            "train": {"epochs": epochs, "lr": lr, "weight_decay": 0.01, "batch_size": batch_size, "seed": seed,
                      "gradient_clipping": 1.0, "engine": "torch", "precision": "fp32"},
        }  # fmt: skip
        examples = load_task(DataSource(task=task, data_dir=data_dir), train_split, eval_split)
        if examples.kind not in ("classification", "pair"):
            raise ConfigError(f"task {task!r} is a {examples.kind} task; compare a classification or pair task")
        rows = {name: FinetuneRow(name) for name in (TRAINER, "none", *tricks)}
        rows["none"].padded_len = _ours_widths(examples, load_saved_tokenizer(ckpt), cfg)
        for name in tricks:
            rows[name].padded_len = rows["none"].padded_len  # same order, same batches

        def once(name: str, n_epochs: int) -> tuple[float, int]:
            out = tmp / "out"
            if name == TRAINER:
                seconds, steps, rows[TRAINER].padded_len = _trainer(ckpt, examples, cfg, out, n_epochs)
                return seconds, steps
            return _ours(cfg, out, None if name == "none" else name, n_epochs)

        once("none", 1), once(TRAINER, 1)  # warm-up: imports, first-call allocations, thread pools
        names = list(rows)
        for k in range(repeats):
            for name in names[k % len(names) :] + names[: k % len(names)]:  # rotated: drift hits every row alike
                seconds, rows[name].steps = once(name, epochs)
                rows[name].step_seconds.append(seconds)
        if len({r.steps for r in rows.values()}) != 1:
            raise RuntimeError(f"the runs took different numbers of steps: { {n: r.steps for n, r in rows.items()} }")

        base = rows["none"].seconds
        print(f"device: CPU; torch threads: {torch.get_num_threads()}; fp32; {model}, random weights (seed {seed})")
        print(
            f"data: {data_dir} {task} {train_split} ({len(examples.train)} rows, {len(examples.labels)} labels); "
            f"batch {batch_size}, max_length {max_length}, {epochs} epochs = {rows['none'].steps} optimiser steps "
            f"per run; AdamW lr {lr} constant, weight decay 0.01, clipping 1.0"
        )
        print(
            "ours: finetuning.run (FinetuneModel, [CLS] -> dropout -> linear), its seconds_per_step; Trainer: "
            "BertForSequenceClassification, optim adamw_torch, timed on_step_begin -> on_step_end"
        )
        print(
            f"median of {repeats} interleaved runs per row after a 1-epoch warm-up of each side; cost = s/step / ours'"
        )
        print(
            f"\n{'run':16s} {'padded len':>10s} {'ms/step':>8s} {'steps/s':>8s} {'cost':>5s} {'expected':>9s}  runs ms"
        )
        for name, r in rows.items():
            label = name if name == TRAINER else f"ours, {'no trick' if name == 'none' else name}"
            runs = ", ".join(f"{1000 * s:.1f}" for s in r.step_seconds)
            print(
                f"{label:16s} {r.padded_len:10.1f} {1000 * r.seconds:8.1f} {r.steps_per_s:8.2f} "
                f"{r.seconds / base:5.2f} {EXPECTED.get(name, '-'):>9s}  {runs}"
            )
        print(f"\nratio: {rows['none'].steps_per_s / rows[TRAINER].steps_per_s:.2f}")
        return list(rows.values())
    finally:
        torch.set_num_threads(saved_threads)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        shutil.rmtree(tmp, ignore_errors=True)
