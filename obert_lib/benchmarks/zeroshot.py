"""`obert bench zeroshot`: rows/s of `obert zeroshot` (evaluation.run) vs transformers' fill-mask pipeline.

Ours is timed end to end as a user runs it: `evaluation.run(cfg, progress=False)` per task, which reads and
checks the split, loads the checkpoint, tokenises, scores (BERT layout: the MLM head at the slots only,
rows batched by length), computes the bootstrap intervals and writes predictions/scores/metrics. The
alternative is the standard HF way to score label words: `pipeline("fill-mask", model=..., tokenizer=...)`
called on the filled templates with `targets=` (every token of every label word) and `batch_size=`; a word
scores the sum over its [MASK] slots of log(the pipeline's score of its token there). The pipeline softmaxes
the full-vocabulary logits before picking the targets, so that is the same log-softmax sum ours computes.
Model load is included on both sides (ours loads inside run(); the pipeline side times `pipeline(...)`).
The pipeline side is handed its texts ready (filling templates is untimed), so it skips the reading,
checking, intervals and writing that ours pays for: the comparison leans against ours.

Tasks: the eight with fixed label words. chid is left out: its words are each row's own seven candidate
idioms, so the pipeline would need one call per row with that row's targets (no batching), a comparison of
call overhead more than of scoring. Rows whose content ours cuts to fit max_length (csldcp, iflytek, some
tnews/ocnli/csl) are given to the pipeline as the decoded text of our builder's ids, so both sides read the
same tokens; every other row as the template filled with the raw fields and `[MASK]` per slot, as an HF user
would. The `same ids` column checks that the pipeline's tokenizer gives exactly our input ids, so a
disagreement in predictions can only come from scoring.

Model: a randomly initialised BertForMaskedLM over the 21,128-token Chinese BERT vocabulary, shape from a
model preset (default small: 4 layers, hidden 256, 4 heads, ffn 1024 -- the size that scores the 5,338
dev_few_all rows of the eight tasks on both sides, repeated, in minutes on 2 CPU cores). At that width the
full-vocabulary projection the pipeline runs at every position is ~60% of its forward FLOPs (~16% at
BERT-base), so skipping it counts for more here than at BERT-base size; `--preset base` measures that.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..config import ConfigError
from ..paths import shared_data_dir

TASKS = ("eprstmt", "bustm", "tnews", "iflytek", "csldcp", "ocnli", "csl", "cluewsc")
SPLIT_FILE_PREFIXES = ("train", "dev", "test", "unlabeled")


@dataclass
class ZeroShotRow:
    task: str
    rows: int
    ours_s: list[float] = field(default_factory=list)  # seconds per timed repeat
    hf_s: list[float] = field(default_factory=list)
    agreement: float = float("nan")  # share of rows with the same predicted label
    same_ids: float = float("nan")  # share of rows where the pipeline's input ids equal ours
    max_diff: float = float("nan")  # max |ours - pipeline| label-word log-prob

    def rate(self, seconds: list[float]) -> float:
        return self.rows / statistics.median(seconds)


def _checkpoint(folder: Path, vocab: Path, preset: str, seed: int) -> str:
    from transformers import BertConfig, BertForMaskedLM

    from ..model.configuration import PRESETS

    if preset not in PRESETS:
        raise ConfigError(f"preset {preset!r}: not one of {list(PRESETS)}")
    layers, hidden, heads, ffn = PRESETS[preset]
    n_vocab = sum(1 for line in vocab.read_text(encoding="utf-8").split("\n") if line)
    torch.manual_seed(seed)
    keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
    config = BertConfig(vocab_size=n_vocab, **dict(zip(keys, PRESETS[preset])))
    BertForMaskedLM(config).save_pretrained(folder)
    shutil.copyfile(vocab, folder / "vocab.txt")
    return f"BertForMaskedLM {preset} ({layers} layers, hidden {hidden}, {heads} heads, ffn {ffn}), vocab {n_vocab:,}"


def _data(src: Path, dst: Path, tasks: Sequence[str], split: str, max_rows: int | None) -> Path:
    """`src` itself, or a copy with each task's split cut to its first `max_rows` rows (label files kept)."""
    if max_rows is None:
        return src
    for task in tasks:
        (dst / task).mkdir(parents=True)
        for f in (src / task).iterdir():
            if f.is_file() and not (f.suffix == ".json" and f.name.startswith(SPLIT_FILE_PREFIXES)):
                shutil.copyfile(f, dst / task / f.name)
        lines = [x for x in (src / task / f"{split}.json").read_text(encoding="utf-8").split("\n") if x.strip()]
        (dst / task / f"{split}.json").write_text("\n".join(lines[:max_rows]) + "\n", encoding="utf-8")
    return dst


def _pipeline_inputs(task: str, data: Path, split: str, tokenizer):
    """Texts for the pipeline, our input ids per row, label -> word ids, and the share of rows whose ids match."""
    from ..evaluation.cloze import MAX_LENGTH, task_fields
    from ..evaluation.fewclue import load_split
    from ..evaluation.task_scoring import prepare
    from ..evaluation.templates import published

    template = published(task, data / task)
    prepared = prepare(task, load_split(task, data, split), [template], tokenizer, MAX_LENGTH[task], data, split)
    builder = prepared.templates[0].builder
    texts, same = [], 0
    for row in prepared.rows:
        fields = task_fields(task, row)
        ids, _, cut = builder.build(fields)
        if cut:  # content cut as ours cuts it: hand over what our builder kept
            text = tokenizer.decode(ids[1:-1])
        else:
            mask = tokenizer.mask_token
            text = "".join(
                p.value if p.kind == "text" else fields[p.value] if p.kind == "field" else mask for p in builder.pieces
            )
        texts.append(text)
        same += tokenizer(text)["input_ids"] == ids
    words = {label: tokenizer(w, add_special_tokens=False)["input_ids"] for label, w in template.words.items()}
    return texts, words, same / len(texts)


def _run_pipeline(ckpt: str, texts: list[str], words: dict[str, list[int]], batch_size: int, device: str):
    """Label-word log-probs [rows, labels] (labels in `words` order) from transformers' fill-mask pipeline."""
    from transformers import pipeline

    fill = pipeline("fill-mask", model=ckpt, tokenizer=ckpt, device=device)
    targets = fill.tokenizer.convert_ids_to_tokens(sorted({t for ids in words.values() for t in ids}))
    out = fill(texts, targets=targets, top_k=len(targets), batch_size=batch_size)
    out = [out] if len(texts) == 1 else out
    scores = np.empty((len(texts), len(words)))
    for i, slots in enumerate(out):
        slots = [slots] if isinstance(slots[0], dict) else slots  # one [MASK]: a flat list of candidates
        prob = [{c["token"]: c["score"] for c in slot} for slot in slots]
        for j, ids in enumerate(words.values()):
            scores[i, j] = sum(np.log(prob[k][t]) for k, t in enumerate(ids))
    return scores


def run(
    vocab: str | Path | None = None,
    preset: str = "small",
    split: str = "dev_few_all",
    tasks: str | Sequence[str] | None = None,
    max_rows: int | None = None,
    batch_size: int = 16,
    threads: int | None = None,
    seed: int = 0,
    repeats: int = 3,
    data_dir: str | Path | None = None,
) -> list[ZeroShotRow]:
    """Time both sides per task (one warm-up run each, then `repeats` interleaved runs, medians count); print
    a table and `ratio: <ours rows/s / pipeline rows/s over all compared rows>`."""
    from transformers.utils import logging as hf_logging

    from .. import evaluation
    from ..corpus.tokenizer import load_saved_tokenizer
    from ..evaluation.zeroclue import resolve_tasks

    tasks = list(TASKS) if tasks is None else resolve_tasks(tasks)
    if "chid" in tasks:
        raise ConfigError("chid is not compared (each row has its own candidate words); see the module docstring")
    vocab = Path(vocab) if vocab else shared_data_dir() / "vocab" / "bert-base-chinese-vocab.txt"
    src = Path(data_dir) if data_dir else shared_data_dir() / "fewclue"
    for path in (vocab, *(src / t / f"{split}.json" for t in tasks)):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (see ../shared/data/README.md)")
    if repeats < 1 or (max_rows is not None and max_rows < 1):
        raise ConfigError(f"repeats {repeats}, max_rows {max_rows}: each must be >= 1")
    saved_threads, bars = torch.get_num_threads(), hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # from_pretrained's 'Loading weights' bar on both sides
    tmp = Path(tempfile.mkdtemp(prefix="obert-bench-zeroshot-"))
    try:
        if threads:
            torch.set_num_threads(threads)
        ckpt = tmp / "bert"
        model = _checkpoint(ckpt, vocab, preset, seed)
        data = _data(src, tmp / "data", tasks, split, max_rows)
        tokenizer = load_saved_tokenizer(ckpt)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        inputs = {t: _pipeline_inputs(t, data, split, tokenizer) for t in tasks}
        rows = {t: ZeroShotRow(t, len(inputs[t][0]), same_ids=inputs[t][2]) for t in tasks}
        runs = itertools.count()

        def ours(task: str):
            out = tmp / f"out{next(runs)}"
            cfg = {"checkpoint": str(ckpt), "data_dir": str(data), "split": split, "tasks": [task]}
            t0 = time.perf_counter()
            result = evaluation.run({**cfg, "output_dir": str(out), "batch_size": batch_size}, progress=False)
            seconds = time.perf_counter() - t0
            shutil.rmtree(out)
            return seconds, result

        def hf(task: str):
            texts, words, _ = inputs[task]
            t0 = time.perf_counter()
            scores = _run_pipeline(str(ckpt), texts, words, batch_size, device)
            return time.perf_counter() - t0, scores

        ours(tasks[0]), hf(tasks[0])  # warm-up: imports, first-call allocations, tokenizer caches
        results: dict = {}
        for k in range(repeats):
            for task in tasks:
                for name, fn in (("ours", ours), ("hf", hf))[:: 1 if k % 2 == 0 else -1]:
                    seconds, results[name, task] = fn(task)
                    (rows[task].ours_s if name == "ours" else rows[task].hf_s).append(seconds)
        for task in tasks:
            scores = results["ours", task].scores[task]
            labels = list(inputs[task][1])
            hf_scores = results["hf", task]
            our_scores = scores[[f"logp_{label}" for label in labels]].to_numpy()
            hf_pred = np.array(labels, dtype=object)[hf_scores.argmax(1)]
            rows[task].agreement = float(np.mean(scores["pred"].astype(str).to_numpy() == hf_pred.astype(str)))
            rows[task].max_diff = float(np.abs(our_scores - hf_scores).max())

        total = sum(r.rows for r in rows.values())
        name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        print(f"device: {name}; torch threads: {torch.get_num_threads()}; {model}, random weights (seed {seed})")
        print(
            f"data: {src} split {split}" + (f", first {max_rows} rows per task" if max_rows else "") + f"; "
            f"batch {batch_size} on both sides; 1 warm-up run each, median of {repeats} interleaved runs; "
            "model load included on both sides"
        )
        print(
            "ours: evaluation.run per task (read, tokenise, score, intervals, write); pipeline: "
            "pipeline('fill-mask') + call(texts, targets=label-word tokens) + log-prob sums + argmax"
        )
        header = f"{'task':8s} {'rows':>5s} {'ours rows/s':>11s} {'pipeline rows/s':>15s} {'agreement':>9s}"
        print(f"\n{header} {'same ids':>8s} {'max |dlogp|':>11s}")
        for r in rows.values():
            print(
                f"{r.task:8s} {r.rows:5d} {r.rate(r.ours_s):11.1f} {r.rate(r.hf_s):15.1f} {r.agreement:9.4f} "
                f"{r.same_ids:8.4f} {r.max_diff:11.2e}"
            )
        ours_s = sum(statistics.median(r.ours_s) for r in rows.values())
        hf_s = sum(statistics.median(r.hf_s) for r in rows.values())
        agree = sum(r.agreement * r.rows for r in rows.values()) / total
        same = sum(r.same_ids * r.rows for r in rows.values()) / total
        diff = max(r.max_diff for r in rows.values())
        print(
            f"{'all':8s} {total:5d} {total / ours_s:11.1f} {total / hf_s:15.1f} {agree:9.4f} {same:8.4f} {diff:11.2e}"
        )
        print(f"\nratio: {hf_s / ours_s:.2f}")
        return list(rows.values())
    finally:
        torch.set_num_threads(saved_threads)
        if bars:
            hf_logging.enable_progress_bar()
        shutil.rmtree(tmp, ignore_errors=True)
